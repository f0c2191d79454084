// Several edges kept in step (two nginx boxes, or the built-in proxy and an HAProxy): a route
// change is applied to every edge and confirmed on all before apply() resolves, so nothing is
// drained or stopped while any edge may still send it new requests. If one edge refuses, the
// others are put back on the previous routes and the change fails as a whole: no edge is left
// half-switched.
import { messageOf } from '../errors.js';
import {
  EdgeError,
  type DrainResult,
  type Edge,
  type EdgeCapabilities,
  type EdgeTargetView,
  type RouteSpec,
  type SplitSpec,
  type StatsSnapshot,
  type TrafficSnapshot,
} from './edge.js';
import { noTraffic, noTrafficNote, trafficSum } from './traffic.js';

const STICKY_ORDER = ['none', 'named', 'any'] as const;

export class MultiEdge implements Edge {
  readonly kind = 'multi';
  readonly can: EdgeCapabilities;
  /** What every edge serves now (after the last apply that succeeded on all). */
  private current: { routes: readonly RouteSpec[]; split: SplitSpec | null } | null = null;

  constructor(private readonly edges: readonly Edge[]) {
    if (edges.length < 2) throw new Error('MultiEdge needs two edges or more');
    const all = (k: keyof Omit<EdgeCapabilities, 'sticky'>): boolean => edges.every((e) => e.can[k]);
    this.can = {
      weightedSplit: all('weightedSplit'),
      matchRules: all('matchRules'),
      sticky: STICKY_ORDER[Math.min(...edges.map((e) => STICKY_ORDER.indexOf(e.can.sticky)))]!,
      // Each edge counts what went through it: the sums are the whole picture only if all count.
      statusCounters: all('statusCounters'),
      latencyBuckets: all('latencyBuckets'),
    };
  }

  get describe(): string {
    return `${this.edges.length} edges (${this.edges.map((e) => e.describe).join(', ')})`;
  }

  async start(): Promise<void> {
    await Promise.all(this.edges.map((e) => e.start()));
  }

  async apply(routes: readonly RouteSpec[], split: SplitSpec | null): Promise<void> {
    const results = await Promise.allSettled(this.edges.map((e) => e.apply(routes, split)));
    const failed = this.edges.filter((_, i) => results[i]!.status === 'rejected');
    if (!failed.length) {
      this.current = { routes, split };
      return;
    }
    const applied = this.edges.filter((_, i) => results[i]!.status === 'fulfilled');
    const reasons = results
      .map((r, i) => (r.status === 'rejected' ? `${this.edges[i]!.describe}: ${messageOf(r.reason)}` : null))
      .filter((r): r is string => r !== null);
    // Put back the edges that took the change; with no previous routes (the first apply) there
    // is nothing to go back to, and they keep the new ones.
    let putBack = '';
    if (applied.length && this.current) {
      const prev = this.current;
      const undo = await Promise.allSettled(applied.map((e) => e.apply(prev.routes, prev.split)));
      const stuck = applied.filter((_, i) => undo[i]!.status === 'rejected');
      putBack = stuck.length
        ? `; could NOT put back ${stuck.map((e) => e.describe).join(', ')}: check them by hand`
        : `; put back the previous routes on ${applied.map((e) => e.describe).join(', ')}`;
    }
    throw new EdgeError(
      `${failed.length} of ${this.edges.length} edges refused the change: ${reasons.join('; ')}${putBack}`,
    );
  }

  async drain(ids: readonly string[], timeoutMs: number): Promise<DrainResult[]> {
    const all = await Promise.all(this.edges.map((e) => e.drain(ids, timeoutMs)));
    const merged = new Map<string, DrainResult>();
    for (const r of all.flat()) {
      const m = merged.get(r.id);
      merged.set(
        r.id,
        m
          ? {
              id: r.id,
              drained: m.drained && r.drained,
              waitedMs: Math.max(m.waitedMs, r.waitedMs),
              inflightLeft: m.inflightLeft + r.inflightLeft,
            }
          : r,
      );
    }
    return [...merged.values()];
  }

  /** Summed over the edges (each saw its share of the traffic); null unless all count. */
  async stats(ids: readonly string[]): Promise<StatsSnapshot | null> {
    const snaps = await Promise.all(this.edges.map((e) => e.stats(ids)));
    return snaps.some((s) => s === null) ? null : sumStats(snaps as StatsSnapshot[]);
  }

  /** Summed over the edges; a field any edge cannot count is unknown for the sum. */
  async traffic(): Promise<TrafficSnapshot> {
    return trafficSum(
      await Promise.all(
        this.edges.map((e) =>
          e.traffic ? e.traffic() : Promise.resolve(noTraffic(noTrafficNote(e.kind, e.describe))),
        ),
      ),
    );
  }

  /** One line per target: unhealthy if any edge says so; counts summed where all know them. */
  async view(): Promise<EdgeTargetView[]> {
    const views = await Promise.all(this.edges.map((e) => e.view()));
    const merged = new Map<string, EdgeTargetView>();
    for (const v of views.flat()) {
      const m = merged.get(v.id);
      if (!m) {
        merged.set(v.id, v);
        continue;
      }
      const sum = (a: number | null, b: number | null): number | null =>
        a === null || b === null ? null : a + b;
      merged.set(v.id, {
        ...m,
        version: m.version || v.version,
        health:
          m.health === 'unhealthy' || v.health === 'unhealthy'
            ? 'unhealthy'
            : m.health === 'healthy'
              ? v.health
              : m.health,
        inflight: sum(m.inflight, v.inflight),
        requests: sum(m.requests, v.requests),
        clientAborts: sum(m.clientAborts ?? null, v.clientAborts ?? null),
      });
    }
    return [...merged.values()];
  }

  async close(): Promise<void> {
    await Promise.all(this.edges.map((e) => e.close()));
  }
}

/**
 * Counters of several edges (or processes) that each saw a share of the same targets' traffic,
 * as one; client aborts only when every one counts them.
 */
export function sumStats(snaps: readonly StatsSnapshot[]): StatsSnapshot {
  const add = (a: readonly number[], b: readonly number[]): number[] =>
    Array.from({ length: Math.max(a.length, b.length) }, (_, i) => (a[i] ?? 0) + (b[i] ?? 0));
  const aborts = snaps.every((s) => s.clientAborts !== undefined)
    ? { clientAborts: snaps.reduce((n, s) => n + s.clientAborts!, 0) }
    : {};
  return {
    ...snaps.reduce<StatsSnapshot>(
      (sum, s) => ({ byClass: add(sum.byClass, s.byClass), buckets: add(sum.buckets, s.buckets) }),
      {
        byClass: [],
        buckets: [],
      },
    ),
    ...aborts,
  };
}
