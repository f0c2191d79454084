// The strategy contract: a deploy strategy moves traffic from the live instances to new ones
// through a DeployContext: the controller's primitives for starting (health-gated), routing (one
// atomic swap), draining and stopping instances. A strategy that fails after traffic moved puts
// it back itself and throws a DeployFailure with rolledBack = true. The controller implements
// this file; nothing here imports the controller.
import type { DeployStep } from '../api/deploy.js';
import type { AppConfig, StrategyConfig } from '../config/schema.js';
import type { Instance } from '../drivers/driver.js';
import type { SplitSpec, StatsSnapshot } from '../edge/edge.js';
import { BatonError } from '../errors.js';
import type { Verdict } from './analysis.js';

/** Steps a deployment passes through (persisted before each one starts): a wire type. */
export type { DeployStep } from '../api/deploy.js';

// How a deployment ends badly: failed before traffic moved (the old release never noticed), or
// rolled back after it moved. Both carry the reason users see in the CLI, history and logs.

export class DeployFailure extends BatonError {
  constructor(
    message: string,
    readonly rolledBack: boolean,
    cause?: unknown,
  ) {
    super('BATON_E_DEPLOY_FAILED', message, { cause });
  }
}

export class DeployAborted extends BatonError {
  constructor(by: string) {
    super('BATON_E_DEPLOY_FAILED', `aborted by ${by}`);
  }
}

/** A live instance the controller supervises. */
export interface Managed {
  readonly instance: Instance;
  readonly slot: number;
  /** Set while Baton itself stops it: its exit is not a crash. */
  stopping: boolean;
}

export interface DeployContext {
  readonly service: string;
  readonly version: string;
  readonly previousVersion: string | null;
  readonly app: AppConfig;
  /** The instances in the route table right now. */
  live(): readonly Managed[];
  /** Records a step (persisted before it runs) and reports it as progress. */
  step(step: DeployStep, detail: string): void;
  info(message: string): void;
  /** Call right after all traffic moved to the new version (postSwitch hooks); throws to roll back. */
  switched(): Promise<void>;
  /**
   * Starts `count` instances of `version` (on `onHosts` only, by name, when given) and waits
   * until each is ready; on failure stops them all.
   */
  start(count: number, version: string, onHosts?: readonly string[]): Promise<Managed[]>;
  /**
   * Makes `instances` exactly the route table, in one swap; `fallback` instances ride along
   * as backups, taking traffic only while none of `instances` is up. Resolves once new requests
   * reach them (an nginx reload confirmed); throws with the previous routes still in effect.
   */
  route(instances: readonly Managed[], fallback?: readonly Managed[]): Promise<void>;
  /** Waits until the instances (already out of the table) have no request in flight. */
  drain(instances: readonly Managed[]): Promise<void>;
  stop(instances: readonly Managed[]): Promise<void>;
  /** Watches the instances for `ms`: throws if one exits or fails its health checks. */
  verify(instances: readonly Managed[], ms: number): Promise<void>;
  /** Keeps a replaced set running for `ms` (instant rollback), then stops it. */
  keepStandby(instances: readonly Managed[], ms: number): void;
  /** Throws when `baton abort` was asked for. */
  checkAborted(): void;

  // --- canary -------------------------------------------------------------------------------
  /** Routes stable and canary instances with a split between them, in one swap. */
  routeSplit(stable: readonly Managed[], canary: readonly Managed[], split: SplitSpec): Promise<void>;
  /** Summed edge counters of these instances (for analysis); null when the edge keeps none. */
  stats(instances: readonly Managed[]): Promise<StatsSnapshot | null>;
  /** Reports an analysis verdict (status, progress). */
  verdict(v: Verdict): void;
  /** Ends the deployment with this reason (the strategy rolls back). */
  fail(reason: string): void;
  /**
   * Waits `ms` (null: until promoted), not counting time spent paused; resolves early on
   * `baton promote` ('step' or 'full'), throws on abort.
   */
  wait(ms: number | null): Promise<'elapsed' | 'step' | 'full'>;
  /** 'full' once `baton promote` (without --step) was asked for. */
  promotion(): 'full' | null;
}

export type Strategy = (ctx: DeployContext, config: StrategyConfig) => Promise<void>;

/** Resolves maxSurge/maxUnavailable like Kubernetes: surge rounds up, unavailable down. */
export function resolveCount(value: number | string, total: number, roundUp: boolean): number {
  if (typeof value === 'number') return value;
  const pct = Number(value.slice(0, -1)) / 100;
  return roundUp ? Math.ceil(pct * total) : Math.floor(pct * total);
}

/**
 * Starts the whole set of `version` when nothing else serves (a first deploy, or recreate after
 * the stop): routes it, runs the postSwitch hooks, and stops it again if they fail.
 */
export async function startAlone(ctx: DeployContext, version: string): Promise<void> {
  const fresh = await ctx.start(ctx.app.instances, version);
  try {
    await ctx.route(fresh);
  } catch (err) {
    await ctx.stop(fresh);
    throw err;
  }
  try {
    await ctx.switched();
  } catch (err) {
    await ctx.route([]);
    await ctx.stop(fresh);
    throw err;
  }
}
