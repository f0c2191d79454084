// One instance on a remote host, as the SSH driver hands it out: alive until a host that answers
// says it is gone (monitor.ts), its log tail as last fetched, its pid file beside its log.
import path from 'node:path';
import type { ExitInfo, Instance, InstanceRecord } from '../driver.js';
import { lastLines, type SshHost } from './transport.js';

/** How long after its start an instance's log tail rides along with each poll. */
export const TAIL_AFTER_START_MS = 5000;

/** A remote instance: alive until a host that answers says it is gone. */
export class SshInstance implements Instance {
  readonly exited: Promise<ExitInfo>;
  private exitInfo: ExitInfo | null = null;
  private resolveExited!: (info: ExitInfo) => void;
  /** The last log tail fetched (at start-up, while it gets ready, when seen gone, at stop). */
  tailText = '';
  /** Its log's size at the last poll that answered (monitor.ts). */
  lastLogSize: { readonly bytes: number; readonly at: number } | null = null;
  /** A stop is in progress: the monitor leaves it to the stop. */
  stopping = false;

  constructor(
    readonly record: InstanceRecord,
    readonly host: SshHost,
    /** Until then, each poll fetches its log tail too (its readiness window). */
    public tailUntil: number,
  ) {
    this.exited = new Promise<ExitInfo>((r) => (this.resolveExited = r));
  }

  alive(): boolean {
    return this.exitInfo === null;
  }

  /** The last lines fetched from the remote log (logTail is sync; SshDriver.fetchLog reads it). */
  logTail(lines = 20): string {
    return this.tailText === '' ? '' : lastLines(this.tailText, lines);
  }

  logSize(): { bytes: number; at: number } | null {
    return this.lastLogSize;
  }

  /** The remote pid file, next to the log: <dir>/run/<id>.pid. */
  get pidFile(): string {
    return pidFileOf(this.record);
  }

  markExited(info: ExitInfo): void {
    if (this.exitInfo) return;
    this.exitInfo = info;
    this.resolveExited(info);
  }
}

function pidFileOf(r: InstanceRecord): string {
  return path.posix.join(path.posix.dirname(path.posix.dirname(r.logFile)), 'run', `${r.id}.pid`);
}
