import { strict as assert } from 'node:assert';
import fc from 'fast-check';

/**
 * Shared pieces of the fuzz tests (test/unit/fuzz-*.test.ts). Every parser of outside input is
 * driven with a fixed seed and a run budget, so CI sees the same cases each time and a failure
 * prints the case that broke it (which then becomes a regression test beside the property).
 */
export const FUZZ = { seed: 20261207, numRuns: Number(process.env.FACENET_FUZZ_RUNS ?? 300) };

/** One parse must finish well within this (a hang check, not a speed test). */
export const PARSE_BOUND_MS = 2000;

/** Values that break careless parsers: edges of integer widths, huge and odd strings, wrong types. */
const awkward = fc.constantFrom<unknown>(
  null,
  undefined,
  0,
  -1,
  0.5,
  2 ** 31,
  2 ** 32,
  2 ** 53,
  -(2 ** 53),
  1e308,
  '',
  '..',
  '../../etc/passwd',
  '/etc/passwd',
  '__proto__',
  'constructor',
  'x'.repeat(100_000),
  [],
  {},
  [[]],
  { __proto__: { polluted: true } },
  true,
);

const anyValue = fc.oneof({ weight: 3, arbitrary: fc.jsonValue({ maxDepth: 2 }) }, { weight: 2, arbitrary: awkward });

/** Every path (as keys) to a value inside `v`, the root included. */
function pathsOf(v: unknown, at: (string | number)[] = [], out: (string | number)[][] = []): (string | number)[][] {
  out.push(at);
  if (Array.isArray(v)) v.forEach((x, i) => pathsOf(x, [...at, i], out));
  else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) pathsOf(x, [...at, k], out);
  return out;
}

function replaced(root: unknown, path: (string | number)[], value: unknown): unknown {
  if (path.length === 0) return value;
  const copy = structuredClone(root) as Record<string | number, unknown>;
  let node = copy;
  for (const k of path.slice(0, -1)) node = node[k] as Record<string | number, unknown>;
  const last = path[path.length - 1] as string | number;
  if (value === undefined && !Array.isArray(node)) delete node[last];
  else node[last] = value;
  return copy;
}

/**
 * A valid value with one to three places replaced by awkward or arbitrary JSON, or removed: most
 * of the value still passes a parser's first checks, so the fuzz reaches the later ones.
 */
export function mutated(valid: unknown): fc.Arbitrary<unknown> {
  const paths = pathsOf(valid);
  return fc
    .array(fc.tuple(fc.constantFrom(...paths), anyValue), { minLength: 1, maxLength: 3 })
    .map((edits) => edits.reduce<unknown>((v, [path, value]) => (reachable(v, path) ? replaced(v, path, value) : v), valid));
}

function reachable(v: unknown, path: (string | number)[]): boolean {
  let node = v;
  for (const k of path.slice(0, -1)) {
    if (!node || typeof node !== 'object') return false;
    node = (node as Record<string | number, unknown>)[k];
  }
  return path.length === 0 || (!!node && typeof node === 'object');
}

/** Valid values, their mutations and arbitrary JSON, as text (sometimes cut short or not JSON at all). */
export function hostileJsonText(valid: unknown): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 4, arbitrary: mutated(valid).map((v) => JSON.stringify(v) ?? 'undefined') },
    { weight: 1, arbitrary: fc.jsonValue().map((v) => JSON.stringify(v)) },
    { weight: 1, arbitrary: fc.string() },
    { weight: 1, arbitrary: fc.nat({ max: 400 }).map((n) => JSON.stringify(valid).slice(0, n)) },
  );
}

/**
 * Runs `parse` on one hostile input: it must return (then `check` sees the value) or throw an
 * error of one of `typed` (a clear, typed error), and finish within PARSE_BOUND_MS.
 */
export function expectTypedOrValid<T>(
  parse: () => T,
  typed: readonly (abstract new (...a: never[]) => Error)[],
  check?: (v: T) => void,
): void {
  const started = Date.now();
  let value: T;
  try {
    value = parse();
  } catch (err) {
    return refusedAsTyped(err, typed);
  } finally {
    withinBound(started);
  }
  check?.(value);
}

/** The async form of expectTypedOrValid. */
export async function expectTypedOrValidAsync<T>(
  parse: () => Promise<T>,
  typed: readonly (abstract new (...a: never[]) => Error)[],
  check?: (v: T) => void | Promise<void>,
): Promise<void> {
  const started = Date.now();
  let value: T;
  try {
    value = await parse();
  } catch (err) {
    return refusedAsTyped(err, typed);
  } finally {
    withinBound(started);
  }
  await check?.(value);
}

/** A thrown error passes only if it is one of `typed`. */
function refusedAsTyped(err: unknown, typed: readonly (abstract new (...a: never[]) => Error)[]): void {
  if (!typed.some((t) => err instanceof t)) throw new Error(`an untyped error escaped: ${(err as Error)?.stack ?? String(err)}`);
}

/** A hang check: parses measured here take well under 100 ms; PARSE_BOUND_MS is far above that. */
function withinBound(started: number): void {
  assert.ok(Date.now() - started < PARSE_BOUND_MS, `one parse took ${Date.now() - started} ms`);
}
