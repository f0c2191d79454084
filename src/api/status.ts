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

/** A canary's split so far, and every analysis. */
export interface CanaryView {
  readonly percent: number;
  readonly rules: SplitSpec['rules'];
  readonly verdicts: readonly VerdictView[];
}

export interface StatusDeployment extends DeploymentView {
  readonly elapsedMs: number;
  /** Held by `baton pause`. */
  readonly paused: boolean;
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
