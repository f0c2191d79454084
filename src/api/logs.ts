// GET /v1/logs?select=1.4.2&lines=50&since=10m: the last lines of instances' logs, read where
// each runs. `select`: an instance id, a version or a host's address (none: the live
// instances). `since`: a duration back from now (10m, 1h30m) or a time (ISO 8601): only the
// lines written since then, and up to a second before (the controller notes each log's size
// once a second: src/controller/log-index.ts).
import { parseDuration } from '../config/units.js';

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
  /**
   * With `since`: the time of the noted size the lines are read from (ISO 8601; at or before
   * `since`), or null: from the log's beginning (nothing noted that early).
   */
  readonly from?: string | null;
  /** With `since`: more lines were written since then than `lines` (the first are left out). */
  readonly cut?: boolean;
}

export interface LogsAnswer {
  readonly logs: InstanceLog[];
}

/**
 * The time `--since` names, in epoch ms: a duration back from `now` (10m, 1h30m) or a date and
 * time (ISO 8601: 2026-12-03T10:00:00Z; without a zone, the daemon's local time). Undefined:
 * neither.
 */
export function sinceTime(text: string, now: number): number | undefined {
  const ms = parseDuration(text);
  if (ms !== undefined) return ms > 0 ? now - ms : undefined;
  if (!/^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/.test(text.trim())) {
    return undefined;
  }
  const at = Date.parse(text.trim());
  return Number.isFinite(at) ? at : undefined;
}

/** What sinceTime takes, for error messages. */
export const SINCE_HELP = 'a duration back from now (10m, 1h30m) or a time (2026-12-03T10:00:00Z)';
