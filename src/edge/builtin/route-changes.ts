// Route changes of the built-in proxy: the targets it knows by id (in rotation, or out of it
// and draining or drained, kept for their counters and to come back), how a route list becomes
// the next route table, and how a target out of rotation drains. The proxy swaps in the table
// built here; no request ever runs this code.
import { setTimeout as delay } from 'node:timers/promises';
import type { TargetView } from '../../api/targets.js';
import { BatonError } from '../../errors.js';
import { targetId, type DrainResult, type RouteSpec, type SplitSpec } from '../edge.js';
import type { RouteEntry, RouteTable } from './route-table.js';
import { Split } from './split.js';
import { Target, type PoolOptions, type TargetSpec } from './target.js';

/** A target the proxy knows, with the weight it last had in rotation. */
export interface Known {
  readonly target: Target;
  weight: number;
  backup: boolean;
}

const DEFAULT_MAX_FAILS = 1;
const DEFAULT_FAIL_TIMEOUT_MS = 10_000;

export class RouteChanges {
  private readonly known = new Map<string, Known>();

  constructor(
    private readonly poolOptions: PoolOptions,
    /** proxy.slowStart and proxy.drainTimeout. */
    private readonly slowStartMs: number,
    private readonly drainTimeoutMs: number,
    /** Called when a drain changed what the state file holds. */
    private readonly onChange: (() => void) | undefined,
  ) {}

  /**
   * The table that routes exactly `routes` next to `table`, and the targets that come into
   * rotation and leave it (these are marked draining, still open).
   */
  next(
    table: RouteTable,
    routes: readonly RouteSpec[],
    split: SplitSpec | null,
    now: number,
  ): { table: RouteTable; added: Target[]; removed: Target[] } {
    const entries: RouteEntry[] = [];
    const added: Target[] = [];
    const ids = new Set<string>();
    for (const r of routes) {
      const id = targetId(r);
      if (ids.has(id)) throw new BatonError('BATON_E_BAD_REQUEST', `target ${id} is listed twice`);
      ids.add(id);
      let k = this.known.get(id);
      if (k === undefined || !sameSpec(k.target, r, this.slowStartMs)) {
        // New, or the same address with a new identity (another version on a reused port).
        k = { target: this.newTarget(r, id, now), weight: r.weight, backup: r.backup ?? false };
        this.known.set(id, k);
        added.push(k.target);
      } else if (k.target.state.kind !== 'active') {
        // Back into rotation: a drained target gets a fresh pool (its old one is closed); a
        // draining one keeps its pool, and its drain stops short of closing it.
        if (k.target.state.kind === 'drained') k.target.reopen();
        k.target.state = { kind: 'active', since: now };
        k.target.rotationSince = now;
        added.push(k.target);
      }
      k.weight = r.weight;
      k.backup = r.backup ?? false;
      entries.push({
        target: k.target,
        weight: r.weight,
        backup: k.backup,
        canary: split !== null && (r.canary ?? false),
      });
    }
    const removed: Target[] = [];
    for (const e of table.entries) if (!ids.has(e.target.spec.id)) removed.push(e.target);
    const next = table.with(entries, split ? new Split(split) : null);
    for (const t of removed) t.state = { kind: 'draining', since: now, deadline: now + this.drainTimeoutMs };
    return { table: next, added, removed };
  }

  /**
   * Waits until each target has no request in flight and no open tunnel (tunnels are asked
   * to close gracefully first), then closes its idle upstream connections.
   */
  drain(targets: readonly Target[], timeoutMs: number): Promise<DrainResult[]> {
    return Promise.all(targets.map((t) => this.drainOne(t, timeoutMs)));
  }

