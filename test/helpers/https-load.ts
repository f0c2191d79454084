// HTTPS load through a proxy until stopped, with the project's load client verifying against a
// test CA (tls.test.ts, tls-reload.test.ts, acme.test.ts), and a wait for `n` more requests.
import { runLoad, type LiveCounters, type LoadResult } from '../../src/load/runner.js';
import { waitFor } from './index.js';

export interface HttpsLoadOptions {
  readonly rate: number;
  readonly newConnection?: boolean;
  /** The bound of the run (it stops by itself then); default 60s. */
  readonly durationMs?: number;
  readonly connections?: number;
  readonly servername?: string;
}

/** HTTPS load on 127.0.0.1:`port` verified against `ca` (PEM), until stopped. */
export function httpsLoad(
  port: number,
  ca: string,
  o: HttpsLoadOptions,
): { stop: () => Promise<LoadResult>; live: LiveCounters } {
  const abort = new AbortController();
  const live: LiveCounters = { sent: 0, failed: 0, failedBy: {} };
  const done = runLoad({
    url: `https://127.0.0.1:${port}/`,
    rate: o.rate,
    durationMs: o.durationMs ?? 60_000,
    connections: o.connections ?? 16,
    newConnection: o.newConnection ?? false,
    ca,
    ...(o.servername !== undefined ? { servername: o.servername } : {}),
    signal: abort.signal,
    live,
  });
  return {
    live,
    stop: async () => {
      abort.abort();
      return done;
    },
  };
}

/** Waits until `n` more requests were sent, so a load covers what came before. */
export async function more(live: { sent: number }, n: number): Promise<void> {
  const until = live.sent + n;
  await waitFor(() => live.sent >= until, { timeout: 20_000, what: `${n} more requests` });
}
