// `baton load`: requests at a constant arrival rate (an open model, like wrk2 -R or artillery's
// arrivalRate). Request i is due at start + i/rate whatever the server does, and its latency
// counts from that due time, so a slow server shows as latency instead of slowing the sender
// (no coordinated omission). Every run is bounded by its duration and a request count.
import tls from 'node:tls';
import { Agent, request, type Dispatcher } from 'undici';
import { VERSION_HEADER } from '../edge/builtin/headers.js';
import { Histogram } from './histogram.js';

export type FailureKind = 'refused' | 'reset' | 'timeout' | '5xx' | '4xx' | 'other';
export const FAILURE_KINDS: readonly FailureKind[] = ['refused', 'reset', 'timeout', '5xx', '4xx', 'other'];

export interface LoadOptions {
  readonly url: string;
  /** Requests per second. */
  readonly rate: number;
  readonly durationMs: number;
  /** Linear ramp from 0 to `rate` at the start. */
  readonly rampMs?: number;
  readonly method?: string;
  readonly headers?: Record<string, string>;
  readonly body?: string;
  /** A new connection per request instead of keep-alive. */
  readonly newConnection?: boolean;
  /** At most this many connections (and requests in flight); later ones wait, and it shows. */
  readonly connections?: number;
  readonly timeoutMs?: number;
  /**
   * Response header naming the version that answered. Default: the built-in proxy's
   * X-Baton-Version (proxy.versionHeader), else the app's own x-version.
   */
  readonly versionHeader?: string;
  /** Stops early (e.g. Ctrl-C). */
  readonly signal?: AbortSignal;
  /** Counters kept up to date during the run, for callers that report phases of it. */
  readonly live?: LiveCounters;
  /** https:// URLs: the CA (PEM) the server's certificate is checked against, besides the system's. */
  readonly ca?: string;
  /** https:// URLs: false accepts any certificate (a self-signed one). */
  readonly rejectUnauthorized?: boolean;
  /** https:// URLs: the name sent in SNI and checked against the certificate (default: the URL's host). */
  readonly servername?: string;
}

export interface LiveCounters {
  sent: number;
  failed: number;
  /** Failed answers by the version that gave them ('-' for no answer). */
  failedBy: Record<string, number>;
}

export interface SecondStats {
  /** Seconds since start. */
  readonly t: number;
  sent: number;
  ok: number;
  failed: number;
  p50: number;
  p99: number;
  versions: Record<string, number>;
}

export interface LoadResult {
  readonly url: string;
  /** When second 0 of the timeline began (ISO 8601), to place deploy events on it. */
  readonly startedAt: string;
  readonly targetRate: number;
  readonly durationMs: number;
  readonly sent: number;
  readonly completed: number;
  readonly ok: number;
  readonly failed: number;
  readonly failures: Record<FailureKind, number>;
  /** Completed requests per second over the run. */
  readonly achievedRate: number;
  readonly latencyMs: { p50: number; p90: number; p99: number; p999: number; max: number; mean: number };
  readonly versions: Record<string, number>;
  readonly timeline: SecondStats[];
  /** The first few failures, in order. */
  readonly samples: string[];
  /** The first few distinct failures, each with how often it happened in the whole run. */
  readonly examples: { readonly text: string; readonly count: number }[];
}

const DEFAULT_CONNECTIONS = 256;
/** What the example app (and many apps) send; read when the proxy names no version. */
export const DEFAULT_APP_VERSION_HEADER = 'x-version';

/** The first of `names` the answer has; '-' for none. */
function versionOf(headers: Record<string, string | string[] | undefined>, names: readonly string[]): string {
  for (const name of names) {
    const v = headers[name];
    const value = Array.isArray(v) ? v[0] : v;
    if (value) return value;
  }
  return '-';
}

