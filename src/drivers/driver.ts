// How the controller starts, watches and stops app instances. One implementation per place
// instances run: local processes (src/drivers/local), hosts over SSH (src/drivers/ssh).

/** What is persisted about an instance, enough to find it again after a daemon restart. */
export interface InstanceRecord {
  /** "<service>-<version>-<port>", unique among live instances. */
  readonly id: string;
  readonly version: string;
  readonly host: string;
  readonly port: number;
  readonly pid: number;
  readonly logFile: string;
  readonly startedAt: string;
  /**
   * Who the process is, so that a pid reused by another process is never taken for it (see
   * drivers/local/proc.ts): its start time in clock ticks since boot (/proc/<pid>/stat), the
   * boot's id, and the BATON_INSTANCE_ID put in its environment. Absent in files written by
   * an older Baton, and the start time when the process was gone before it could be read.
   */
  readonly startTime?: number;
  readonly bootId?: string;
  readonly instanceId?: string;
}

export interface ExitInfo {
  readonly code: number | null;
  readonly signal: string | null;
}

export interface Instance {
  readonly record: InstanceRecord;
  /** Resolves when the process has exited (for adopted processes, when it is seen gone). */
  readonly exited: Promise<ExitInfo>;
  alive(): boolean;
  /** The last lines of its log, for error messages. */
  logTail(lines?: number): string;
  /**
   * How many bytes its log held, and when that was known (epoch ms, taken after the size was
   * read): for the log index of `baton logs --since`. Null when not known (yet).
   */
  logSize?(): { readonly bytes: number; readonly at: number } | null;
}

/** Lines of a log, as `baton logs` prints them. */
export interface LogText {
  readonly text: string;
  /** Reading from an offset: there were more lines from there than asked for (the first are left out). */
  readonly cut?: boolean;
}

/** Where a new instance runs: a host the driver knows, and a port free there. */
export interface Placement {
  readonly host: string;
  readonly port: number;
}

export interface StartSpec {
  readonly service: string;
  /** From allocate(). */
  readonly host: string;
  readonly version: string;
  readonly port: number;
  /** 1-based slot number, exposed as BATON_INSTANCE. */
  readonly slot: number;
}

export interface StopOptions {
  readonly signal: NodeJS.Signals;
  readonly timeoutMs: number;
}

export interface InstanceDriver {
  /**
   * Where the next instance of `version` goes: a host (the local driver has one; a multi-host
   * driver spreads each version's instances over the hosts) and a port free there, not used by
   * any of `running` on that host. `onHosts` (names) limits the choice (a canary's hosts).
   */
  allocate(
    running: readonly InstanceRecord[],
    version?: string,
    onHosts?: readonly string[],
  ): Promise<Placement>;
  /** Starts the process; resolves once it is spawned (readiness is checked by the caller). */
  start(spec: StartSpec): Promise<Instance>;
  /** Signals the whole process group, waits `timeoutMs`, then SIGKILL. Resolves when gone. */
  stop(instance: Instance, options: StopOptions): Promise<{ forced: boolean }>;
  /**
   * Re-attaches to an instance from a previous daemon run, or null when it is gone: exited, or
   * its pid now held by another process, which is never signalled (`lost` hears why). A remote
   * driver that cannot tell at once finds out at its first check, and reports it gone then.
   */
  adopt(record: InstanceRecord, lost?: (reason: string) => void): Instance | null;
  /**
   * The last `lines` lines of an instance's log, read where it runs (for `baton logs`); with
   * `from`, of the lines that begin at or after that byte offset (a line `from` falls inside
   * is left out: it was begun before).
   */
  fetchLog(record: InstanceRecord, lines: number, from?: number): Promise<LogText>;
  /** Ends background work (SSH monitors and connections); the instances keep running. */
  close?(): Promise<void>;
}
