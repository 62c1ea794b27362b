#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { FacenetError } from '@facenet/core';
import { trainCommand } from './commands/train';
import { embedCommand } from './commands/embed';
import { verifyCommand } from './commands/verify';
import { identifyCommand } from './commands/identify';
import { clusterCommand } from './commands/cluster';
import { evaluateCommand } from './commands/evaluate';
import { dataCommand } from './commands/data';
import { modelsCommand } from './commands/models';
import { upCommand } from './commands/up';
import { jobsCommand } from './commands/jobs';
import { queuesCommand } from './commands/queues';
import { sweepsCommand } from './commands/sweeps';
import { exportCommand } from './commands/export';
import { serveCommand } from './commands/serve';
import { UsageError } from './errors';

export function buildProgram(): Command {
  const program = new Command('facenet')
    .description('Train and use FaceNet-style face embeddings (triplet loss, semi-hard mining)')
    .version('0.1.0')
    .showHelpAfterError('(run with --help for usage)');
  for (const c of [
    trainCommand(),
    embedCommand(),
    verifyCommand(),
    identifyCommand(),
    clusterCommand(),
    evaluateCommand(),
    dataCommand(),
    modelsCommand(),
    upCommand(),
    jobsCommand(),
    queuesCommand(),
    sweepsCommand(),
    exportCommand(),
    serveCommand(),
  ]) {
    program.addCommand(c);
  }
  return program;
}

/** Known errors print one line, never a stack trace (FACENET_DEBUG=1 shows it). */
async function main(): Promise<void> {
  const program = buildProgram();
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
    if (process.env.FACENET_DEBUG) process.stderr.write(`${e.stack}\n`);
    else if (!(err instanceof FacenetError) && !(err instanceof UsageError))
      process.stderr.write('(unexpected error; set FACENET_DEBUG=1 for the stack trace)\n');
    process.exitCode = err instanceof UsageError ? 2 : 1;
  }
}

void main();
