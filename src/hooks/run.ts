// Runs one hook: the user's shell line through /bin/sh -c, in its own process group, with a
// timeout that kills the whole group (SIGTERM, then SIGKILL 2s later). Output lines are handed
// to `onLine` as they come and the last ones kept for the failure message.
import { spawn } from 'node:child_process';
import { sleep } from '../util/sleep.js';

const KILL_GRACE_MS = 2000;
/** Once the shell exited, how long to wait for output still held by something it left running. */
const OUTPUT_GRACE_MS = 200;
const TAIL_LINES = 20;
const MAX_LINE = 2000;

export interface ShellOptions {
  readonly cwd: string;
  readonly env: NodeJS.ProcessEnv;
  readonly timeoutMs: number;
  readonly onLine?: (line: string) => void;
}

export interface ShellResult {
  /** Exit code, or null when killed by a signal or not started. */
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly timedOut: boolean;
  /** Set when the shell could not be started (e.g. the folder is gone). */
  readonly error: Error | null;
  readonly durationMs: number;
  /** The last lines of stdout and stderr together. */
  readonly tail: readonly string[];
}

export interface ShellRun {
  readonly pid: number | undefined;
  readonly done: Promise<ShellResult>;
  /** Kills the process group now (daemon shutdown). */
  kill(): void;
}

export function runShell(command: string, o: ShellOptions): ShellRun {
  const t0 = Date.now();
  const tail: string[] = [];
  const child = spawn('/bin/sh', ['-c', command], {
    cwd: o.cwd,
    env: o.env,
    // Its own process group: the timeout reaches everything it started.
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const line = (text: string): void => {
    const l = text.length > MAX_LINE ? `${text.slice(0, MAX_LINE)}…` : text;
    tail.push(l);
    if (tail.length > TAIL_LINES) tail.shift();
    o.onLine?.(l);
  };
  for (const stream of [child.stdout, child.stderr]) {
    let partial = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      const parts = (partial + chunk).split('\n');
      partial = parts.pop()!;
      for (const p of parts) line(p.replace(/\r$/, ''));
      // A line that never ends is still bounded.
      if (partial.length > MAX_LINE) {
        line(partial);
        partial = '';
      }
    });
    stream.on('end', () => {
      if (partial) line(partial);
      partial = '';
    });
  }
  let timedOut = false;
  let killed = false;
  let killTimer: NodeJS.Timeout | undefined;
  const killGroup = (): void => {
    killed = true;
    signalGroup(child.pid, 'SIGTERM');
    killTimer ??= setTimeout(() => signalGroup(child.pid, 'SIGKILL'), KILL_GRACE_MS);
  };
  const timer = setTimeout(() => {
    timedOut = true;
    killGroup();
  }, o.timeoutMs);
  const done = new Promise<ShellResult>((resolve) => {
    let finished = false;
    const finish = (code: number | null, signal: NodeJS.Signals | null, error: Error | null): void => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      const result = (): ShellResult => ({
        code,
        signal,
        timedOut,
        error,
        durationMs: Date.now() - t0,
        tail: [...tail],
      });
      // The output pipes close when the last process holding them exits: wait a little for
      // the rest of the output, not for a background process the hook left running.
      const closed = new Promise<void>((r) => child.once('close', () => r()));
      void Promise.race([closed, sleep(OUTPUT_GRACE_MS)]).then(() => {
        child.stdout.destroy();
        child.stderr.destroy();
        // Stopped: whatever it left in the group goes too, at once.
        if (killed) signalGroup(child.pid, 'SIGKILL');
        clearTimeout(killTimer);
        resolve(result());
      });
    };
    child.once('error', (err) => finish(null, null, err));
    child.once('exit', (code, signal) => finish(code, signal, null));
  });
  return { pid: child.pid, done, kill: killGroup };
}

function signalGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // the group is gone already
  }
}
