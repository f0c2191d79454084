// The built-in proxy's targets: GET/POST /v1/targets, PATCH/DELETE /v1/targets/:id,
// POST /v1/targets/:id/drain and /undrain (`?timeout=30s` on drain and delete).
import type { DrainResult } from '../edge/edge.js';

export type { DrainResult };

/** One target as the built-in proxy sees it (src/edge/builtin/proxy.ts builds it). */
export interface TargetView {
  readonly id: string;
  readonly version: string;
  readonly weight: number;
  readonly effectiveWeight: number;
  readonly backup: boolean;
  readonly state: 'active' | 'draining' | 'drained';
  readonly health: string;
  readonly passiveDownUntil: string | null;
  readonly inflight: number;
  readonly tunnels: number;
  readonly requests: number;
  /** Requests the client abandoned (or stalled on) before the answer was complete. */
  readonly clientAborts: number;
}

/** GET /v1/targets. */
export interface TargetsAnswer {
  readonly generation: number;
  readonly targets: TargetView[];
}

/** A duration as baton.yaml takes it: "30s", "1m", or milliseconds. */
export type Duration = string | number;

/** POST /v1/targets (a `targets:` entry of baton.yaml); answers 201 and the TargetView. */
export interface AddTargetBody {
  readonly address: string;
  readonly weight?: number;
  readonly maxFails?: number;
  readonly failTimeout?: Duration;
  readonly slowStart?: Duration;
  readonly backup?: boolean;
  readonly version?: string;
}

/** PATCH /v1/targets/:id; answers the TargetView. */
export interface WeightBody {
  readonly weight: number;
}
