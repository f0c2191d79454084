// One upstream target of the built-in proxy: its fixed spec, its connection pool and the live
// state that must outlive route-table swaps (in-flight count, passive/active health, drain).
import type { Duplex } from 'node:stream';
import { Pool } from 'undici';
import { TargetStats } from './stats.js';

export interface TargetSpec {
  /** "host:port", the target's identity in the API, metrics and state file. */
  readonly id: string;
  readonly host: string;
  readonly port: number;
  readonly maxFails: number;
  readonly failTimeoutMs: number;
  /** Weight ramp when the target enters rotation; 0 = none. */
  readonly slowStartMs: number;
  /** Release label (metrics, canary analysis); '' when not known. */
  readonly version: string;
}

/** Where a target stands with the operator: serving, leaving, or gone. */
export type TargetState =
  | { readonly kind: 'active'; readonly since: number }
  | { readonly kind: 'draining'; readonly since: number; readonly deadline: number }
  | { readonly kind: 'drained'; readonly since: number; readonly timedOut: boolean };

/** What active health checks last concluded. 'unknown' is routable: no check has failed yet. */
export type HealthState = 'unknown' | 'healthy' | 'unhealthy';

export interface PoolOptions {
  readonly connectTimeoutMs: number;
  readonly headersTimeoutMs: number;
  readonly bodyTimeoutMs: number;
  readonly idleTimeoutMs: number;
}

/** An upgraded connection (or one waiting for the target's 101), counted by its target. */
export interface Tunnel {
  /** The client's connection. */
  readonly socket: Duplex;
  /** Upgraded to WebSocket: `close` sends Close frames (1001); else it ends both sockets. */
  readonly websocket: boolean;
  close(): void;
}

/** An exchange waiting for this target's response head (see Target.abandonWaiting). */
export interface Waiter {
  /** Gives up on this target; true when the request was moved to another one. */
  abandon(reason: string): boolean;
}

export class Target {
  readonly spec: TargetSpec;
  readonly origin: string;
  pool: Pool;
  readonly stats = new TargetStats();
  /** Tunnelled (upgraded) connections; closed gracefully on drain. */
  readonly tunnels = new Set<Tunnel>();
  state: TargetState;
  health: HealthState = 'unknown';
  inflight = 0;
  /** Exchanges sent here that have no response head yet. */
  readonly waiting = new Set<Waiter>();
  /** Passive health, as nginx: `fails` within the window opened at `failWindowStart`. */
  fails = 0;
  failWindowStart = 0;
  downUntil = 0;
  /** When the target last entered rotation (for slow start). */
  rotationSince: number;
  private idleWaiters: (() => void)[] = [];
  private readonly poolOptions: PoolOptions;

  constructor(spec: TargetSpec, pool: PoolOptions, now = Date.now()) {
    this.spec = spec;
    this.origin = `http://${spec.host.includes(':') ? `[${spec.host}]` : spec.host}:${spec.port}`;
    this.poolOptions = pool;
    this.pool = this.openPool();
    this.state = { kind: 'active', since: now };
    this.rotationSince = now;
  }

  /** A fresh connection pool after a drain closed the old one. */
  reopen(): void {
    if (!this.pool.closed && !this.pool.destroyed) return;
    this.pool = this.openPool();
  }

  private openPool(): Pool {
    const o = this.poolOptions;
    return new Pool(this.origin, {
      connect: { timeout: o.connectTimeoutMs },
      headersTimeout: o.headersTimeoutMs,
      bodyTimeout: o.bodyTimeoutMs,
      keepAliveTimeout: o.idleTimeoutMs,
      keepAliveMaxTimeout: o.idleTimeoutMs,
      // The server's Keep-Alive hint is trusted only down to this margin below it.
      keepAliveTimeoutThreshold: 1000,
      pipelining: 1,
    });
  }

  /** Routable right now (health-wise); the route table decides whether it is in rotation. */
  isUp(now: number): boolean {
    return this.health !== 'unhealthy' && now >= this.downUntil;
  }

  /** Weight after slow start: ramps linearly from 1% to full over `slowStartMs`. */
  effectiveWeight(weight: number, now: number): number {
    const ramp = this.spec.slowStartMs;
    if (ramp <= 0) return weight;
    const elapsed = now - this.rotationSince;
    if (elapsed >= ramp) return weight;
    return Math.max(weight * 0.01, (weight * elapsed) / ramp);
  }

  /** A failed attempt (error or timeout, not an HTTP status): nginx's max_fails/fail_timeout. */
  recordFailure(now: number): void {
    if (this.spec.maxFails === 0) return;
    if (now - this.failWindowStart > this.spec.failTimeoutMs) {
      this.failWindowStart = now;
      this.fails = 0;
    }
    this.fails++;
    if (this.fails >= this.spec.maxFails) {
      this.downUntil = now + this.spec.failTimeoutMs;
      this.fails = 0;
      this.stats.passiveDowns++;
    }
  }

  recordSuccess(): void {
    if (this.fails !== 0) this.fails = 0;
  }

  /**
   * The target stopped answering: every exchange still waiting for its response head gives up on
   * it, and those safe to resend (idempotent, or not yet written) go to another target. Returns
   * how many moved.
   */
  abandonWaiting(reason: string): number {
    let moved = 0;
    for (const w of [...this.waiting]) {
      this.waiting.delete(w);
      if (w.abandon(reason)) moved++;
    }
    return moved;
  }

  begin(): void {
    this.inflight++;
  }

  end(): void {
    if (--this.inflight === 0 && this.tunnels.size === 0) this.notifyIdle();
  }

  isIdle(): boolean {
    return this.inflight === 0 && this.tunnels.size === 0;
  }

  /** Resolves when no request is in flight and no tunnel is open. */
  whenIdle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  notifyIdle(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }
}
