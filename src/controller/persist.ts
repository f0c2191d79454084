// The controller's state in memory and its writes to stateDir: the state file, written whole
// before every deploy step, and the history lines. A write that fails (a full disk) must not
// stop what is under way: it is tried again every STATE_RETRY_MS, history lines waiting in
// memory, in order, until they can be written.
import { BatonError, messageOf } from '../errors.js';
import type { Logger } from '../log.js';
import type { DeployProof } from '../api/proof.js';
import type { DeployResult, DeploymentState, HistoryEntry, ServiceState, StateStore } from './state.js';

/** How often a state file (or history line) that could not be written (a full disk) is tried again. */
export const STATE_RETRY_MS = 5000;
/** History lines kept in memory: history() up to this many reads no file (the dashboard asks often). */
const RECENT_HISTORY = 50;

export class Persistence {
  readonly state: ServiceState;
  /** Why the state file on disk is behind the one in memory (a write failed), or null. */
  private unsaved: string | null = null;
  private saveTimer: NodeJS.Timeout | null = null;
  /** History lines not written yet (a full disk), oldest first: written before any newer one. */
  private readonly pendingHistory: HistoryEntry[] = [];
  /** The last history lines, oldest first (only this process appends); null: not read yet. */
  private recent: HistoryEntry[] | null = null;
  /** `recent` is the whole history. */
  private recentAll = false;
  private closed = false;

  constructor(
    private readonly store: StateStore,
    private readonly log: Logger,
  ) {
    this.state = store.load();
  }

  /** Writes the state file; throws (BATON_E_STATE) when it cannot, and tries again later. */
  persist(): void {
    const err = this.save();
    if (err) throw err;
  }

  /** persist() for a running deploy: throws only until it starts going back (see `unwinding`). */
  persistStep(running: { unwinding: boolean }): void {
    try {
      this.persist();
    } catch (err) {
      if (running.unwinding) return;
      running.unwinding = true;
      throw err;
    }
  }

  /**
   * Writes the state file (and any history line still pending) and returns null, or the error:
   * a state file that cannot be written (a full disk) must not stop what is under way. The whole
   * state is written each time, so the next write that works (tried every STATE_RETRY_MS) brings
   * the file up to date; until then it holds the last state that could be written.
   */
  save(): BatonError | null {
    this.flushHistory();
    try {
      this.store.save(this.state);
    } catch (err) {
      const e =
        err instanceof BatonError ? err : new BatonError('BATON_E_STATE', messageOf(err), { cause: err });
      if (this.unsaved === null) {
        this.log.error(
          { error: e.message },
          `could not save the state; tried again every ${STATE_RETRY_MS / 1000}s`,
        );
      }
      this.unsaved = e.message;
      this.scheduleSave();
      return e;
    }
    if (this.unsaved !== null && this.pendingHistory.length === 0) {
      this.unsaved = null;
      this.log.info({ file: this.store.stateFile }, 'state saved again');
    }
    return null;
  }

  private scheduleSave(): void {
    if (this.closed || this.saveTimer) return;
    this.saveTimer = setTimeout(() => {
      this.saveTimer = null;
      this.save();
    }, STATE_RETRY_MS);
    this.saveTimer.unref();
  }

  /** Records a deploy in history; a line that cannot be written yet waits in memory, in order. */
  appendHistory(entry: HistoryEntry): void {
    this.pendingHistory.push(entry);
    if (this.recent) {
      this.recent.push(entry);
      if (this.recent.length > RECENT_HISTORY) {
        this.recent.shift();
        this.recentAll = false;
      }
    }
    this.flushHistory();
  }

  private flushHistory(): void {
    while (this.pendingHistory.length) {
      try {
        this.store.append(this.pendingHistory[0]!);
      } catch (err) {
        if (this.unsaved === null) {
          this.log.error(
            { error: messageOf(err) },
            `could not write to the history; tried again every ${STATE_RETRY_MS / 1000}s`,
          );
        }
        this.unsaved = messageOf(err);
        this.scheduleSave();
        return;
      }
      this.pendingHistory.shift();
    }
  }

  /** Newest first, the lines not written yet (a full disk) included. */
  history(limit = 50): HistoryEntry[] {
    const r = this.recent;
    if (r && (r.length >= limit || this.recentAll)) return r.slice(-limit).reverse();
    const out = [...[...this.pendingHistory].reverse(), ...this.store.history(limit)].slice(0, limit);
    this.recent = out.slice(0, RECENT_HISTORY).reverse();
    this.recentAll = out.length < limit && out.length <= RECENT_HISTORY;
    return out;
  }

  /** History lines still waiting to be written. */
  get pendingLines(): number {
    return this.pendingHistory.length;
  }

  /** Daemon shutdown: no more retries (a last save() may still be called). */
  close(): void {
    this.closed = true;
    if (this.saveTimer) clearTimeout(this.saveTimer);
    this.saveTimer = null;
  }
}

export function historyEntry(
  d: DeploymentState,
  result: DeployResult,
  reason: string | null,
  proof?: DeployProof | null,
): HistoryEntry {
  const end = Date.now();
  return {
    id: d.id,
    version: d.version,
    previousVersion: d.previousVersion,
    strategy: d.strategy,
    actor: d.actor,
    rollback: d.rollback,
    ...(d.forced ? { forced: true } : {}),
    startedAt: d.startedAt,
    endedAt: new Date(end).toISOString(),
    durationMs: end - Date.parse(d.startedAt),
    result,
    reason,
    ...(proof !== undefined ? { proof } : {}),
  };
}
