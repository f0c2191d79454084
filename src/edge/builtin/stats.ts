// Per-target request counters and a fixed-bucket latency histogram. Plain numbers on the hot
// path; /metrics and canary analysis read them when asked. A request the client abandoned is
// no answer of the target's: it is counted apart (clientAborts), never as a status class.

/** Upper bounds (seconds) of the latency buckets, as Prometheus `le` labels. */
export const LATENCY_BUCKETS = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
] as const;
const BUCKETS_MS = LATENCY_BUCKETS.map((s) => s * 1000);

/** Status classes counted per target: 1xx..5xx, and "error" for requests with no upstream answer. */
export const STATUS_CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx', 'error'] as const;
export type StatusClass = (typeof STATUS_CLASSES)[number];

export class TargetStats {
  /** Indexed like STATUS_CLASSES. */
  readonly byClass = new Float64Array(STATUS_CLASSES.length);
  /** Cumulative counts per bucket, plus +Inf at the end. */
  readonly buckets = new Float64Array(BUCKETS_MS.length + 1);
  latencySumSeconds = 0;
  requests = 0;
  /**
   * Requests the client gave up on (closed, or timed out by clientBodyTimeout or
   * clientSendTimeout) before the target's answer was complete; in no class, no bucket.
   */
  clientAborts = 0;
  retries = 0;
  passiveDowns = 0;

  /** `status` 0 means the request got no answer from the target. */
  record(status: number, ms: number): void {
    this.requests++;
    const cls = status === 0 ? 5 : Math.min(4, Math.max(0, ((status / 100) | 0) - 1));
    this.byClass[cls]!++;
    this.latencySumSeconds += ms / 1000;
    let i = 0;
    while (i < BUCKETS_MS.length && ms > BUCKETS_MS[i]!) i++;
    this.buckets[i]!++;
  }
}
