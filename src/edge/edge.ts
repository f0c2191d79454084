// The edge: what takes client traffic and forwards it to targets. The controller and every
// strategy talk to this interface only; three implementations drive it: Baton's built-in proxy,
// a real nginx (rendered upstream file + test + reload) and a real HAProxy (runtime API).
//
// The contract that makes zero downtime true whatever the edge:
// - apply() resolves only once NEW requests reach the new route set. Until then, and whenever
//   it throws, the edge keeps serving what it served before.
// - A target that left the routes is not cut: requests already on it finish. drain() resolves
//   once none is left (or the timeout hits), and only then may the controller stop it.
import type { BalanceConfig, HealthConfig } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { StatsSnapshot } from '../strategies/analysis.js';
import { BatonError } from '../errors.js';
import type { DrainResult, RouteSpec } from './builtin/proxy.js';
import type { SplitSpec } from './builtin/split.js';

export type { DrainResult, RouteSpec, SplitSpec, StatsSnapshot };

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

export function targetId(r: Pick<RouteSpec, 'host' | 'port'>): string {
  return r.host.includes(':') ? `[${r.host}]:${r.port}` : `${r.host}:${r.port}`;
}

/**
 * Integer server weights for a canary share on edges that split by weight (nginx, HAProxy):
 * `stable` instances at weight `s` and `canary` ones at `c` so that the canary gets `percent`
 * of the requests. 0 or 100 leave one side out entirely (weight null). `max` is the edge's
 * highest weight (HAProxy: 256).
 */
export function splitWeights(
  stable: number,
  canary: number,
  percent: number,
  max = 1000,
): { stable: number | null; canary: number | null } {
  if (canary === 0 || percent <= 0) return { stable: 1, canary: null };
  if (stable === 0 || percent >= 100) return { stable: null, canary: 1 };
  // canary*c / (canary*c + stable*s) = p / 100  =>  c : s = p*stable : (100-p)*canary
  let c = percent * stable;
  let s = (100 - percent) * canary;
  const g = gcd(Math.round(c * 100), Math.round(s * 100)) / 100;
  c /= g;
  s /= g;
  const scale = Math.max(c, s) > max ? max / Math.max(c, s) : 1;
  return { stable: Math.max(1, Math.round(s * scale)), canary: Math.max(1, Math.round(c * scale)) };
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}
