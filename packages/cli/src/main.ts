#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { COMMANDS } from './command-index';
import { UsageError } from './errors';

export const VERSION = '0.1.0';

/**
 * The program with the command being run fully loaded and every other one as a stub (name and
 * summary, enough for `facenet --help`); `names` chooses which to load (default: the first
 * argument, if it names a command).
 */
export async function buildProgram(names: string[] = process.argv.slice(2, 3)): Promise<Command> {
  const program = new Command('facenet')
    .description('Train and use FaceNet-style face embeddings (triplet loss, semi-hard mining)')
    .version(VERSION)
    .showHelpAfterError('(run with --help for usage)');
  for (const [name, c] of Object.entries(COMMANDS)) {
    program.addCommand(names.includes(name) ? await c.load() : new Command(name).description(c.summary));
  }
  return program;
}

/** Known errors print one line, never a stack trace (FACENET_DEBUG=1 shows it). */
async function main(): Promise<void> {
  const program = await buildProgram();
  // Commander exits the process itself unless told otherwise, on every (sub)command.
  const overrideExit = (c: Command): void => {
    c.exitOverride();
    c.commands.forEach(overrideExit);
  };
  overrideExit(program);
  try {
    await program.parseAsync(process.argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      process.exitCode = err.exitCode === 0 ? 0 : 2;
      return;
    }
    const e = err as Error;
    process.stderr.write(`error: ${e.message}\n`);
    // The library is loaded by now (a command ran); its error classes say whether this was expected.
    const { FacenetError } = await import('@facenet/core');
    if (process.env.FACENET_DEBUG) process.stderr.write(`${e.stack}\n`);
    else if (!(err instanceof FacenetError) && !(err instanceof UsageError))
      process.stderr.write('(unexpected error; set FACENET_DEBUG=1 for the stack trace)\n');
    process.exitCode = err instanceof UsageError ? 2 : 1;
  }
}

void main();
