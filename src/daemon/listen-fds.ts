// systemd socket activation, the sd_listen_fds(3) protocol: the service manager opens the
// listening sockets and passes them as fds 3, 4, ... with LISTEN_FDS (how many), LISTEN_PID (the
// process they are for) and LISTEN_FDNAMES (their names, `:`-separated). The socket then outlives
// every `baton up` restart: connections that arrive meanwhile wait in its backlog, never refused.
// Like sd_listen_fds, variables meant for another process (LISTEN_PID not ours: a parent that was
// activated and did not unset them) are no fds at all. Node marks inherited fds close-on-exec at
// start (as sd_listen_fds does), so children get one only when it is passed to them explicitly.
import { fstatSync } from 'node:fs';
import { BatonError, messageOf } from '../errors.js';

/** The first passed fd (SD_LISTEN_FDS_START). */
export const LISTEN_FDS_START = 3;

/** The variables of the protocol, unset by clearListenFdsEnv. */
export const LISTEN_FDS_ENV = ['LISTEN_FDS', 'LISTEN_PID', 'LISTEN_FDNAMES'] as const;

/** One inherited socket. */
export interface ListenFd {
  readonly fd: number;
  /** Its FileDescriptorName= (default: the socket unit's name), or 'unknown' without LISTEN_FDNAMES. */
  readonly name: string;
}

// More than any unit would pass; a bound keeps a typo (LISTEN_FDS=10000000) from a long fstat loop.
const MAX_FDS = 1024;

const UNSET_HINT =
  'Fix the socket unit (or whatever starts baton up with these variables), or unset LISTEN_FDS and LISTEN_PID to let baton up open its listen address itself.';

function count(env: NodeJS.ProcessEnv, key: 'LISTEN_FDS' | 'LISTEN_PID', min: number): number {
  const raw = env[key] ?? '';
  const n = /^\d{1,10}$/.test(raw) ? Number(raw) : NaN;
  if (!(n >= min) || (key === 'LISTEN_FDS' && n > MAX_FDS)) {
    const what = key === 'LISTEN_FDS' ? `a number of file descriptors (0 to ${MAX_FDS})` : 'a process id';
    throw new BatonError(
      'BATON_E_LISTEN',
      `${key}=${JSON.stringify(raw)} in the environment is not ${what} (systemd socket activation). ${UNSET_HINT}`,
    );
  }
  return n;
}

/**
 * The sockets systemd passed this process: fds from 3 on, with their names. None when
 * LISTEN_PID is unset or another process's. Throws BatonError BATON_E_LISTEN when the variables
 * are malformed (LISTEN_FDS=abc, a LISTEN_FDNAMES of another count) or a promised fd is not an
 * open socket.
 */
export function listenFdsFromEnv(
  env: NodeJS.ProcessEnv = process.env,
  pid: number = process.pid,
): ListenFd[] {
  if (env.LISTEN_PID === undefined || env.LISTEN_PID === '') return [];
  if (count(env, 'LISTEN_PID', 1) !== pid) return [];
  if (env.LISTEN_FDS === undefined || env.LISTEN_FDS === '') return [];
  const n = count(env, 'LISTEN_FDS', 0);
  const rawNames = env.LISTEN_FDNAMES;
  const names = rawNames === undefined || rawNames === '' ? null : rawNames.split(':');
  if (names && names.length !== n) {
    throw new BatonError(
      'BATON_E_LISTEN',
      `LISTEN_FDNAMES=${JSON.stringify(rawNames)} names ${names.length} socket(s) but LISTEN_FDS=${n} (systemd socket activation). ${UNSET_HINT}`,
    );
  }
  const fds: ListenFd[] = [];
  for (let i = 0; i < n; i++) {
    const fd = LISTEN_FDS_START + i;
    let problem: string | null = null;
    try {
      if (!fstatSync(fd).isSocket()) problem = 'is open but not a socket';
    } catch (err) {
      problem = `is not open (${messageOf(err)})`;
    }
    if (problem) {
      throw new BatonError(
        'BATON_E_LISTEN',
        `LISTEN_FDS=${n} promises ${n === 1 ? `fd ${fd} as a socket` : `fds ${LISTEN_FDS_START} to ${LISTEN_FDS_START + n - 1} as sockets`} from systemd, but fd ${fd} ${problem}. ${UNSET_HINT}`,
      );
    }
    fds.push({ fd, name: names?.[i] ?? 'unknown' });
  }
  return fds;
}

/** Unsets LISTEN_FDS, LISTEN_PID and LISTEN_FDNAMES, so that no child takes them for its own. */
export function clearListenFdsEnv(env: NodeJS.ProcessEnv = process.env): void {
  for (const key of LISTEN_FDS_ENV) delete env[key];
}
