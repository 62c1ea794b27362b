import { copyFileSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, extname, join } from 'node:path';
import sharp from 'sharp';
import { FaceSource } from '../data/face-source';
import { EvaluationResult } from './evaluate-pairs';
import { ReportPair, verificationReportHtml, worstErrors } from './report-html';

/** Errors shown in a report, per kind. */
export const REPORT_ERRORS = 8;

export interface ReportContent {
  title: string;
  result: EvaluationResult;
  /** The evaluation set's image keys (result.pairs index into them). */
  keys: string[];
  facts: [string, string][];
}

function worstPairs(
  c: ReportContent,
  image: (kind: string, k: number, side: 'a' | 'b', key: string) => Promise<string>,
): Promise<{ falseAccepts: ReportPair[]; falseRejects: ReportPair[] }> {
  const r = c.result;
  const worst = worstErrors(r.distances, r.same, r.report.threshold, REPORT_ERRORS);
  const shown = (kind: string, indices: number[]) =>
    Promise.all(
      indices.map(async (i, k) => {
        const [a, b] = r.pairs[i] as [number, number];
        return {
          a: await image(kind, k, 'a', c.keys[a] as string),
          b: await image(kind, k, 'b', c.keys[b] as string),
          distance: r.distances[i] as number,
          same: r.same[i] as boolean,
        };
      }),
    );
  return Promise.all([shown('false-accept', worst.falseAccepts), shown('false-reject', worst.falseRejects)]).then(
    ([falseAccepts, falseRejects]) => ({ falseAccepts, falseRejects }),
  );
}

const html = (c: ReportContent, pairs: { falseAccepts: ReportPair[]; falseRejects: ReportPair[] }) =>
  verificationReportHtml({
    title: c.title,
    report: c.result.report,
    distances: c.result.distances,
    same: c.result.same,
    facts: c.facts,
    ...pairs,
  });

/**
 * DIR/index.html with the worst errors' image files copied into DIR/pairs/, so the folder can
 * be moved or served as it is (`facenet evaluate --report DIR`).
 */
export async function writeReportFolder(dir: string, c: ReportContent): Promise<string> {
  mkdirSync(join(dir, 'pairs'), { recursive: true });
  const pairs = await worstPairs(c, async (kind, k, side, key) => {
    const name = `pairs/${kind}-${k + 1}-${side}${extname(key)}`;
    copyFileSync(key, join(dir, name));
    return name;
  });
  const file = join(dir, 'index.html');
  writeFileSync(file, html(c, pairs));
  return file;
}

/** Side of the face crops a one-file report shows. */
const INLINE_SIDE = 112;

/**
 * One self-contained HTML file (written atomically): the worst errors' faces are inlined as
 * JPEG data URIs, decoded through `source` (the crop the model saw), so the page needs no other
 * file, any image format shows in a browser, and an API can serve it as one response.
 */
export async function writeReportFile(file: string, source: FaceSource, c: ReportContent): Promise<void> {
  const pairs = await worstPairs(c, async (_kind, _k, _side, key) => {
    const img = await source.read(key, INLINE_SIDE);
    const jpeg = await sharp(Buffer.from(img.pixels.buffer, img.pixels.byteOffset, img.pixels.length), {
      raw: { width: img.side, height: img.side, channels: 3 },
    })
      .jpeg({ quality: 85 })
      .toBuffer();
    return `data:image/jpeg;base64,${jpeg.toString('base64')}`;
  });
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, html(c, pairs));
  renameSync(tmp, file);
}
