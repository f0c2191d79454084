// The edge: what takes client traffic and forwards it to targets. The controller and every
// strategy talk to this interface only; three implementations drive it: Baton's built-in proxy,
// a real nginx (rendered upstream file + test + reload) and a real HAProxy (runtime API).
//
// The contract that makes zero downtime true whatever the edge:
// - apply() resolves only once NEW requests reach the new route set. Until then, and whenever
//   it throws, the edge keeps serving what it served before.
// - A target that left the routes is not cut: requests already on it finish. drain() resolves
//   once none is left (or the timeout hits), and only then may the controller stop it.
//
// This file is the whole contract and imports none of its implementations: they import it.
import type { BalanceConfig, HealthConfig } from '../config/schema.js';
import type { Logger } from '../log.js';
import { BatonError } from '../errors.js';

/** A target as the edge should route it; everything but the address has a default. */
export interface RouteSpec {
  readonly host: string;
  readonly port: number;
  readonly weight: number;
  readonly backup?: boolean;
  readonly version?: string;
  readonly maxFails?: number;
  readonly failTimeoutMs?: number;
  readonly slowStartMs?: number;
  /** On the canary side of the split given with it to apply(). */
  readonly canary?: boolean;
}

/** `host:port` (`[v6]:port`): how every edge, the controller and the admin API name a target. */
export function targetId(r: Pick<RouteSpec, 'host' | 'port'>): string {
  return r.host.includes(':') ? `[${r.host}]:${r.port}` : `${r.host}:${r.port}`;
}

/** An A/B rule: requests it matches go to the canary. */
export type MatchSpec =
  | { readonly header: string; readonly equals?: string; readonly prefix?: string; readonly regex?: string }
  | { readonly cookie: string; readonly equals?: string; readonly prefix?: string; readonly regex?: string }
  | { readonly ip: string };

/** What keeps a client on one side of the split: a header, a cookie, or Baton's own cookie. */
export type StickySpec = { readonly header: string } | { readonly cookie: string } | 'baton';

/** The traffic split between the stable and the canary routes (RouteSpec.canary). */
export interface SplitSpec {
  /** Share of traffic (0..100) for the canary, by sticky bucket. */
  readonly canaryPercent: number;
  /** Requests matching any of these go to the canary whatever the share. */
  readonly rules: readonly MatchSpec[];
  readonly sticky: StickySpec;
}

export interface DrainResult {
  readonly id: string;
  readonly drained: boolean;
  readonly waitedMs: number;
  /** Requests still in flight when the timeout hit (0 when drained). */
  readonly inflightLeft: number;
}

/** Upper bounds (seconds) of the latency buckets, as Prometheus `le` labels. */
export const LATENCY_BUCKETS = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
] as const;

/** Status classes counted per target: 1xx..5xx, and "error" for requests with no upstream answer. */
export const STATUS_CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx', 'error'] as const;
export type StatusClass = (typeof STATUS_CLASSES)[number];

/** Summed counters of a set of targets at one moment. */
export interface StatsSnapshot {
  /** By class, as STATUS_CLASSES: 1xx, 2xx, 3xx, 4xx, 5xx, error. */
  readonly byClass: readonly number[];
  /** Per latency bucket (LATENCY_BUCKETS, then +Inf), not cumulative. */
  readonly buckets: readonly number[];
  /** Requests the client abandoned, in no class; absent when the edge does not count them. */
  readonly clientAborts?: number;
}

/**
 * The proof's latency histogram (src/api/proof.ts): bucket i holds latencies up to
 * TRAFFIC_BUCKET_BASE_MS * 2^(i / TRAFFIC_BUCKETS_PER_DOUBLING) ms (log buckets, about ±9%),
 * 0.1 ms .. ~3.5 min; the last bucket holds everything above.
 */
export const TRAFFIC_BUCKET_BASE_MS = 0.1;
export const TRAFFIC_BUCKETS_PER_DOUBLING = 4;
export const TRAFFIC_BUCKETS = 4 * 21 + 1;

/** Cumulative counters of one version since the edge started (src/api/proof.ts says what each is). */
export interface VersionTraffic {
  /** '' for requests that reached no target. */
  readonly version: string;
  readonly requests: number;
  readonly status5xx: number;
  readonly proxyErrors: number;
  readonly clientAborts: number;
  /** TRAFFIC_BUCKETS counts (not cumulative) of the answered requests; empty when not kept. */
  readonly buckets: readonly number[];
}

