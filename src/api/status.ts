// GET /v1/status: the live release and its instances, the blue-green set kept for an instant
// rollback, the deploy in progress (with a canary's split and analysis), the last recovery and
// the instances that could not be stopped. `Controller.status()` (src/controller) returns a
// StatusView; `baton status --json` prints it (with GET /v1/freeze's `freeze` and `window`).
import type { InstanceRecord } from '../drivers/driver.js';
import type { EdgeTargetView, SplitSpec } from '../edge/edge.js';
import type { DeploymentView } from './deploy.js';

export interface StatusInstance {
  readonly id: string;
  readonly slot: number;
  readonly version: string;
  /** Where it runs: 127.0.0.1, or a host's address (hosts:). */
  readonly host: string;
  readonly port: number;
  readonly pid: number;
  readonly alive: boolean;
  /** As the edge sees it; 'unknown' when the edge does not list it. */
  readonly health: EdgeTargetView['health'];
  readonly inflight: number;
  readonly requests: number;
  /** Requests their client abandoned; null when the edge does not count them. */
  readonly clientAborts: number | null;
  readonly crashLoop: boolean;
}

/** One analysis of a canary's counters (src/strategies/analysis.ts, Verdict). */
export interface VerdictView {
  readonly at: string;
  readonly result: 'pass' | 'fail' | 'inconclusive';
  readonly requests: number;
  readonly successRate: number | null;
  readonly p99Ms: number | null;
  /** Canary requests the client abandoned in the interval (not in `requests`); null: not counted. */
  readonly clientAborts: number | null;
  readonly reason: string;
}

/** One side of a canary split: its version and its share of the traffic the rules leave. */
export interface CanarySide {
  readonly version: string;
  readonly percent: number;
}

/**
 * A canary (or A/B test) in progress. `deployment.step` is the deploy state machine's step
 * ('weight', 'paused': a pause step waiting, for its time or for `baton promote`, ...); this is
 * where the canary stands within its own steps, and what comes next.
 */
export interface CanaryView {
  /** The version live until promotion, and its share. */
  readonly stable: CanarySide;
  /** The new version, and its share (the setWeight in effect). */
  readonly canary: CanarySide;
  /** The canary's share (= canary.percent). */
  readonly percent: number;
  /** Requests these match go to the canary whatever the share (setHeaderRoute, ab's match). */
  readonly rules: SplitSpec['rules'];
  /** The strategy step in progress, 1-based, of `total`; null outside the steps (promoting...). */
  readonly step: { readonly index: number; readonly total: number } | null;
  /** Held by `baton pause` (a pause step's time does not run), not a pause step waiting. */
  readonly paused: boolean;
  /** Every analysis so far, oldest first. */
  readonly verdicts: readonly VerdictView[];
  /** What happens next, and the command that makes it happen now, in words. */
  readonly next: string;
}

export interface StatusDeployment extends DeploymentView {
  readonly elapsedMs: number;
  /** Held by `baton pause` (= canary.paused). */
  readonly paused: boolean;
  /** Once the canary's split is in place, until the deploy ends. */
  readonly canary: CanaryView | null;
}

/** Instances Baton had to stop but could not (their host unreachable), retried until gone. */
export interface OrphanView {
  readonly id: string;
  readonly version: string;
  readonly host: string;
  readonly port: number;
  readonly pid: number;
}

export interface StatusView {
  readonly service: string;
  /**
   * The live release: during a canary, the stable version (live until promotion), its
   * instances and the canary's (each with its own `version`).
   */
  readonly live: { readonly version: string; readonly instances: readonly StatusInstance[] } | null;
  /** The previous blue-green set, kept running until `stopAt` for an instant rollback. */
  readonly standby: {
    readonly version: string;
    readonly instances: readonly InstanceRecord[];
    readonly stopAt: string;
  } | null;
  readonly orphans: readonly OrphanView[];
  readonly deployment: StatusDeployment | null;
  /** What the last daemon start found and did, when it had to recover. */
  readonly lastRecovery: string | null;
}
