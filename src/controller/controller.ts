// The deploy controller: runs the app's instances behind the edge, deploys a new version with a
// strategy, and keeps one deployment at a time as an explicit state machine, persisted before
// every step so that a daemon killed at any point recovers to one complete, healthy release
// with no orphan process. This is the face the daemon and the admin API use; the work is in
//   deployment.ts  the deploy state machine (deploy, rollback, abort, promote, pause)
//   context.ts     the DeployContext a strategy runs with
//   fleet.ts       the instances: start, stop, orphans, supervise, standby, routes
//   readiness.ts   health-gating: ready before traffic, healthy after a switch
//   warmup.ts      requests to a new instance before it takes traffic
//   running.ts     the deployment in progress (abort, promote, pause) and its waits
//   events.ts      the request, progress events and extensions (types only)
//   recovery.ts    back to one release after a restart
//   persist.ts     the state file and history, written best effort (a full disk)
//   views.ts       status and logs
//   log-index.ts   which part of each log was written when (`baton logs --since`)
import path from 'node:path';
import type { InstanceLog } from '../api/logs.js';
import type { StatusView } from '../api/status.js';
import type { BatonConfig } from '../config/schema.js';
import type { Instance, InstanceDriver } from '../drivers/driver.js';
import type { Edge } from '../edge/edge.js';
import { BatonError, messageOf } from '../errors.js';
import type { Logger } from '../log.js';
import { Deployments } from './deployment.js';
import type { DeployExtension, DeployRequest } from './events.js';
import { Fleet, targetIdOf } from './fleet.js';
import { LogIndex } from './log-index.js';
import { Persistence } from './persist.js';
import { recover } from './recovery.js';
import type { Running } from './running.js';
import type { DeploymentState, HistoryEntry, StateStore } from './state.js';
import { instanceLogs, servingView, statusView, type ServingView, type ViewHost } from './views.js';
import { andThen } from '../util/text.js';

export class Controller {
  private readonly persist: Persistence;
  private readonly fleet: Fleet;
  private readonly deployments: Deployments;
  private readonly logIndex: LogIndex;

  constructor(
    private config: BatonConfig,
    private readonly edge: Edge,
    private driver: InstanceDriver,
    store: StateStore,
    private readonly log: Logger,
  ) {
    this.persist = new Persistence(store, log);
    this.logIndex = new LogIndex(path.join(config.stateDirPath, 'log-index'), log);
    this.fleet = new Fleet({
      config: () => this.config,
      driver: () => this.driver,
      edge,
      log,
      state: this.persist.state,
      save: () => this.persist.save(),
      deploying: () => this.deployments.current()?.deployment ?? null,
    });
    this.deployments = new Deployments({
      config: () => this.config,
      edge,
      log,
      fleet: this.fleet,
      persist: this.persist,
    });
  }

  private get app(): NonNullable<BatonConfig['app']> {
    return this.config.app!;
  }

  /**
   * Brings the service back to one complete, healthy release after a (re)start (see
   * recovery.ts).
   */
  async recover(): Promise<void> {
    try {
      await recover({
        config: () => this.config,
        driver: () => this.driver,
        log: this.log,
        fleet: this.fleet,
        persist: this.persist,
      });
    } finally {
      // After recovery: its first look deletes the index files of instances that are gone.
      this.logIndex.start(() => this.managed());
    }
  }

  /** Adds an extension that runs around every deployment from now on. */
  use(extension: DeployExtension): void {
    this.deployments.use(extension);
  }

  /** Starts a deployment in the background; progress goes to `listen`, the result to `done`. */
  deploy(req: DeployRequest): Running {
    return this.deployments.deploy(req);
  }

  /**
   * `baton rollback`: an instant switch back to the kept blue-green set when there is one,
   * else a deploy of the previous (or given) version with the configured strategy.
   */
  rollback(to: string | undefined, actor: string): Running {
    return this.deployments.rollback(to, actor);
  }

  /** `baton promote [--step]`: the canary goes to 100% now (or past its current pause). */
  promote(step: boolean): DeploymentState {
    return this.deployments.promote(step);
  }

