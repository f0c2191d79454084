// Per-target request counters and a fixed-bucket latency histogram. Plain numbers on the hot
// path; /metrics and canary analysis read them when asked. A request the client abandoned is
// no answer of the target's: it is counted apart (clientAborts), never as a status class.
import { LATENCY_BUCKETS, STATUS_CLASSES } from '../edge.js';

const BUCKETS_MS = LATENCY_BUCKETS.map((s) => s * 1000);

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
