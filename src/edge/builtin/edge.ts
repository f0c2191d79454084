// The built-in proxy as an Edge: a route change is one atomic swap of the route table, so it is
// in effect as soon as apply() returns; draining watches the proxy's own in-flight counts.
import {
  LATENCY_BUCKETS,
  STATUS_CLASSES,
  type DrainResult,
  type Edge,
  type EdgeCapabilities,
  type EdgeTargetView,
  type RouteSpec,
  type SplitSpec,
  type StatsSnapshot,
  type TrafficSnapshot,
} from '../edge.js';
import type { BuiltinProxy } from './proxy.js';

/** What Baton's proxy can do, here or on another machine (src/edge/remote.ts). */
export const BUILTIN_CAPABILITIES: EdgeCapabilities = {
  weightedSplit: true,
  matchRules: true,
  sticky: 'any',
  statusCounters: true,
  latencyBuckets: true,
};

export class BuiltinEdge implements Edge {
  readonly kind = 'builtin';
  readonly can = BUILTIN_CAPABILITIES;

  constructor(readonly proxy: BuiltinProxy) {}

  get describe(): string {
    return 'the built-in proxy';
  }

  /** The daemon opens the proxy's listener itself (before recovery routes anything). */
  async start(): Promise<void> {}

  apply(routes: readonly RouteSpec[], split: SplitSpec | null): Promise<void> {
    this.proxy.setRoutes(routes, split);
    return Promise.resolve();
  }

  async drain(ids: readonly string[], timeoutMs: number): Promise<DrainResult[]> {
    const wanted = new Set(ids);
    // Only targets out of rotation: one routed again meanwhile is not drained.
    const targets = this.proxy.targets().filter((t) => wanted.has(t.spec.id) && t.state.kind !== 'active');
    return this.proxy.drainTargets(targets, timeoutMs);
  }

  stats(ids: readonly string[]): Promise<StatsSnapshot> {
    const byClass = new Array<number>(STATUS_CLASSES.length).fill(0);
    const buckets = new Array<number>(LATENCY_BUCKETS.length + 1).fill(0);
    let clientAborts = 0;
    for (const id of ids) {
      const t = this.proxy.target(id);
      if (!t) continue;
      t.stats.byClass.forEach((v, i) => (byClass[i]! += v));
      t.stats.buckets.forEach((v, i) => (buckets[i]! += v));
      clientAborts += t.stats.clientAborts;
    }
    return Promise.resolve({ byClass, buckets, clientAborts });
  }

  traffic(): Promise<TrafficSnapshot> {
    return Promise.resolve(this.proxy.traffic.snapshot());
  }

  view(): Promise<EdgeTargetView[]> {
    return Promise.resolve(
      // A drained target is gone from the edge's point of view (the proxy keeps it for its stats).
      this.proxy
        .view()
        .filter((v) => v.state !== 'drained')
        .map((v) => ({
          id: v.id,
          version: v.version,
          weight: v.weight,
          backup: v.backup,
          health: v.health === 'healthy' ? 'healthy' : v.health === 'unhealthy' ? 'unhealthy' : 'unknown',
          inflight: v.inflight,
          requests: v.requests,
          clientAborts: v.clientAborts,
        })),
    );
  }

  /** The proxy stays up: the daemon closes it last, after the instances are stopped. */
  async close(): Promise<void> {}
}
