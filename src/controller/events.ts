// What the controller shows the world around a deployment, types only: the request, its
// progress events, and the extensions that run around it (deploy windows, hooks,
// notifications). Those import this file, not the controller.
import type { ProgressEvent } from '../api/deploy.js';
import type { VerdictView } from '../api/status.js';
import type { StrategyType } from '../config/schema.js';
import type { DeploymentState, HistoryEntry } from './state.js';

/** One progress line of a deployment, as it crosses the wire (src/api/deploy.ts). */
export type { ProgressEvent } from '../api/deploy.js';

/** Reports a progress event; the time, deployment and elapsed time are filled in. */
export type Emit = (e: Omit<ProgressEvent, 'time' | 'deployId' | 'elapsedMs'>) => void;

export interface DeployRequest {
  readonly version: string;
  readonly strategy?: StrategyType | undefined;
  readonly actor?: string | undefined;
  readonly rollback?: boolean;
  /** Deploy outside the deploy windows or through a freeze (recorded in history). */
  readonly force?: boolean | undefined;
}

/**
 * What runs around every deployment (deploy windows, hooks, notifications). Each method is
 * optional; extensions run in the order they were added.
 */
export interface DeployExtension {
  /** Before a deploy is accepted; throw a BatonError to refuse it (nothing is recorded). */
  admit?(req: DeployRequest): void;
  /** Before anything starts; throwing fails the deploy and nothing changes. */
  beforeStart?(d: DeploymentState, info: (message: string) => void): Promise<void>;
  /** Right after all traffic moved to the new version; throwing rolls it back. */
  afterSwitch?(d: DeploymentState, info: (message: string) => void): Promise<void>;
  /** Once the result is known (progress still shows `info`); never changes it. */
  afterEnd?(d: DeploymentState, entry: HistoryEntry, info: (message: string) => void): Promise<void>;
  /** Every progress event, as it happens; must not throw or block. */
  onEvent?(e: ProgressEvent, d: DeploymentState): void;
  /** Every verdict of a canary's analysis, as it is given; must not throw or block. */
  onVerdict?(v: VerdictView, d: DeploymentState): void;
}
