import { strict as assert } from 'node:assert';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { REPO } from '../helpers';

/** The Markdown a reader follows: the README, each package's, deploy's and docs'. */
function markdownFiles(): string[] {
  const files = [join(REPO, 'README.md'), join(REPO, 'deploy', 'README.md')];
  for (const p of readdirSync(join(REPO, 'packages'))) files.push(join(REPO, 'packages', p, 'README.md'));
  for (const f of readdirSync(join(REPO, 'docs'))) if (f.endsWith('.md')) files.push(join(REPO, 'docs', f));
  return files.filter((f) => existsSync(f));
}

/** Top-level folders a backticked path in any README is read from. */
const ROOTS = /^(packages|test|deploy|bench|examples|proto|docs|scripts|\.ci)\//;

/** GitHub's heading anchor: lower case, punctuation other than '-' and '_' dropped, spaces to '-'. */
const slug = (heading: string) =>
  heading
    .replace(/^#+\s*/, '')
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}_\- ]/gu, '')
    .replace(/ /g, '-');

/** The anchors of a Markdown file's headings (outside code blocks). */
function anchorsOf(file: string): Set<string> {
  const text = readFileSync(file, 'utf8').replace(/```[\s\S]*?```/g, '');
  return new Set(
    text
      .split('\n')
      .filter((l) => /^#{1,6} /.test(l))
      .map(slug),
  );
}

/** Paths a Markdown file names that do not exist (or leave the repository), and #anchors no heading has. */
function brokenPaths(file: string): string[] {
  const text = readFileSync(file, 'utf8').replace(/```[\s\S]*?```/g, ''); // code blocks hold commands, not references
  const broken: string[] = [];
  const check = (target: string, from: string) => {
    const path = resolve(from, target.replace(/[#?].*$/, '').replace(/:\d+(-\d+)?$/, ''));
    const anchor = /#(.+)$/.exec(target)?.[1];
    if (relative(REPO, path).startsWith('..')) broken.push(`${target} (outside the repository)`);
    else if (!existsSync(path)) broken.push(target);
    else if (anchor && path.endsWith('.md') && !anchorsOf(path).has(anchor)) broken.push(`${target} (no such heading)`);
  };
  for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
    const t = target as string;
    if (t.startsWith('#')) check(`${relative(dirname(file), file)}${t}`, dirname(file));
    else if (!/^(https?:|mailto:)/.test(t)) check(t, dirname(file));
  }
  const pkgSrc = file.includes(`${join(REPO, 'packages')}/`) ? join(dirname(file), 'src') : undefined;
  for (const [, token] of text.matchAll(/`([^`\s]+)`/g)) {
    const t = token as string;
    if (ROOTS.test(t) && !/[*<>{}$]/.test(t)) check(t.replace(/\/$/, ''), REPO);
    // A package README names its own source files relative to src/.
    else if (pkgSrc && /^[\w/-]+\.ts$/.test(t) && !existsSync(join(pkgSrc, t))) broken.push(`${t} (not in ${relative(REPO, pkgSrc)})`);
  }
  return broken;
}

describe('README paths', () => {
  it('every file and folder the READMEs and docs name or link exists inside the repository, and every #anchor names a heading', () => {
    const files = markdownFiles();
    assert.ok(files.length >= 5, files.join(', '));
    const broken = files.flatMap((f) => brokenPaths(f).map((p) => `${relative(REPO, f)}: ${p}`));
    assert.deepEqual(broken, []);
  });
});
