/**
 * Summarises JSON-line rows of bench/recipe-runs.ts per arm: mean and sample standard deviation
 * over seeds of the final accuracy, AUC and VAL, wall time and images seen, and the mean learning
 * curve (accuracy / AUC per evaluated step). Prints JSON, then the same as Markdown tables.
 *
 *   npx tsx bench/summarize-runs.ts runs.jsonl [more.jsonl ...]
 */
import { readFileSync } from 'node:fs';

interface Row {
  arm: string;
  seed: number;
  trainSeconds: number;
  imagesSeen: number;
  final?: { accuracy: number; auc: number; val: number };
  curve: { step: number; accuracy: number; auc: number; val: number }[];
}

const rows: Row[] = process.argv.slice(2).flatMap((f) =>
  readFileSync(f, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Row),
);
const mean = (xs: number[]) => xs.reduce((a, x) => a + x, 0) / xs.length;
const sd = (xs: number[]) => (xs.length < 2 ? 0 : Math.sqrt(xs.reduce((a, x) => a + (x - mean(xs)) ** 2, 0) / (xs.length - 1)));
const stat = (xs: number[]) => ({ mean: mean(xs), sd: sd(xs), n: xs.length });

const arms = [...new Set(rows.map((r) => r.arm))];
const summary = arms.map((arm) => {
  const rs = rows.filter((r) => r.arm === arm && r.final);
  const steps = [...new Set(rs.flatMap((r) => r.curve.map((c) => c.step)))].sort((a, b) => a - b);
  return {
    arm,
    seeds: rs.map((r) => r.seed),
    accuracy: stat(rs.map((r) => r.final!.accuracy)),
    auc: stat(rs.map((r) => r.final!.auc)),
    val: stat(rs.map((r) => r.final!.val)),
    trainSeconds: stat(rs.map((r) => r.trainSeconds)),
    imagesSeen: stat(rs.map((r) => r.imagesSeen)),
    curve: steps.map((step) => {
      const at = rs.flatMap((r) => r.curve.filter((c) => c.step === step));
      return { step, accuracy: mean(at.map((c) => c.accuracy)), auc: mean(at.map((c) => c.auc)), n: at.length };
    }),
  };
});
process.stdout.write(`${JSON.stringify(summary, null, 2)}\n\n`);

const pm = (s: { mean: number; sd: number; n: number }, scale = 100, digits = 1) =>
  `${(s.mean * scale).toFixed(digits)}${s.n > 1 ? ` ± ${(s.sd * scale).toFixed(digits)}` : ''}`;
const lines = ['| arm | seeds | accuracy | AUC | VAL@1e-3 | wall (s) | images seen |', '|---|---|---|---|---|---|---|'];
for (const s of summary)
  lines.push(
    `| ${s.arm} | ${s.seeds.join(',')} | ${pm(s.accuracy)}% | ${pm(s.auc, 1, 3)} | ${pm(s.val)}% | ${pm(s.trainSeconds, 1, 0)} | ${Math.round(s.imagesSeen.mean)} |`,
  );
const steps = [...new Set(summary.flatMap((s) => s.curve.map((c) => c.step)))].sort((a, b) => a - b);
lines.push('', `| arm (mean accuracy / AUC per step) | ${steps.join(' | ')} |`, `|---|${steps.map(() => '---').join('|')}|`);
for (const s of summary)
  lines.push(
    `| ${s.arm} | ${steps
      .map((st) => {
        const c = s.curve.find((x) => x.step === st);
        return c ? `${(c.accuracy * 100).toFixed(1)} / ${c.auc.toFixed(3)}` : '';
      })
      .join(' | ')} |`,
  );
process.stdout.write(`${lines.join('\n')}\n`);
