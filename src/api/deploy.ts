// The deploy endpoints: deploy, rollback and follow (progress as NDJSON, one ProgressEvent a
// line, the last one `kind: 'done'`), abort, promote / pause / resume a canary, and history.
// The one definition of these shapes: the controller (src/controller/events.ts, state.ts) and
// the strategies (DeployStep) import them from here.
import type { StrategyType } from '../config/schema.js';
import type { InstanceRecord } from '../drivers/driver.js';
import type { DeployProof } from './proof.js';

/** Steps a deployment passes through; persisted before each one starts. */
export type DeployStep =
  | 'starting'
  | 'verifying'
  | 'switching'
  | 'batch'
  | 'draining'
  | 'stopping'
  | 'rolling-back'
  | 'weight'
  | 'paused'
  | 'promoting'
  | 'finishing';

export type DeployResult = 'succeeded' | 'failed' | 'rolled-back';

/** One past deploy (GET /v1/history, and the 'done' event of a deploy). */
export interface HistoryEntry {
  readonly id: string;
  readonly version: string;
  readonly previousVersion: string | null;
  readonly strategy: StrategyType;
  readonly actor: string;
  readonly rollback: boolean;
  readonly forced?: boolean;
  readonly startedAt: string;
  readonly endedAt: string;
  readonly durationMs: number;
  readonly result: DeployResult;
  readonly reason: string | null;
  /** What the edge saw from its start to its end (src/api/proof.ts); absent in older lines. */
  readonly proof?: DeployProof | null;
}

/** One NDJSON line of POST /v1/deploy, POST /v1/rollback and GET /v1/deploy/current. */
export interface ProgressEvent {
  readonly time: string;
  readonly deployId: string;
  readonly kind: 'start' | 'step' | 'info' | 'done';
  readonly step?: DeployStep;
  readonly message: string;
  readonly elapsedMs: number;
  /** On 'done'. */
  readonly result?: DeployResult;
  /**
   * On 'done' of a deploy that did not succeed: why, as the error code the CLI exits with
   * (BATON_E_EDGE, exit 14: an edge refused a change; else BATON_E_DEPLOY_FAILED, exit 10).
   */
  readonly code?: 'BATON_E_EDGE' | 'BATON_E_DEPLOY_FAILED';
  readonly entry?: HistoryEntry;
}

/** The deployment in progress, as the controller persists it. */
export interface DeploymentView {
  readonly id: string;
  readonly version: string;
  readonly previousVersion: string | null;
  readonly strategy: StrategyType;
  readonly actor: string;
  readonly startedAt: string;
  readonly rollback: boolean;
  readonly forced?: boolean;
  readonly step: DeployStep;
  readonly detail: string;
  /** The live instances when it started: the release to go back to after a crash. */
  readonly replacing?: readonly InstanceRecord[];
  /** Every instance this deployment started. */
  readonly started: readonly InstanceRecord[];
}

/** POST /v1/deploy. */
export interface DeployBody {
  readonly version: string;
  readonly strategy?: StrategyType;
  readonly actor?: string;
  /** Deploy outside the deploy windows or through a freeze (recorded in history). */
  readonly force?: boolean;
}

/** POST /v1/rollback: to the previous release, or to `to` (a version that once succeeded). */
export interface RollbackBody {
  readonly to?: string;
  readonly actor?: string;
}

/** POST /v1/abort. */
export interface AbortBody {
  readonly actor?: string;
}

export interface AbortAnswer {
  /** The deployment's id. */
  readonly aborting: string;
  readonly version: string;
}

/**
 * POST /v1/promote: on to the canary's next step (the default, as Argo Rollouts' `promote`), or
 * (`full`) to 100% now. `step` is the older form: `step: false` alone still means full.
 */
export interface PromoteBody {
  readonly full?: boolean;
  /** Deprecated: `full` says it (true: the next step only, the default; false: full). */
  readonly step?: boolean;
  readonly actor?: string;
}

export interface PromoteAnswer {
  readonly promoting: string;
  readonly version: string;
  /** To 100% now (else on to the next step). */
  readonly full: boolean;
  /** = !full, for older clients. */
  readonly step: boolean;
}

/** POST /v1/pause (no body). */
export interface PauseAnswer {
  readonly paused: string;
  readonly version: string;
}

/** POST /v1/resume (no body). */
export interface ResumeAnswer {
  readonly resumed: string;
  readonly version: string;
}

/** GET /v1/history?limit=20: newest first. */
export interface HistoryAnswer {
  readonly history: HistoryEntry[];
}
