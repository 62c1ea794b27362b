import { FoldReport, roc } from './verification';

/** One scored pair as the report shows it: its two images (hrefs relative to the page) and distance. */
export interface ReportPair {
  a: string;
  b: string;
  distance: number;
  same: boolean;
}

export interface VerificationReportInput {
  title: string;
  report: FoldReport;
  distances: ArrayLike<number>;
  same: ArrayLike<boolean>;
  /** Worst false accepts (different people, nearest first) and false rejects (same person, farthest first). */
  falseAccepts: ReportPair[];
  falseRejects: ReportPair[];
  /** Shown as a table under the title (checkpoint, pairs file, crop...). */
  facts: [string, string][];
}

/** The worst errors at `threshold`: indices of false accepts (ascending distance) and false rejects (descending). */
export function worstErrors(
  distances: ArrayLike<number>,
  same: ArrayLike<boolean>,
  threshold: number,
  count: number,
): { falseAccepts: number[]; falseRejects: number[] } {
  const idx = Array.from({ length: distances.length }, (_, i) => i);
  const d = (i: number) => distances[i] as number;
  return {
    falseAccepts: idx
      .filter((i) => !same[i] && d(i) <= threshold)
      .sort((x, y) => d(x) - d(y))
      .slice(0, count),
    falseRejects: idx
      .filter((i) => same[i] && d(i) > threshold)
      .sort((x, y) => d(y) - d(x))
      .slice(0, count),
  };
}

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

/** ROC on a log FPR axis (1e-4 .. 1), the FAR target marked. */
function rocSvg(distances: ArrayLike<number>, same: ArrayLike<boolean>, farTarget: number): string {
  const c = roc(distances, same);
  const W = 420,
    H = 320,
    L = 48,
    B = 36,
    T = 12,
    R = 12;
  const x = (fpr: number) => L + ((Math.log10(Math.max(fpr, 1e-4)) + 4) / 4) * (W - L - R);
  const y = (tpr: number) => H - B - tpr * (H - B - T);
  const points = c.fpr.map((f, i) => `${x(f).toFixed(1)},${y(c.tpr[i] as number).toFixed(1)}`).join(' ');
  const grid =
    [-4, -3, -2, -1, 0]
      .map(
        (e) =>
          `<line x1="${x(10 ** e)}" y1="${y(0)}" x2="${x(10 ** e)}" y2="${y(1)}" class="grid"/><text x="${x(10 ** e)}" y="${H - B + 16}" text-anchor="middle">1e${e}</text>`,
      )
      .join('') +
    [0, 0.25, 0.5, 0.75, 1]
      .map(
        (t) =>
          `<line x1="${L}" y1="${y(t)}" x2="${x(1)}" y2="${y(t)}" class="grid"/><text x="${L - 6}" y="${y(t) + 4}" text-anchor="end">${t}</text>`,
      )
      .join('');
  return `<svg id="roc" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="ROC curve">
${grid}<line x1="${x(farTarget)}" y1="${y(0)}" x2="${x(farTarget)}" y2="${y(1)}" class="target"/>
<polyline points="${points}" class="curve"/>
<text x="${(L + W) / 2}" y="${H - 4}" text-anchor="middle">false accept rate (log)</text>
<text x="12" y="${(H - B) / 2}" transform="rotate(-90 12 ${(H - B) / 2})" text-anchor="middle">true accept rate</text></svg>`;
}

