// The edges' cumulative traffic counters (TrafficSnapshot) as numbers to show: the log-bucket
// index of a latency, percentiles read back from the buckets, the difference of two snapshots
// (a deploy's proof) and the sum of several snapshots (edges, or a data plane's processes).
import {
  TRAFFIC_BUCKET_BASE_MS,
  TRAFFIC_BUCKETS,
  TRAFFIC_BUCKETS_PER_DOUBLING,
  type TrafficSnapshot,
  type VersionTraffic,
} from './edge.js';

/** The bucket of a latency: O(1), no allocation (the proxy calls it once per request). */
export function trafficBucketOf(ms: number): number {
  if (!(ms > TRAFFIC_BUCKET_BASE_MS)) return 0;
  const i = Math.ceil(Math.log2(ms / TRAFFIC_BUCKET_BASE_MS) * TRAFFIC_BUCKETS_PER_DOUBLING - 1e-9);
  return i < TRAFFIC_BUCKETS - 1 ? i : TRAFFIC_BUCKETS - 1;
}

/** Upper bound (ms) of bucket i; the last one (everything above) reports its lower bound. */
export function trafficBucketUpperMs(i: number): number {
  const j = Math.min(i, TRAFFIC_BUCKETS - 2);
  return TRAFFIC_BUCKET_BASE_MS * 2 ** (j / TRAFFIC_BUCKETS_PER_DOUBLING);
}

/** The latency (ms, bucket upper bound, 3 significant digits) at or below which p% fall; null: none. */
export function percentileMs(buckets: readonly number[], p: number): number | null {
  let total = 0;
  for (const n of buckets) total += n;
  if (total <= 0) return null;
  const rank = Math.max(1, Math.ceil((p / 100) * total));
  let seen = 0;
  for (let i = 0; i < buckets.length; i++) {
    seen += buckets[i]!;
    if (seen >= rank) return Number(trafficBucketUpperMs(i).toPrecision(3));
  }
  return Number(trafficBucketUpperMs(buckets.length - 1).toPrecision(3));
}

const ZERO: Omit<VersionTraffic, 'version'> = {
  requests: 0,
  status5xx: 0,
  proxyErrors: 0,
  clientAborts: 0,
  buckets: [],
};

function minus(a: readonly number[], b: readonly number[]): number[] {
  return a.map((v, i) => Math.max(0, v - (b[i] ?? 0)));
}

function plus(a: readonly number[], b: readonly number[]): number[] {
  const n = Math.max(a.length, b.length);
  return Array.from({ length: n }, (_, i) => (a[i] ?? 0) + (b[i] ?? 0));
}

/** The counts of several versions (or edges) added up, under `version`. */
export function trafficTotal(vs: readonly VersionTraffic[], version = ''): VersionTraffic {
  return vs.reduce<VersionTraffic>(
    (sum, v) => ({
      version,
      requests: sum.requests + v.requests,
      status5xx: sum.status5xx + v.status5xx,
      proxyErrors: sum.proxyErrors + v.proxyErrors,
      clientAborts: sum.clientAborts + v.clientAborts,
      buckets: plus(sum.buckets, v.buckets),
    }),
    { version, ...ZERO },
  );
}

/**
 * What happened between two snapshots, by version. A counter that went down (an edge that was
 * restarted meanwhile) counts from zero: never a negative number.
 */
export function trafficDiff(end: TrafficSnapshot, start: TrafficSnapshot | null): VersionTraffic[] {
  const before = new Map((restarted(end, start) ? [] : (start?.versions ?? [])).map((v) => [v.version, v]));
  return end.versions
    .map((e) => {
      const b0 = before.get(e.version) ?? { version: e.version, ...ZERO };
      const b = e.requests < b0.requests ? { version: e.version, ...ZERO } : b0;
      return {
        version: e.version,
        requests: e.requests - b.requests,
        status5xx: Math.max(0, e.status5xx - b.status5xx),
        proxyErrors: Math.max(0, e.proxyErrors - b.proxyErrors),
        clientAborts: Math.max(0, e.clientAborts - b.clientAborts),
        buckets: minus(e.buckets, b.buckets),
      };
    })
    .filter((v) => v.requests > 0);
}

/** The counters started again between the two snapshots (a data plane replaced meanwhile). */
export function restarted(end: TrafficSnapshot, start: TrafficSnapshot | null): boolean {
  return start?.since !== undefined && end.since !== undefined && start.since !== end.since;
}

/**
 * Several snapshots as one (the edges of multi.ts, a data plane and its workers): counts add up
 * by version, unknowns are the union, `at` is the latest. `since` is the newest of the parts'
 * (absent when none has one): when any part's counters start again (a worker or an edge
 * replaced), the sum's `since` changes and the proof says its counters restarted, rather than
 * taking the part's drop for nothing or its new counts for a negative share. From such a pair
 * the proof counts every part from zero (a sum keeps no part's own numbers): the restarted
 * part's since it restarted, the others' since they started (more than the deploy saw), and
 * its note says so.
 */
export function trafficSum(snaps: readonly TrafficSnapshot[]): TrafficSnapshot {
  const by = new Map<string, VersionTraffic[]>();
  for (const s of snaps) for (const v of s.versions) by.set(v.version, [...(by.get(v.version) ?? []), v]);
  const notes = snaps.map((s) => s.note).filter((n): n is string => !!n);
  const since = Math.max(0, ...snaps.map((s) => s.since ?? 0));
  return {
    at: Math.max(0, ...snaps.map((s) => s.at)),
    ...(since > 0 ? { since } : {}),
    versions: [...by].map(([version, vs]) => (vs.length === 1 ? vs[0]! : trafficTotal(vs, version))),
    unknown: [...new Set(snaps.flatMap((s) => s.unknown))],
    ...(notes.length ? { note: notes.join('; ') } : {}),
  };
}

/** Every field of the proof's counts. */
export const TRAFFIC_FIELDS = [
  'requests',
  'status5xx',
  'proxyErrors',
  'clientAborts',
  'p50Ms',
  'p99Ms',
] as const;

/** The snapshot of an edge that counts nothing Baton can read. */
export function noTraffic(note: string): TrafficSnapshot {
  return { at: Date.now(), versions: [], unknown: [...TRAFFIC_FIELDS], note };
}

/** Why an edge of this kind counts nothing. */
export function noTrafficNote(kind: string, describe: string): string {
  return kind === 'nginx'
    ? `${describe}: nginx (without NGINX Plus) keeps no per-upstream counters Baton can read; its access log has them`
    : `${describe} keeps no counters Baton can read`;
}
