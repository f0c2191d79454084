// One daemon per state directory: a pid file taken at start, "<pid> <start time> <boot id>"
// (see drivers/local/proc.ts). A second `baton up` on the same stateDir is refused while that
// daemon runs. A file whose process is gone, or is another process now (its pid reused after a
// reboot or a wrap), is stale and taken over. A file of an older Baton holds the pid alone: its
// process counts as the daemon only when its command line is a `baton ... up`.
import { mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { bootId, cmdlineOf, HAVE_PROC, identityOf, running, sameProcess } from '../drivers/local/proc.js';
import { BatonError, messageOf } from '../errors.js';
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
function daemonOf(h: Holder): string | null {
  if (!Number.isSafeInteger(h.pid) || h.pid <= 1 || h.pid === process.pid || !running(h.pid)) return null;
  if (!HAVE_PROC) return `pid ${h.pid} runs`;
  if (h.startTime !== undefined) {
    return sameProcess(h.pid, h.startTime, h.bootId) ? `pid ${h.pid}, started at tick ${h.startTime}` : null;
  }
  const argv = cmdlineOf(h.pid);
  // Unreadable (another user's, /proc mounted hidepid): it cannot be told apart, so it counts.
  if (argv === null) return `pid ${h.pid}, whose command line cannot be read`;
  return argv.includes('up') && argv.some((a) => /baton/i.test(a)) ? `pid ${h.pid}: ${argv.join(' ')}` : null;
}

export function takeDaemonLock(stateDir: string, configFile: string, log?: Logger): () => void {
  mkdirSync(stateDir, { recursive: true });
  const file = path.join(stateDir, 'daemon.pid');
  const line = `${process.pid} ${identityOf(process.pid).startTime ?? '-'} ${bootId() ?? '-'}\n`;
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(file, line, { flag: 'wx' });
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
      const daemon = daemonOf(holder);
      if (daemon !== null) {
        throw new BatonError(
          'BATON_E_CONFLICT',
          `another baton daemon (${daemon}) already runs with state in ${stateDir} (config ${configFile}). Stop it first, or give this one its own stateDir. If that process is not a Baton daemon, delete ${file}.`,
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
          'daemon.pid names a process that is not a Baton daemon: taken over',
        );
      }
      unlinkSync(file);
    }
  }
  throw new BatonError('BATON_E_STATE', `cannot take the daemon lock ${file}`);
}
