import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PairsFormatError } from '../errors';
import { isImagePath } from '../data/decode-image';
import type { PairSet } from './holdout-pairs';

export interface FacePair {
  /** Image references as (person, 1-based image number). */
  a: { name: string; index: number };
  b: { name: string; index: number };
  same: boolean;
  /** 0-based fold. */
  fold: number;
}

export interface PairsFile {
  folds: number;
  pairsPerFold: number;
  pairs: FacePair[];
}

function imageNumber(file: string, line: number, s: string | undefined): number {
  const n = Number(s);
  if (!s || !Number.isInteger(n) || n < 1) throw new PairsFormatError(file, line, `bad image number '${s ?? ''}'`);
  return n;
}

/**
 * Parses LFW's pairs.txt: a header "folds<TAB>n", then per fold n matched lines
 * "name i j" followed by n mismatched lines "name1 i name2 j". Errors name the line.
 */
export function parsePairs(text: string, file = 'pairs.txt'): PairsFile {
  const lines = text.split(/\r?\n/);
  while (lines.length > 0 && lines[lines.length - 1]?.trim() === '') lines.pop();
  const header = (lines[0] ?? '').trim().split(/\s+/);
  const folds = Number(header[0]);
  const pairsPerFold = Number(header[1]);
  if (header.length !== 2 || !Number.isInteger(folds) || folds < 1 || !Number.isInteger(pairsPerFold) || pairsPerFold < 1) {
    throw new PairsFormatError(file, 1, `expected header "<folds> <pairs per fold>", got '${lines[0] ?? ''}'`);
  }
  const expected = 1 + folds * 2 * pairsPerFold;
  if (lines.length !== expected) {
    throw new PairsFormatError(
      file,
      Math.min(lines.length, expected),
      `expected ${expected - 1} pair lines for ${folds} folds of 2x${pairsPerFold}, found ${lines.length - 1}`,
    );
  }
  const pairs: FacePair[] = [];
  for (let i = 1; i < lines.length; i++) {
    const k = i - 1;
    const fold = Math.floor(k / (2 * pairsPerFold));
    const same = k % (2 * pairsPerFold) < pairsPerFold;
    const f = (lines[i] as string).trim().split(/\s+/);
    if (same) {
      if (f.length !== 3) throw new PairsFormatError(file, i + 1, `matched pair needs 'name i j', got ${f.length} fields`);
      pairs.push({
        a: { name: f[0] as string, index: imageNumber(file, i + 1, f[1]) },
        b: { name: f[0] as string, index: imageNumber(file, i + 1, f[2]) },
        same,
        fold,
      });
    } else {
      if (f.length !== 4) throw new PairsFormatError(file, i + 1, `mismatched pair needs 'name1 i name2 j', got ${f.length} fields`);
      pairs.push({
        a: { name: f[0] as string, index: imageNumber(file, i + 1, f[1]) },
        b: { name: f[2] as string, index: imageNumber(file, i + 1, f[3]) },
        same,
        fold,
      });
    }
  }
  return { folds, pairsPerFold, pairs };
}

export function readPairsFile(path: string): PairsFile {
  return parsePairs(readFileSync(path, 'utf8'), path);
}

/** LFW's file naming: images/<name>/<name>_0001.jpg. */
export function lfwImagePath(imagesDir: string, ref: { name: string; index: number }, ext = '.jpg'): string {
  return join(imagesDir, ref.name, `${ref.name}_${String(ref.index).padStart(4, '0')}${ext}`);
}

/**
 * A pairs file as a PairSet over image paths (each image once), keeping only `folds` (0-based)
 * when given: what `facenet evaluate` and the evaluator service score.
 */
export function pairSetFromFile(file: PairsFile, imagesDir: string, ext = '.jpg', folds?: ReadonlySet<number>): PairSet {
  const set: PairSet = { keys: [], pairs: [], same: [], fold: [] };
  const keyIndex = new Map<string, number>();
  const indexOf = (ref: { name: string; index: number }) => {
    const k = lfwImagePath(imagesDir, ref, ext);
    let i = keyIndex.get(k);
    if (i === undefined) {
      i = set.keys.length;
      keyIndex.set(k, i);
      set.keys.push(k);
    }
    return i;
  };
  for (const p of file.pairs) {
    if (folds && !folds.has(p.fold)) continue;
    set.pairs.push([indexOf(p.a), indexOf(p.b)]);
    set.same.push(p.same);
    set.fold.push(p.fold);
  }
  return set;
}

/**
 * Every image of the people the chosen folds' pairs name (all folds when `folds` is absent), from
 * an LFW-style images folder (<images>/<name>/<file>), labelled by person: the images VAL at FAR
 * over all pairs is scored on. A person with no folder adds nothing.
 */
export function imagesOfPairsPeople(file: PairsFile, imagesDir: string, folds?: ReadonlySet<number>): { keys: string[]; labels: number[] } {
  const people = [...new Set(file.pairs.filter((p) => !folds || folds.has(p.fold)).flatMap((p) => [p.a.name, p.b.name]))];
  const keys: string[] = [];
  const labels: number[] = [];
  people.forEach((name, label) => {
    let files: string[] = [];
    try {
      files = readdirSync(join(imagesDir, name)).filter(isImagePath).sort();
    } catch {
      return;
    }
    for (const f of files) {
      keys.push(join(imagesDir, name, f));
      labels.push(label);
    }
  });
  return { keys, labels };
}
