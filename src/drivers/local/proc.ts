// Telling a process from another that got its pid later. A pid is reused once its process is
// gone (after a wrap, and after every reboot), so a recorded pid alone may name a stranger: the
// instance (or daemon) is identified by its start time (field 22 of /proc/<pid>/stat, in clock
// ticks since boot), the boot it ran in (/proc/sys/kernel/random/boot_id), and for instances
// the BATON_INSTANCE_ID Baton put in its environment. The SSH driver's remote scripts apply the
// same rule in sh (`ours` in src/drivers/ssh/scripts.ts).
import { existsSync, readFileSync } from 'node:fs';
import type { InstanceRecord } from '../driver.js';

/** Whether /proc can be read here (Linux); elsewhere a pid is all there is to go by. */
export const HAVE_PROC = existsSync('/proc/self/stat');

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export interface ProcStat {
  /** R, S, D, Z (zombie: exited, not reaped), X... */
  readonly state: string;
  /** Clock ticks since boot. */
  readonly startTime: number;
}

/** /proc/<pid>/stat, or null when there is no such process. */
export function statOf(pid: number): ProcStat | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses, the last ") " ends it;
  // field 3 (state) is then the first, so field 22 (starttime) the 20th.
  const fields = text.slice(text.lastIndexOf(') ') + 2).split(' ');
  const startTime = Number(fields[19]);
  if (!fields[0] || !Number.isSafeInteger(startTime)) return null;
  return { state: fields[0], startTime };
}

/** The process exists and has not exited (a zombie has). */
export function running(pid: number): boolean {
  if (!HAVE_PROC) return pidAlive(pid);
  const s = statOf(pid);
  return s !== null && s.state !== 'Z' && s.state !== 'X';
}

/** The environment the process was started with; null when it cannot be read (gone, not ours to read). */
export function environOf(pid: number): string[] | null {
  try {
    return readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
  } catch {
    return null;
  }
}

/** Its command line, word by word; null when it cannot be read. */
export function cmdlineOf(pid: number): string[] | null {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').slice(0, -1);
  } catch {
    return null;
  }
}

let boot: string | null | undefined;

/** This boot's random id (a new one at every boot); null without /proc. */
export function bootId(): string | null {
  if (boot === undefined) {
    try {
      boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || null;
    } catch {
      boot = null;
    }
  }
  return boot;
}

/** What to record at spawn (or at start-up, for the daemon itself) to know the process again. */
export function identityOf(pid: number): { startTime?: number; bootId?: string } {
  const s = statOf(pid);
  const b = bootId();
  return s === null ? {} : { startTime: s.startTime, ...(b !== null ? { bootId: b } : {}) };
}

/**
 * Whether the process that holds `pid` is the one started at `startTime` in boot `recordedBoot`
 * (both as recorded; an unknown one is not checked). False when it is gone or a zombie.
 */
export function sameProcess(pid: number, startTime: number | undefined, recordedBoot?: string): boolean {
  if (!HAVE_PROC) return pidAlive(pid);
  const s = statOf(pid);
  if (s === null || s.state === 'Z' || s.state === 'X') return false;
  if (startTime === undefined) return true;
  if (recordedBoot !== undefined && bootId() !== null && recordedBoot !== bootId()) return false;
  return s.startTime === startTime;
}

/**
 * Whether the live process holding `record.pid` is the instance the record names: 'ours',
 * 'gone' (no such process, or a zombie), or why not (`notOurs`: another process got its pid).
 * The rule:
 * - a recorded start time (and boot) must match;
 * - a BATON_INSTANCE_ID in its environment must be the recorded one;
 * - without a recorded start time, the environment must show it is ours: the recorded
 *   BATON_INSTANCE_ID, or, for a record written by an older Baton (no start time, no instance
 *   id: an upgrade), the PORT and BATON_VERSION that Baton has always given every instance.
 *   An environment that cannot be read then means "not ours": a process Baton cannot prove it
 *   started is never signalled.
 * Without /proc (not Linux) the pid is all there is, as before.
 */
export function identify(record: InstanceRecord): 'ours' | 'gone' | { readonly notOurs: string } {
  const pid = record.pid;
  if (!HAVE_PROC) return pidAlive(pid) ? 'ours' : 'gone';
  const s = statOf(pid);
  if (s === null || s.state === 'Z' || s.state === 'X') return 'gone';
  if (record.startTime !== undefined) {
    const b = bootId();
    if (record.bootId !== undefined && b !== null && record.bootId !== b) {
      return {
        notOurs: `pid ${pid} belongs to another process now (the machine rebooted since the instance started)`,
      };
    }
    if (s.startTime !== record.startTime) {
      return {
        notOurs: `pid ${pid} belongs to another process now (started at tick ${s.startTime} since boot, the instance at ${record.startTime})`,
      };
    }
  }
  const env = environOf(pid);
  const id = env?.find((l) => l.startsWith('BATON_INSTANCE_ID='));
  if (
    record.instanceId !== undefined &&
    id !== undefined &&
    id !== `BATON_INSTANCE_ID=${record.instanceId}`
  ) {
    return {
      notOurs: `pid ${pid} belongs to another process now (${id} in its environment, not ${record.instanceId})`,
    };
  }
  // The start time matched: that is the process (an environment cleared by sudo or env -i is fine).
  if (record.startTime !== undefined) return 'ours';
  const want =
    record.instanceId !== undefined
      ? [`BATON_INSTANCE_ID=${record.instanceId}`]
      : [`PORT=${record.port}`, `BATON_VERSION=${record.version}`];
  if (env === null)
    return { notOurs: `pid ${pid} is a process whose environment cannot be read: not provably ours` };
  const missing = want.filter((w) => !env.includes(w));
  if (missing.length) {
    return {
      notOurs: `pid ${pid} belongs to another process now (no ${missing.join(' and ')} in its environment)`,
    };
  }
  return 'ours';
}
