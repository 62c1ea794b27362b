import type { Command } from 'commander';
import { COMMANDS } from './command-index';

/** A default as the reference shows it: none for options whose default comes from the environment ($FACENET_...), which differ per machine. */
function defaultOf(flags: string, description: string, value: unknown): string {
  if (value === undefined || /\$[A-Z_]+/.test(description)) return '';
  if (typeof value === 'object' && value !== null) return '';
  return JSON.stringify(value);
}

const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

function renderCommand(c: Command, path: string[], out: string[]): void {
  const args = c.registeredArguments.map((a) => (a.required ? `<${a.name()}>` : `[${a.name()}]`)).join(' ');
  const name = [...path, c.name()].join(' ');
  const options = c.options.filter((o) => !o.hidden);
  if (c.commands.length === 0 || options.length > 0 || args) {
    out.push(`### \`${name}${args ? ` ${args}` : ''}\``, '', c.description(), '');
    if (options.length) {
      out.push('| option | meaning | default |', '|---|---|---|');
      for (const o of options)
        out.push(`| \`${cell(o.flags)}\` | ${cell(o.description)} | ${cell(defaultOf(o.flags, o.description, o.defaultValue))} |`);
      out.push('');
    }
  } else out.push(`### \`${name}\``, '', c.description(), '');
  for (const sub of c.commands) renderCommand(sub, [...path, c.name()], out);
}

/**
 * docs/cli.md, rendered from the commands' own definitions (commander): every command, its
 * arguments and options with their help and defaults. test/unit/cli-reference.test.ts fails when
 * the committed page differs, so a flag cannot be documented and missing, or the reverse;
 * `npm run docs:cli` writes it again.
 */
export async function renderCliReference(): Promise<string> {
  const out = [
    '# The `facenet` command',
    '',
    'Generated from the commands themselves by `npm run docs:cli` (packages/cli/src/cli-reference.ts); do not edit by hand.',
    'Defaults read from the environment (`$FACENET_...`) are left out here; `facenet <command> --help` shows them.',
    '',
  ];
  for (const c of Object.values(COMMANDS)) renderCommand(await c.load(), ['facenet'], out);
  return `${out.join('\n').trimEnd()}\n`;
}