/** Histograms of matched and mismatched distances (40 bins), the threshold marked. */
function histogramSvg(distances: ArrayLike<number>, same: ArrayLike<boolean>, threshold: number): string {
  const W = 420,
    H = 320,
    L = 48,
    B = 36,
    T = 12,
    R = 12,
    bins = 40;
  let max = threshold;
  for (let i = 0; i < distances.length; i++) max = Math.max(max, distances[i] as number);
  max = max > 0 ? max * 1.02 : 1;
  const counts = { same: new Array<number>(bins).fill(0), different: new Array<number>(bins).fill(0) };
  for (let i = 0; i < distances.length; i++) {
    const b = Math.min(bins - 1, Math.floor(((distances[i] as number) / max) * bins));
    counts[same[i] ? 'same' : 'different'][b]! += 1;
  }
  const top = Math.max(1, ...counts.same, ...counts.different);
  const x = (d: number) => L + (d / max) * (W - L - R);
  const y = (n: number) => H - B - (n / top) * (H - B - T);
  const steps = (cs: number[]) =>
    cs
      .map((n, b) => `${x((b * max) / bins).toFixed(1)},${y(n).toFixed(1)} ${x(((b + 1) * max) / bins).toFixed(1)},${y(n).toFixed(1)}`)
      .join(' ');
  const ticks = [0, 0.25, 0.5, 0.75, 1]
    .map((f) => `<text x="${x(f * max)}" y="${H - B + 16}" text-anchor="middle">${(f * max).toFixed(2)}</text>`)
    .join('');
  return `<svg id="histogram" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="distance histograms">
<line x1="${L}" y1="${y(0)}" x2="${x(max)}" y2="${y(0)}" class="axis"/>${ticks}
<polyline points="${x(0)},${y(0)} ${steps(counts.same)} ${x(max)},${y(0)}" class="same"/>
<polyline points="${x(0)},${y(0)} ${steps(counts.different)} ${x(max)},${y(0)}" class="different"/>
<line x1="${x(threshold)}" y1="${y(0)}" x2="${x(threshold)}" y2="${T}" class="threshold"/>
<text x="${x(threshold) + 4}" y="${T + 12}">threshold ${threshold.toFixed(3)}</text>
<text x="${(L + W) / 2}" y="${H - 4}" text-anchor="middle">squared distance</text></svg>`;
}

function pairsHtml(id: string, title: string, pairs: ReportPair[]): string {
  const rows = pairs
    .map(
      (p) =>
        `<figure class="pair"><img src="${esc(p.a)}" alt=""><img src="${esc(p.b)}" alt=""><figcaption>${p.distance.toFixed(3)}</figcaption></figure>`,
    )
    .join('');
  return `<section id="${id}"><h2>${esc(title)} (${pairs.length})</h2>${rows || '<p>none at this threshold</p>'}</section>`;
}

/**
 * A self-contained HTML page (inline SVG and CSS, images by relative path) of one verification
 * evaluation: the numbers, the ROC curve, the distance histograms with the threshold, and the
 * worst false accepts and false rejects side by side.
 */
export function verificationReportHtml(i: VerificationReportInput): string {
  const r = i.report;
  const numbers: [string, string][] = [
    ['accuracy', `${pct(r.accuracy)} ± ${pct(r.accuracyStd)} (threshold from the other folds)`],
    [`VAL at FAR = ${r.farTarget}`, `${pct(r.val)} ± ${pct(r.valStd)} (measured FAR ${r.far.toFixed(5)})`],
    ['AUC', r.auc.toFixed(4)],
    ['threshold (best accuracy, all pairs)', r.threshold.toFixed(4)],
    ['pairs', `${r.pairs} in ${r.folds} folds`],
  ];
  const table = (rows: [string, string][], id: string) =>
    `<table id="${id}">${rows.map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(v)}</td></tr>`).join('')}</table>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(i.title)}</title>
<style>
body { font: 14px system-ui, sans-serif; margin: 24px; color: #222; }
table { border-collapse: collapse; margin: 8px 0 16px; } th, td { text-align: left; padding: 3px 12px 3px 0; } th { font-weight: 600; }
.charts { display: flex; gap: 24px; flex-wrap: wrap; } svg text { font-size: 11px; fill: #444; }
.grid { stroke: #e4e4e4; } .axis { stroke: #888; } .curve { fill: none; stroke: #1e5ac8; stroke-width: 2; }
.target { stroke: #e08080; stroke-dasharray: 4 3; } .threshold { stroke: #222; stroke-dasharray: 5 3; }
.same { fill: rgba(40, 160, 80, 0.25); stroke: #28a050; } .different { fill: rgba(210, 60, 60, 0.2); stroke: #d23c3c; }
.pair { display: inline-block; margin: 0 12px 12px 0; text-align: center; } .pair img { width: 112px; height: 112px; object-fit: cover; }
</style></head><body>
<h1>${esc(i.title)}</h1>
${table(i.facts, 'facts')}${table(numbers, 'numbers')}
<div class="charts"><figure>${rocSvg(i.distances, i.same, r.farTarget)}<figcaption>ROC (dashed: FAR ${r.farTarget})</figcaption></figure>
<figure>${histogramSvg(i.distances, i.same, r.threshold)}<figcaption><span style="color:#28a050">same person</span>, <span style="color:#d23c3c">different people</span></figcaption></figure></div>
${pairsHtml('false-accepts', 'Worst false accepts: different people, nearest', i.falseAccepts)}
${pairsHtml('false-rejects', 'Worst false rejects: the same person, farthest', i.falseRejects)}
</body></html>
`;
}
