// GET /v1/logs?select=1.4.2&lines=50: the last lines of instances' logs, read where each runs.
// `select`: an instance id, a version or a host's address (none: the live instances).

/** One instance's log tail. */
export interface InstanceLog {
  readonly id: string;
  readonly version: string;
  readonly host: string;
  readonly port: number;
  readonly logFile: string;
  readonly text: string;
  /** Why its log could not be read (its host unreachable, the file gone). */
  readonly error?: string;
}

export interface LogsAnswer {
  readonly logs: InstanceLog[];
}
