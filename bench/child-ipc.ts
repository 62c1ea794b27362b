import type { ChildProcess } from 'node:child_process';

/** A message to or from a forked bench process: a command name and its fields. */
export type Msg = { cmd: string; [k: string]: unknown };

/** Sends `msg` to a forked bench process and resolves with its first reply named `reply`. */
export function ask(child: ChildProcess, msg: Msg, reply: string): Promise<Msg> {
  return new Promise((resolve) => {
    const on = (m: Msg) => {
      if (m.cmd === reply) {
        child.off('message', on);
        resolve(m);
      }
    };
    child.on('message', on);
    child.send(msg);
  });
}
