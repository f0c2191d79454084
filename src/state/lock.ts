// One daemon per state directory: a pid file taken at start, "<pid> <start time> <boot id>"
// (see drivers/local/proc.ts). A second `baton up` on the same stateDir is refused while that
// daemon runs. A file whose process is gone, or is another process now (its pid reused after a
// reboot or a wrap), is stale and taken over. A file of an older Baton holds the pid alone: its
// process counts as the daemon only when its command line is a `baton ... up`.
import { mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { bootId, cmdlineOf, HAVE_PROC, identityOf, running, sameProcess } from '../drivers/local/proc.js';
import { BatonError, messageOf } from '../errors.js';
import { writeFileAtomic } from './atomic.js';
import type { Logger } from '../log.js';

interface Holder {
  readonly pid: number;
  readonly startTime?: number;
  readonly bootId?: string;
}

function parse(text: string): Holder {
  const [pid, start, boot] = text.trim().split(/\s+/);
  const startTime = Number(start);
  return {
    pid: Number(pid),
    ...(start !== undefined && start !== '-' && Number.isSafeInteger(startTime) ? { startTime } : {}),
    ...(boot !== undefined && boot !== '-' ? { bootId: boot } : {}),
  };
}

/** Why the file's process is a running Baton daemon, or null when it is not (stale). */
function daemonOf(h: Holder, command: string): string | null {
  if (!Number.isSafeInteger(h.pid) || h.pid <= 1 || h.pid === process.pid || !running(h.pid)) return null;
  if (!HAVE_PROC) return `pid ${h.pid} runs`;
  if (h.startTime !== undefined) {
    return sameProcess(h.pid, h.startTime, h.bootId) ? `pid ${h.pid}, started at tick ${h.startTime}` : null;
  }
  const argv = cmdlineOf(h.pid);
  // Unreadable (another user's, /proc mounted hidepid): it cannot be told apart, so it counts.
  if (argv === null) return `pid ${h.pid}, whose command line cannot be read`;
  return argv.includes(command) && argv.some((a) => /baton/i.test(a))
    ? `pid ${h.pid}: ${argv.join(' ')}`
    : null;
}

/** Which lock: the controller's (`baton up`) or the data plane's (`baton dataplane`). */
export interface LockKind {
  /** The file in stateDir. */
  readonly file: string;
  /** The subcommand an older Baton's process (pid alone in the file) runs. */
  readonly command: string;
  /** What a holder is called in the refusal. */
  readonly what: string;
  /** What a stale file's process is not. */
  readonly label: string;
}

export const DAEMON_LOCK: LockKind = {
  file: 'daemon.pid',
  command: 'up',
  what: 'baton daemon',
  label: 'Baton daemon',
};
export const DATAPLANE_LOCK: LockKind = {
  file: 'dataplane.pid',
  command: 'dataplane',
  what: 'baton data plane (the proxy process)',
  label: 'Baton data plane',
};

/** The pid of the live process holding the lock, or null when none holds it (no file, stale). */
export function lockHolder(stateDir: string, kind: LockKind): number | null {
  let text: string;
  try {
    text = readFileSync(path.join(stateDir, kind.file), 'utf8');
  } catch {
    return null;
  }
  const holder = parse(text);
  return daemonOf(holder, kind.command) === null ? null : holder.pid;
}

export function takeDaemonLock(
  stateDir: string,
  configFile: string,
  log?: Logger,
  kind: LockKind = DAEMON_LOCK,
  /** The holder hands over to this process (a data plane's upgrade): the file is replaced. */
  { takeOver = false }: { takeOver?: boolean } = {},
): () => void {
  mkdirSync(stateDir, { recursive: true });
  const file = path.join(stateDir, kind.file);
  const line = `${process.pid} ${identityOf(process.pid).startTime ?? '-'} ${bootId() ?? '-'}\n`;
  if (takeOver) writeFileAtomic(file, line);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      if (!takeOver) writeFileSync(file, line, { flag: 'wx' });
      return () => {
        try {
          if (parse(readFileSync(file, 'utf8')).pid === process.pid) unlinkSync(file);
        } catch {
          // already gone
        }
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new BatonError('BATON_E_STATE', `cannot write ${file} (${messageOf(err)})`, { cause: err });
      }
      const text = readFileSync(file, 'utf8');
      const holder = parse(text);
      const daemon = daemonOf(holder, kind.command);
      if (daemon !== null) {
        throw new BatonError(
          'BATON_E_CONFLICT',
          `another ${kind.what} (${daemon}) already runs with state in ${stateDir} (config ${configFile}). Stop it first, or give this one its own stateDir. If that process is not a Baton daemon, delete ${file}.`,
        );
      }
      // Stale: its daemon is gone (killed, or the machine rebooted), its pid maybe another's.
      if (
        Number.isSafeInteger(holder.pid) &&
        holder.pid > 1 &&
        running(holder.pid) &&
        holder.pid !== process.pid
      ) {
        log?.warn(
          { file, pid: holder.pid },
          `${kind.file} names a process that is not a ${kind.label}: taken over`,
        );
      }
      unlinkSync(file);
    }
  }
  throw new BatonError('BATON_E_STATE', `cannot take the lock ${file}`);
}