/** Every version's counters at one moment; what the edge cannot count is named in `unknown`. */
export interface TrafficSnapshot {
  /** Epoch ms. */
  readonly at: number;
  /** When the counters started (epoch ms): another value later means they restarted from zero. */
  readonly since?: number;
  readonly versions: readonly VersionTraffic[];
  /** Fields of VersionTraffic (and p50Ms / p99Ms) this edge does not count: their values are not numbers to show. */
  readonly unknown: readonly string[];
  /** Why, or what the counts leave out. */
  readonly note?: string;
}

export type EdgeKind = 'builtin' | 'nginx' | 'haproxy' | 'multi';

/** What an edge can do; the controller refuses (or documents) what it cannot. */
export interface EdgeCapabilities {
  /** A weighted canary share (SplitSpec.canaryPercent). */
  readonly weightedSplit: boolean;
  /** A/B rules (SplitSpec.rules): header / cookie / ip matches sent to the canary. */
  readonly matchRules: boolean;
  /** Sticky canary buckets: 'baton' (Baton's own cookie), or a named header / cookie. */
  readonly sticky: 'any' | 'named' | 'none';
  /** Per-target request counters by status class (canary analysis). */
  readonly statusCounters: boolean;
  /** Per-target latency buckets (canary analysis p99). */
  readonly latencyBuckets: boolean;
}

export interface EdgeTargetView {
  /** `host:port`. */
  readonly id: string;
  readonly version: string;
  readonly weight: number;
  readonly backup: boolean;
  readonly health: 'healthy' | 'unhealthy' | 'unknown';
  /** Requests in flight, null when the edge cannot tell. */
  readonly inflight: number | null;
  /** Requests answered since the target was added, null when the edge cannot tell. */
  readonly requests: number | null;
  /** Requests the client abandoned before the answer was complete (not in `requests`). */
  readonly clientAborts?: number | null;
}

export interface Edge {
  readonly kind: EdgeKind;
  /** For messages: `nginx (/etc/nginx/conf.d/web.upstream.conf)`. */
  readonly describe: string;
  readonly can: EdgeCapabilities;
  /**
   * Checks the edge is usable before anything is routed (binaries present, file writable,
   * socket answering, backend known) and starts its own background work (health checks).
   * Throws an EdgeError saying what is missing.
   */
  start(): Promise<void>;
  /**
   * Makes `routes` (with `split`, or none) exactly what the edge serves and resolves once new
   * requests reach them. Targets no longer listed stop getting new requests but are not cut.
   * Throws an EdgeError (the file, command or socket and its output) with the previous routes
   * still in effect.
   */
  apply(routes: readonly RouteSpec[], split: SplitSpec | null): Promise<void>;
  /** Waits until these targets (already out of the routes) have nothing in flight. */
  drain(ids: readonly string[], timeoutMs: number): Promise<DrainResult[]>;
  /** Summed counters of these targets for canary analysis; null when the edge keeps none. */
  stats(ids: readonly string[]): Promise<StatsSnapshot | null>;
  /**
   * Cumulative counters by version since the edge started, which the controller takes the
   * difference of around a deploy (its proof). Absent: the edge counts nothing Baton can read.
   */
  traffic?(): Promise<TrafficSnapshot>;
  view(): Promise<EdgeTargetView[]>;
  /** Stops background work. Does not change what the edge serves. */
  close(): Promise<void>;
}

/** What every edge implementation is built with, besides its own `edge:` config section. */
export interface EdgeOptions {
  /** `service:`; nginx names its upstream after it. */
  readonly service: string;
  readonly balance: BalanceConfig;
  /** The app's health check, for edges whose proxy has no active checks of its own (nginx). */
  readonly health: HealthConfig | null;
  /** The config file's folder: relative paths in `edge:` are relative to it. */
  readonly baseDir: string;
  readonly log: Logger;
  /** The state folder (ssh control sockets of an edge on another machine go under it). */
  readonly stateDir: string;
  /** `ssh:` settings, for an edge reached over SSH. */
  readonly ssh: { readonly options: readonly string[]; readonly connectTimeoutMs: number };
}

/** An edge refused a change, or cannot be reached; the previous routes are still in effect. */
export class EdgeError extends BatonError {
  constructor(message: string, options: { cause?: unknown; details?: unknown } = {}) {
    super('BATON_E_EDGE', message, options);
  }
}
