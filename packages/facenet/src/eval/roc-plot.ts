import { PNG } from 'pngjs';
import { Roc } from './verification';

/**
 * Renders an ROC curve to PNG (log-scaled FPR axis from 1e-4 to 1, where VAL@FAR=1e-3 lives;
 * grid lines at each decade and every 0.1 of TPR). No plotting library: a few lines of raster.
 */
export function rocPng(curve: Roc, size = 480): Buffer {
  const png = new PNG({ width: size, height: size });
  png.data.fill(255);
  const pad = 40;
  const span = size - 2 * pad;
  const minLog = -4;
  const xOf = (fpr: number) => pad + ((Math.log10(Math.max(fpr, 10 ** minLog)) - minLog) / -minLog) * span;
  const yOf = (tpr: number) => size - pad - tpr * span;
  const set = (x: number, y: number, c: [number, number, number]) => {
    const xi = Math.round(x),
      yi = Math.round(y);
    if (xi < 0 || yi < 0 || xi >= size || yi >= size) return;
    const o = (yi * size + xi) * 4;
    png.data[o] = c[0];
    png.data[o + 1] = c[1];
    png.data[o + 2] = c[2];
    png.data[o + 3] = 255;
  };
  const line = (x0: number, y0: number, x1: number, y1: number, c: [number, number, number], thick = 0) => {
    const n = Math.max(1, Math.ceil(Math.max(Math.abs(x1 - x0), Math.abs(y1 - y0))));
    for (let i = 0; i <= n; i++) {
      const x = x0 + ((x1 - x0) * i) / n,
        y = y0 + ((y1 - y0) * i) / n;
      for (let dx = -thick; dx <= thick; dx++) for (let dy = -thick; dy <= thick; dy++) set(x + dx, y + dy, c);
    }
  };
  const grid: [number, number, number] = [225, 225, 225];
  for (let e = minLog; e <= 0; e++) line(xOf(10 ** e), yOf(0), xOf(10 ** e), yOf(1), e === -3 ? [250, 180, 180] : grid);
  for (let t = 0; t <= 10; t++) line(xOf(10 ** minLog), yOf(t / 10), xOf(1), yOf(t / 10), grid);
  line(xOf(10 ** minLog), yOf(0), xOf(1), yOf(0), [0, 0, 0]);
  line(xOf(10 ** minLog), yOf(0), xOf(10 ** minLog), yOf(1), [0, 0, 0]);
  for (let k = 1; k < curve.fpr.length; k++) {
    line(
      xOf(curve.fpr[k - 1] as number),
      yOf(curve.tpr[k - 1] as number),
      xOf(curve.fpr[k] as number),
      yOf(curve.tpr[k] as number),
      [30, 90, 200],
      1,
    );
  }
  return PNG.sync.write(png);
}