  pause(paused: boolean): DeploymentState {
    return this.deployments.pause(paused);
  }

  /** `baton abort`: the running deployment stops at its next step and rolls back. */
  abort(actor: string): DeploymentState {
    return this.deployments.abort(actor);
  }

  /** The running deployment, to follow its progress. */
  current(): Running | null {
    return this.deployments.current();
  }

  /** Runs `work` with the deploy lock taken (deploys and rollbacks refused meanwhile). */
  whileLocked<T>(work: () => Promise<T>, why = 'an upgrade of the data plane'): Promise<T> {
    return this.deployments.whileHeld(why, work);
  }

  status(): Promise<StatusView> {
    return statusView(this.views());
  }

  /** The live version and the canary's share, from memory (for /metrics at every scrape). */
  serving(): ServingView {
    return servingView(this.views());
  }

  /**
   * The last `lines` lines of each instance's log that `select` names (an instance id, a
   * version, or a host's address; none: the live instances), read where each runs; with
   * `since` (epoch ms), of the lines written since then.
   */
  logs(select: string | undefined, lines: number, since?: number): Promise<InstanceLog[]> {
    return instanceLogs(this.views(), select, lines, since);
  }

  /** Newest first, the lines not written yet (a full disk) included. */
  history(limit = 50): HistoryEntry[] {
    return this.persist.history(limit);
  }

  /**
   * The controller exits (SIGTERM, a restart, an upgrade) and leaves the service running: a
   * running deploy is aborted (and rolled back, as always), supervision stops, the state is
   * saved; the instances keep running and the edge keeps its routes. The next `baton up`
   * adopts them (recovery.ts). A state file that cannot be written is thrown at the end.
   */
  async detach(): Promise<void> {
    await this.deployments.close();
    this.logIndex.close();
    this.fleet.close();
    this.persist.close();
    this.savedOrThrow('the instances keep running');
  }

  /** Saves the state; a write that fails is thrown, saying what was done and what is lost. */
  private savedOrThrow(done: string): void {
    const err = this.persist.save();
    if (!err) return;
    const pending = this.persist.pendingLines;
    throw new BatonError(
      'BATON_E_STATE',
      andThen(
        `${done}, but ${err.message}`,
        `${pending ? `${pending} history line(s) are lost, and ` : ''}the next \`baton up\` starts from the state last saved`,
      ),
      { cause: err },
    );
  }

  /**
   * `baton down` (or `baton up --stop-on-exit`): abort a running deploy, then take the
   * instances out of the edge, drain and stop every one. A state file that cannot be written
   * then is thrown once all of that is done (the stop goes through).
   */
  async shutdown(): Promise<void> {
    await this.deployments.close();
    this.logIndex.close();
    this.fleet.close();
    this.persist.close();
    const all = [...this.fleet.live, ...this.fleet.standby];
    try {
      await this.edge.apply([], null);
      await this.edge.drain(
        all.map((m) => targetIdOf(m.instance)),
        this.app.drainTimeout,
      );
    } catch (err) {
      this.log.error({ error: messageOf(err) }, `${this.edge.describe} refused to take the instances out`);
    }
    await this.fleet.stopAll(all);
    this.persist.state.standby = null;
    this.savedOrThrow('the instances were stopped');
  }

  /**
   * SIGHUP: the new config, and a driver built from its app section (command, ports, env, cwd),
   * apply from the next instance started. Running instances keep what they were started with.
   */
  reload(config: BatonConfig, driver: InstanceDriver): void {
    this.config = config;
    this.driver = driver;
  }

  /** Every instance this controller knows of: live, standby, a running deploy's, orphans. */
  instances(): Instance[] {
    return [...new Set([...this.managed(), ...this.fleet.orphans.values()])];
  }

  /** The instances it runs: live, standby and those a running deploy started, once each. */
  private managed(): Instance[] {
    return this.fleet.managed(this.current()?.started ?? []);
  }

  private views(): ViewHost {
    return {
      service: this.config.service,
      edge: this.edge,
      driver: this.driver,
      fleet: this.fleet,
      state: this.persist.state,
      running: () => this.current(),
      logIndex: this.logIndex,
    };
  }
}