export async function runLoad(o: LoadOptions): Promise<LoadResult> {
  const url = new URL(o.url);
  const connections = o.connections ?? DEFAULT_CONNECTIONS;
  const timeoutMs = o.timeoutMs ?? 10_000;
  const versionHeaders =
    o.versionHeader !== undefined
      ? [o.versionHeader.toLowerCase()]
      : [VERSION_HEADER, DEFAULT_APP_VERSION_HEADER];
  const dispatcher: Dispatcher = new Agent({
    connections,
    pipelining: 1,
    keepAliveTimeout: 30_000,
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
    ...(o.ca !== undefined || o.rejectUnauthorized !== undefined || o.servername !== undefined
      ? {
          connect: {
            // Besides the system's CAs (Node's `ca` replaces them otherwise), in one context made
            // once: a `ca` list of every root would be parsed again for each connection.
            ...(o.ca !== undefined
              ? { secureContext: tls.createSecureContext({ ca: [...tls.rootCertificates, o.ca] }) }
              : {}),
            ...(o.servername !== undefined ? { servername: o.servername } : {}),
            ...(o.rejectUnauthorized !== undefined ? { rejectUnauthorized: o.rejectUnauthorized } : {}),
          },
        }
      : {}),
  });
  const headers: Record<string, string> = { ...o.headers };
  if (o.newConnection) headers.connection = 'close';
  const failures: Record<FailureKind, number> = {
    refused: 0,
    reset: 0,
    timeout: 0,
    '5xx': 0,
    '4xx': 0,
    other: 0,
  };
  const all = new Histogram();
  const versions: Record<string, number> = {};
  const timeline: SecondStats[] = [];
  const perSecond: Histogram[] = [];
  const samples: string[] = [];
  const examples = new Map<string, number>();
  let sent = 0;
  let completed = 0;
  let ok = 0;
  const start = performance.now();
  const startedAt = new Date(performance.timeOrigin + start).toISOString();
  const end = start + o.durationMs;
  const ramp = Math.min(o.rampMs ?? 0, o.durationMs);
  const maxRequests = Math.ceil((o.rate * o.durationMs) / 1000) + 1;

  const second = (at: number): SecondStats => {
    const t = Math.floor((at - start) / 1000);
    while (timeline.length <= t) {
      timeline.push({ t: timeline.length, sent: 0, ok: 0, failed: 0, p50: 0, p99: 0, versions: {} });
      perSecond.push(new Histogram());
    }
    return timeline[t]!;
  };

  const fail = (kind: FailureKind, detail: string, due: number, version = '-'): void => {
    failures[kind]++;
    if (o.live) {
      o.live.failed++;
      o.live.failedBy[version] = (o.live.failedBy[version] ?? 0) + 1;
    }
    second(due).failed++;
    const text = `${kind}: ${detail}`;
    if (samples.length < 10) samples.push(text);
    const seen = examples.get(text);
    if (seen !== undefined) examples.set(text, seen + 1);
    else if (examples.size < 10) examples.set(text, 1);
  };

  const fire = async (due: number): Promise<void> => {
    sent++;
    if (o.live) o.live.sent++;
    second(due).sent++;
    try {
      const res = await request(url, {
        method: (o.method ?? 'GET') as 'GET',
        headers,
        dispatcher,
        ...(o.body !== undefined ? { body: o.body } : {}),
        signal: AbortSignal.timeout(timeoutMs),
      });
      await res.body.dump();
      const now = performance.now();
      const ms = now - due;
      completed++;
      all.record(ms);
      perSecond[Math.floor((due - start) / 1000)]?.record(ms);
      const version = versionOf(res.headers, versionHeaders);
      versions[version] = (versions[version] ?? 0) + 1;
      const sec = second(due);
      sec.versions[version] = (sec.versions[version] ?? 0) + 1;
      if (res.statusCode >= 500) fail('5xx', `${res.statusCode} from ${version}`, due, version);
      else if (res.statusCode >= 400) fail('4xx', `${res.statusCode} from ${version}`, due, version);
      else {
        ok++;
        sec.ok++;
      }
    } catch (err) {
      completed++;
      const e = err as NodeJS.ErrnoException;
      fail(classify(e), `${e.code ?? e.name} ${e.message}`, due);
    }
  };

  // The schedule: request i is due at start + the time the (ramped) rate reaches i.
  const dueAt = (i: number): number => {
    const rampCount = (o.rate * ramp) / 2000; // requests sent during the ramp
    if (i < rampCount) return start + Math.sqrt((2 * i * ramp) / (o.rate / 1000));
    return start + ramp + ((i - rampCount) * 1000) / o.rate;
  };

  const pending = new Set<Promise<void>>();
  let i = 0;
  while (!o.signal?.aborted && i < maxRequests) {
    const due = dueAt(i);
    if (due >= end) break;
    const now = performance.now();
    if (due > now) {
      await sleep(Math.min(due - now, 50));
      continue;
    }
    // All requests due by now go out at once (late timers must not lower the rate).
    const p = fire(due);
    pending.add(p);
    void p.finally(() => pending.delete(p));
    i++;
  }
  const sendingMs = performance.now() - start;
  // In-flight requests get their timeout to finish; then the run is over.
  // The deadline's timer is cleared once all answered: it must not hold the process open.
  let deadline: NodeJS.Timeout | undefined;
  await Promise.race([
    Promise.all(pending),
    new Promise<void>((r) => (deadline = setTimeout(r, timeoutMs + 1000))),
  ]);
  clearTimeout(deadline);
  await dispatcher.close().catch(() => undefined);
  const elapsed = Math.max(1, performance.now() - start);
  timeline.forEach((s, k) => {
    s.p50 = round(perSecond[k]!.percentile(50));
    s.p99 = round(perSecond[k]!.percentile(99));
  });
  const failed = FAILURE_KINDS.reduce((n, k) => n + failures[k], 0);
  return {
    url: o.url,
    startedAt,
    targetRate: o.rate,
    durationMs: Math.round(Math.min(elapsed, o.durationMs)),
    sent,
    completed,
    ok,
    failed,
    failures,
    // Over the time the schedule ran: the whole duration, or until it was stopped.
    achievedRate: round((sent * 1000) / Math.max(1, Math.min(sendingMs, o.durationMs))),
    latencyMs: {
      p50: round(all.percentile(50)),
      p90: round(all.percentile(90)),
      p99: round(all.percentile(99)),
      p999: round(all.percentile(99.9)),
      max: round(all.max),
      mean: round(all.mean()),
    },
    versions,
    timeline,
    samples,
    examples: [...examples].map(([text, count]) => ({ text, count })),
  };
}

export function classify(e: NodeJS.ErrnoException): FailureKind {
  // A TLS or OpenSSL error may carry a number or nothing as its code.
  const code = typeof e.code === 'string' ? e.code : '';
  if (code === 'ECONNREFUSED') return 'refused';
  if (code === 'ECONNRESET' || code === 'EPIPE' || code === 'UND_ERR_SOCKET') return 'reset';
  if (code.includes('TIMEOUT') || e.name === 'TimeoutError' || code === 'ETIMEDOUT') return 'timeout';
  return 'other';
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
