/**
 * IEEE 754 half precision for gradients on the wire (`allreduce.compression: fp16`): half the
 * bytes, accumulation stays float32. Encoding rounds to nearest, ties to even; values beyond
 * half's range (65504) become infinities, which the non-finite guard then catches like any
 * overflow, and NaN stays NaN.
 */

/** Float32 bits -> half bits. */
function halfBits(bits: number): number {
  const sign = (bits >>> 16) & 0x8000;
  const exponent = (bits >>> 23) & 0xff;
  const mantissa = bits & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa ? 0x200 : 0);
  const e = exponent - 112; // rebias 127 -> 15
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    const m = mantissa | 0x800000;
    const shift = 14 - e;
    const half = m >>> shift;
    const rest = m & ((1 << shift) - 1);
    const tie = 1 << (shift - 1);
    return sign | (half + (rest > tie || (rest === tie && half & 1) ? 1 : 0));
  }
  const half = (e << 10) | (mantissa >>> 13);
  const rest = mantissa & 0x1fff;
  // A carry out of the mantissa correctly bumps the exponent (up to infinity).
  return sign | (half + (rest > 0x1000 || (rest === 0x1000 && half & 1) ? 1 : 0));
}

/** Float32 bits -> half bits, with a fast path for values in half's normal range. */
function toHalf(x: number): number {
  const e = (x >>> 23) & 0xff;
  if (e <= 112 || e >= 142) return halfBits(x);
  // Rebias, and round to nearest even by adding 0xfff plus the kept mantissa's lowest bit to the
  // 13 dropped bits (a carry may bump the exponent, which stays below infinity for e < 142).
  const m = x & 0x7fffff;
  return (((x >>> 16) & 0x8000) | ((e - 112) << 10) | (m >>> 13)) + (((m & 0x1fff) + 0xfff + ((m >>> 13) & 1)) >>> 13);
}

/** Every half's float32 value, built once (256 KiB): decoding is one lookup per element. */
let table: Float32Array | undefined;
function halfTable(): Float32Array {
  if (table) return table;
  table = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const e = (h >>> 10) & 0x1f;
    const m = h & 0x3ff;
    table[h] = e === 0 ? sign * m * 2 ** -24 : e === 0x1f ? (m ? NaN : sign * Infinity) : sign * (1 + m / 1024) * 2 ** (e - 15);
  }
  return table;
}

/** data[from, to) as little-endian halves, in a new buffer. */
export function encodeHalves(data: Float32Array, from: number, to: number): Buffer {
  // Int32, not Uint32: V8 keeps int32 values unboxed, while uint32s above 2^31 (every negative
  // float) would become heap numbers.
  const bits = new Int32Array(data.buffer, data.byteOffset + from * 4, to - from);
  const out = Buffer.allocUnsafe(bits.length * 2);
  const halves = new Uint16Array(out.buffer, out.byteOffset, bits.length);
  for (let i = 0; i < bits.length; i++) halves[i] = toHalf(bits[i] as number);
  return out;
}

/** Little-endian halves -> float32s, written into `out` (at least bytes/2 long). */
export function decodeHalves(bytes: Buffer, out: Float32Array): Float32Array {
  const n = bytes.byteLength / 2;
  const t = halfTable();
  if (bytes.byteOffset % 2 === 0) {
    const halves = new Uint16Array(bytes.buffer, bytes.byteOffset, n);
    for (let i = 0; i < n; i++) out[i] = t[halves[i] as number] as number;
  } else {
    for (let i = 0; i < n; i++) out[i] = t[bytes.readUInt16LE(i * 2)] as number;
  }
  return out.subarray(0, n);
}

/** Rounds data[from, to) to half precision in place, so a rank keeps exactly what it sends. */
export function roundToHalf(data: Float32Array, from: number, to: number): void {
  const bits = new Int32Array(data.buffer, data.byteOffset + from * 4, to - from);
  const t = halfTable();
  for (let i = 0; i < bits.length; i++) data[from + i] = t[toHalf(bits[i] as number)] as number;
}
