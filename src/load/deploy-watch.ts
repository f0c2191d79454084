// `baton load -c baton.yaml --report f.html`: the daemon's deploys during the run, for the
// report's markers and step table. Follows GET /v1/deploy/current while a deploy runs (it
// replays the deploy's events from its start, then streams them live), looks again every
// POLL_MS while none does, and at the end reads GET /v1/history for a deploy that began and
// ended between two looks. Bounded: it stops with the run (the open stream is cut), and the
// last call has a deadline. It only reads: the deploys go on whatever happens here.
import type { AdminClient } from '../admin/client.js';
import type { HistoryAnswer, HistoryEntry, ProgressEvent } from '../api/deploy.js';
import { historyPath, PATHS } from '../api/paths.js';
import { BatonError, messageOf } from '../errors.js';
import type { DeployRecord } from './deploys.js';

/** Short: a quick deploy (one instance, a fast health check) can take well under a second. */
export const POLL_MS = 100;
/** After an error (no daemon, say): look again this much later. */
const RETRY_MS = 1000;
const HISTORY_TIMEOUT_MS = 3000;
const HISTORY_LIMIT = 50;

export class DeployWatch {
  /** By deployId, time, kind and message: a deploy followed twice is replayed twice. */
  private readonly events = new Map<string, ProgressEvent>();
  private readonly stopped = new AbortController();
  private problem: string | undefined;
  private readonly loop: Promise<void>;

  constructor(
    private readonly client: AdminClient,
    /** Where the deploys come from, for the report ("the daemon on 127.0.0.1:9901"). */
    private readonly source: string,
  ) {
    this.loop = this.follow();
  }

  private async follow(): Promise<void> {
    const signal = this.stopped.signal;
    while (!signal.aborted) {
      let wait = POLL_MS;
      try {
        await this.client.stream<ProgressEvent>('GET', PATHS.deployCurrent, undefined, this.add, signal);
      } catch (err) {
        if (signal.aborted) break;
        if (!(err instanceof BatonError && err.code === 'BATON_E_NOT_FOUND')) {
          this.problem ??= messageOf(err);
          wait = RETRY_MS;
        }
      }
      await sleep(wait, signal);
    }
  }

  private readonly add = (e: ProgressEvent): void => {
    this.events.set(`${e.deployId} ${e.time} ${e.kind} ${e.step ?? ''} ${e.message}`, e);
  };

  /** Stops following; the events seen and the recent history. */
  async finish(): Promise<DeployRecord> {
    this.stopped.abort();
    await this.loop;
    let history: HistoryEntry[] = [];
    const deadline = AbortSignal.timeout(HISTORY_TIMEOUT_MS);
    try {
      history = (
        await this.client.call<HistoryAnswer>('GET', historyPath(HISTORY_LIMIT), undefined, deadline)
      ).history;
    } catch (err) {
      this.problem ??= deadline.aborted
        ? `GET ${PATHS.history} took longer than ${HISTORY_TIMEOUT_MS / 1000}s`
        : messageOf(err);
    }
    const events = [...this.events.values()].sort((a, b) => Date.parse(a.time) - Date.parse(b.time));
    return {
      events,
      history,
      source: this.source,
      ...(this.problem !== undefined ? { problem: this.problem } : {}),
    };
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
