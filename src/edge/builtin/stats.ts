// Per-target request counters and a fixed-bucket latency histogram. Plain numbers on the hot
// path; /metrics and canary analysis read them when asked. A request the client abandoned is
// no answer of the target's: it is counted apart (clientAborts), never as a status class.
// Also the proxy's counters by version (TrafficCounters), which outlive the targets: a deploy's
// proof is the difference of two of their snapshots.
import { LATENCY_BUCKETS, STATUS_CLASSES, TRAFFIC_BUCKETS, type TrafficSnapshot } from '../edge.js';
import { trafficBucketOf } from '../traffic.js';

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

/** One version's counters for deploy proofs (src/api/proof.ts): kept after its targets go. */
export class VersionCounters {
  requests = 0;
  status5xx = 0;
  proxyErrors = 0;
  clientAborts = 0;
  /** Not cumulative, TRAFFIC_BUCKETS of them (src/edge/traffic.ts). */
  readonly buckets = new Float64Array(TRAFFIC_BUCKETS);

  constructor(readonly version: string) {}
}

/** How many versions' counters the proxy keeps: the oldest one no target has is dropped first. */
export const KEPT_VERSIONS = 32;

/** The proxy's counters by version, since it started; its targets come and go, these stay. */
export class TrafficCounters {
  private readonly byVersion = new Map<string, VersionCounters>();
  private readonly since = Date.now();

  /** `live`: the versions of the targets the proxy knows (their counters are never dropped). */
  constructor(private readonly live: () => Iterable<string>) {}

  /**
   * A finished request (`failure` as Exchange's): the proxy's own 502/503/504 and answers cut
   * short are proxy errors; a request the client gave up on before a 5xx is a client abort.
   */
  finished(version: string, status: number, failure: string | undefined, ms: number): void {
    let v = this.byVersion.get(version);
    if (v === undefined) v = this.add(version);
    v.requests++;
    if ((failure === 'client-closed' || failure === 'client-timeout') && status < 500) {
      v.clientAborts++;
      return;
    }
    if (failure === 'no-target' || failure === 'upstream-error' || failure === 'upstream-timeout') {
      v.proxyErrors++;
    } else if (status >= 500) v.status5xx++;
    v.buckets[trafficBucketOf(ms)]!++;
  }

  snapshot(): TrafficSnapshot {
    return {
      at: Date.now(),
      since: this.since,
      versions: [...this.byVersion.values()].map((v) => ({
        version: v.version,
        requests: v.requests,
        status5xx: v.status5xx,
        proxyErrors: v.proxyErrors,
        clientAborts: v.clientAborts,
        buckets: Array.from(v.buckets),
      })),
      unknown: [],
    };
  }

  private add(version: string): VersionCounters {
    if (this.byVersion.size >= KEPT_VERSIONS) {
      const keep = new Set(this.live());
      for (const old of this.byVersion.keys()) {
        if (!keep.has(old) && old !== '') {
          this.byVersion.delete(old);
          break;
        }
      }
    }
    const v = new VersionCounters(version);
    this.byVersion.set(version, v);
    return v;
  }
}
