// The edge API of an edge-only Baton (src/admin/edge-routes.ts), which another Baton drives as
// one of its edges (src/edge/remote.ts): the Edge interface (src/edge/edge.ts) over HTTP.
//
//   PUT  /v1/edge/routes  EdgeRoutesBody  the whole route table, swapped atomically
//   POST /v1/edge/drain   EdgeDrainBody   waits for targets already out of the routes
//   POST /v1/edge/stats   EdgeStatsBody   summed counters for canary analysis
//   GET  /v1/edge/view                    what it serves
//   GET  /v1/edge/traffic                 counters by version since it started (deploy proofs)
import type {
  DrainResult,
  EdgeTargetView,
  RouteSpec,
  SplitSpec,
  StatsSnapshot,
  TrafficSnapshot,
} from '../edge/edge.js';

export interface EdgeRoutesBody {
  readonly routes: readonly RouteSpec[];
  readonly split: SplitSpec | null;
}

export interface EdgeRoutesAnswer {
  /** The proxy's route table generation after the swap. */
  readonly generation: number;
  /** How many routes it now serves. */
  readonly routes: number;
}

export interface EdgeDrainBody {
  readonly ids: readonly string[];
  readonly timeoutMs: number;
}

export interface EdgeDrainAnswer {
  readonly results: DrainResult[];
}

export interface EdgeStatsBody {
  readonly ids: readonly string[];
}

/** POST /v1/edge/stats: the summed status classes and latency buckets of those targets. */
export type EdgeStatsAnswer = StatsSnapshot;

/** GET /v1/edge/traffic: every version's counters since the proxy started. */
export type EdgeTrafficAnswer = TrafficSnapshot;

export interface EdgeViewAnswer {
  readonly targets: EdgeTargetView[];
}