  private async drainOne(t: Target, timeoutMs: number): Promise<DrainResult> {
    const started = Date.now();
    if (t.state.kind === 'active') {
      throw new BatonError('BATON_E_CONFLICT', `target ${t.spec.id} is still in rotation; take it out first`);
    }
    for (const tunnel of t.tunnels) tunnel.close();
    const ac = new AbortController();
    const idle = await Promise.race([
      t.whenIdle().then(() => true),
      delay(timeoutMs, false, { signal: ac.signal }).catch(() => false),
    ]);
    ac.abort();
    // Put back into rotation meanwhile: it keeps its pool.
    if (t.state.kind !== 'draining') {
      return { id: t.spec.id, drained: false, waitedMs: Date.now() - started, inflightLeft: t.inflight };
    }
    t.state = { kind: 'drained', since: Date.now(), timedOut: !idle };
    // Close idle keep-alive sockets now; with requests left, close after they finish.
    if (idle) await t.pool.close().catch(() => undefined);
    else void t.pool.close().catch(() => undefined);
    this.onChange?.();
    return { id: t.spec.id, drained: idle, waitedMs: Date.now() - started, inflightLeft: t.inflight };
  }

  get(id: string): Known | undefined {
    return this.known.get(id);
  }

  /** Forgets a target (its pool is the caller's to destroy). */
  delete(id: string): void {
    this.known.delete(id);
  }

  values(): IterableIterator<Known> {
    return this.known.values();
  }

  /** Targets out of rotation but still known (drained or draining), with their last weight. */
  drainedRoutes(): RouteSpec[] {
    return [...this.known.values()]
      .filter((k) => k.target.state.kind !== 'active')
      .map((k) => ({ ...specOf(k.target), weight: k.weight, backup: k.backup }));
  }

  private newTarget(r: RouteSpec, id: string, now: number): Target {
    const spec: TargetSpec = {
      id,
      host: r.host,
      port: r.port,
      maxFails: r.maxFails ?? DEFAULT_MAX_FAILS,
      failTimeoutMs: r.failTimeoutMs ?? DEFAULT_FAIL_TIMEOUT_MS,
      slowStartMs: r.slowStartMs ?? this.slowStartMs,
      version: r.version ?? '',
    };
    return new Target(spec, this.poolOptions, now);
  }

  /** Every known target, in rotation or not, as GET /v1/targets shows it. */
  view(now: number): TargetView[] {
    return [...this.values()].map(({ target: t, weight, backup }) => ({
      id: t.spec.id,
      version: t.spec.version,
      weight,
      effectiveWeight: Math.round(t.effectiveWeight(weight, now) * 100) / 100,
      backup,
      state: t.state.kind,
      health: t.health,
      passiveDownUntil: t.downUntil > now ? new Date(t.downUntil).toISOString() : null,
      inflight: t.inflight,
      tunnels: t.tunnels.size,
      requests: t.stats.requests,
      clientAborts: t.stats.clientAborts,
    }));
  }
}

/** The routes a table serves, as setRoutes takes them. */
export function routesOf(table: RouteTable): RouteSpec[] {
  return table.entries.map((e) => ({
    ...specOf(e.target),
    weight: e.weight,
    backup: e.backup,
    canary: e.canary,
  }));
}

/** A known target as a route (weight 0: the caller sets it). */
export function specOf(t: Target): RouteSpec {
  const s = t.spec;
  return {
    host: s.host,
    port: s.port,
    weight: 0,
    version: s.version,
    maxFails: s.maxFails,
    failTimeoutMs: s.failTimeoutMs,
    slowStartMs: s.slowStartMs,
  };
}

function sameSpec(t: Target, r: RouteSpec, defaultSlowStart: number): boolean {
  const s = t.spec;
  return (
    s.version === (r.version ?? '') &&
    s.maxFails === (r.maxFails ?? DEFAULT_MAX_FAILS) &&
    s.failTimeoutMs === (r.failTimeoutMs ?? DEFAULT_FAIL_TIMEOUT_MS) &&
    s.slowStartMs === (r.slowStartMs ?? defaultSlowStart)
  );
}
