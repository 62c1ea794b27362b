import { FaceSource, IdentityIndex, SquareImage } from './face-source';
import { gaussian, rngFor, Rng } from '../util/random';
import { lazyList } from '../util/lazy-list';

export interface SyntheticOptions {
  /** @default 60 */
  identities?: number;
  /** @default 12 */
  imagesPerIdentity?: number;
  /** @default 7 */
  seed?: number;
}

/** What makes an identity: proportions and colours of a cartoon face. */
interface Identity {
  faceW: number;
  faceH: number;
  skin: [number, number, number];
  hair: [number, number, number];
  hairline: number;
  eyeSep: number;
  eyeY: number;
  eyeSize: number;
  iris: [number, number, number];
  browTilt: number;
  browThick: number;
  noseLen: number;
  noseW: number;
  mouthW: number;
  mouthY: number;
  background: [number, number, number];
}

/** What varies between photos of one identity. */
interface Capture {
  angle: number;
  scale: number;
  dx: number;
  dy: number;
  yaw: number;
  light: [number, number];
  brightness: number;
  smile: number;
  eyeOpen: number;
  noise: number;
}

const range = (rng: Rng, lo: number, hi: number) => lo + (hi - lo) * rng();
const colour = (rng: Rng, base: [number, number, number], spread: number): [number, number, number] =>
  base.map((c) => Math.min(1, Math.max(0, c + (rng() - 0.5) * spread))) as [number, number, number];

function makeIdentity(rng: Rng): Identity {
  const tone = range(rng, 0.25, 0.95);
  return {
    faceW: range(rng, 0.27, 0.38),
    faceH: range(rng, 0.36, 0.46),
    skin: colour(rng, [tone, tone * 0.8, tone * 0.65], 0.15),
    hair: colour(rng, [range(rng, 0.05, 0.6), range(rng, 0.03, 0.4), range(rng, 0.0, 0.3)], 0.1),
    hairline: range(rng, -0.42, -0.22),
    eyeSep: range(rng, 0.1, 0.19),
    eyeY: range(rng, -0.12, 0.0),
    eyeSize: range(rng, 0.03, 0.06),
    iris: colour(rng, [range(rng, 0.1, 0.5), range(rng, 0.1, 0.5), range(rng, 0.1, 0.6)], 0.2),
    browTilt: range(rng, -0.25, 0.25),
    browThick: range(rng, 0.012, 0.03),
    noseLen: range(rng, 0.07, 0.16),
    noseW: range(rng, 0.03, 0.07),
    mouthW: range(rng, 0.08, 0.17),
    mouthY: range(rng, 0.16, 0.26),
    background: colour(rng, [rng(), rng(), rng()], 0.3),
  };
}

function makeCapture(rng: Rng): Capture {
  return {
    angle: gaussian(rng) * 0.12,
    scale: range(rng, 0.88, 1.12),
    dx: gaussian(rng) * 0.04,
    dy: gaussian(rng) * 0.04,
    yaw: gaussian(rng) * 0.06,
    light: [gaussian(rng) * 0.35, gaussian(rng) * 0.35],
    brightness: range(rng, 0.7, 1.25),
    smile: range(rng, -0.6, 1),
    eyeOpen: range(rng, 0.35, 1),
    noise: range(rng, 0.01, 0.06),
  };
}

const sq = (x: number) => x * x;

/** Colour of face-space point (u, v) in [-0.5, 0.5]^2; layers drawn back to front. */
function shade(id: Identity, cap: Capture, u: number, v: number): [number, number, number] {
  let c = id.background;
  const inFace = sq(u / id.faceW) + sq(v / id.faceH) <= 1;
  const inHair = sq(u / (id.faceW * 1.12)) + sq((v + 0.04) / (id.faceH * 1.1)) <= 1 && v < id.hairline + 0.12 * sq(u / id.faceW);
  if (sq(u / (id.faceW * 1.12)) + sq((v + 0.04) / (id.faceH * 1.1)) <= 1 && !inFace) c = id.hair;
  if (inFace) c = id.skin;
  if (inHair) c = id.hair;
  if (!inFace) return c;
  const yawShift = cap.yaw * 0.5;
  for (const side of [-1, 1]) {
    const ex = side * id.eyeSep + yawShift;
    const eh = id.eyeSize * 0.6 * cap.eyeOpen;
    const du = u - ex;
    const dv = v - id.eyeY;
    if (sq(du / id.eyeSize) + sq(dv / Math.max(eh, 1e-3)) <= 1) {
      c = sq(du) + sq(dv) <= sq(id.eyeSize * 0.45) ? id.iris : [0.95, 0.95, 0.92];
    }
    const by = id.eyeY - id.eyeSize * 1.4 + side * du * id.browTilt;
    if (Math.abs(du) < id.eyeSize * 1.2 && Math.abs(v - by) < id.browThick) c = id.hair;
  }
  const nu = u - yawShift * 1.4;
  const nv = v - id.eyeY;
  if (nv > 0 && nv < id.noseLen && Math.abs(nu) < id.noseW * (nv / id.noseLen)) c = c.map((x) => x * 0.8) as typeof c;
  const mu = u - yawShift;
  if (Math.abs(mu) < id.mouthW) {
    const curve = -cap.smile * 0.05 * (1 - sq(mu / id.mouthW));
    if (Math.abs(v - (id.mouthY + curve)) < 0.012 + 0.01 * (1 - sq(mu / id.mouthW))) c = [0.55, 0.15, 0.18];
  }
  return c;
}

/** Bytes of drawn images a synthetic source keeps (the demo's 720 faces at 72 px take 11 MB). */
const SYNTHETIC_CACHE_BYTES = 256 * 2 ** 20;

/**
 * A built-in face set drawn procedurally, so training works on a fresh machine with no
 * download. Each identity is a cartoon face with its own proportions and colours; each image
 * varies pose (rotation, scale, shift, yaw), lighting, expression and sensor noise. Keys are
 * `synthetic:<identity>:<image>`; the same key always renders the same image.
 */
export class SyntheticSource implements FaceSource {
  readonly index: IdentityIndex;
  readonly description: string;
  private readonly seed: number;
  private readonly identities: number;
  /** Rendered images by side and key, oldest first: rendering costs more than a cache hit. */
  private readonly cache = new Map<string, SquareImage>();
  private cachedBytes = 0;

  constructor(options: SyntheticOptions = {}) {
    const n = options.identities ?? 60;
    const m = options.imagesPerIdentity ?? 12;
    this.seed = options.seed ?? 7;
    this.identities = n;
    // A formula, not a list: 100,000 x 20 keys built up front cost 4 s and 500 MB on whatever
    // event loop made the source; read element by element they cost what is read.
    this.index = {
      names: lazyList(n, (i) => `synthetic_${String(i).padStart(4, '0')}`),
      images: lazyList(n, (i) => lazyList(m, (j) => `synthetic:${i}:${j}`)),
      sizes: new Uint32Array(n).fill(m),
    };
    this.description = `built-in synthetic faces (${n} identities x ${m} images, seed ${this.seed})`;
  }

  read(key: string, side: number): Promise<SquareImage> {
    const cached = this.cache.get(`${side}:${key}`);
    if (cached) return Promise.resolve(cached);
    const [, i, j] = key.split(':').map(Number);
    if (!Number.isInteger(i) || (i as number) < 0 || (i as number) >= this.identities || j === undefined || !Number.isInteger(j))
      return Promise.reject(new Error(`unknown synthetic image ${key}`));
    const id = makeIdentity(rngFor(this.seed, 'identity', i as number)); // a few dozen draws: cheaper than a cache of 100,000
    const rng = rngFor(this.seed, 'capture', i as number, j);
    const cap = makeCapture(rng);
    const pixels = new Uint8Array(side * side * 3);
    const cos = Math.cos(cap.angle) / cap.scale;
    const sin = Math.sin(cap.angle) / cap.scale;
    for (let y = 0; y < side; y++) {
      for (let x = 0; x < side; x++) {
        const px = (x + 0.5) / side - 0.5 - cap.dx;
        const py = (y + 0.5) / side - 0.5 - cap.dy;
        const u = cos * px + sin * py;
        const v = -sin * px + cos * py;
        const c = shade(id, cap, u, v);
        const light = cap.brightness * (1 + cap.light[0] * px + cap.light[1] * py);
        for (let k = 0; k < 3; k++) {
          const val = (c[k] as number) * light + gaussian(rng) * cap.noise;
          pixels[(y * side + x) * 3 + k] = Math.max(0, Math.min(255, Math.round(val * 255)));
        }
      }
    }
    const img = { side, pixels };
    this.cache.set(`${side}:${key}`, img);
    this.cachedBytes += pixels.length;
    // Bounded, oldest out: a set of 2M faces must not keep every image it ever drew.
    for (const [k, v] of this.cache) {
      if (this.cachedBytes <= SYNTHETIC_CACHE_BYTES) break;
      this.cache.delete(k);
      this.cachedBytes -= v.pixels.length;
    }
    return Promise.resolve(img);
  }
}
