// The deploy controller: runs the app's instances behind the built-in proxy, deploys a new
// version with a strategy, and keeps one deployment at a time as an explicit state machine,
// persisted before every step so that a daemon killed at any point recovers to one complete,
// healthy release with no orphan process.
import { randomUUID } from 'node:crypto';
import type { BatonConfig, StrategyConfig, StrategyType } from '../config/schema.js';
import type { Instance, InstanceDriver, InstanceRecord } from '../drivers/driver.js';
import { checkVersion } from '../drivers/local/command.js';
import { request } from 'undici';
import { probe, probeTarget } from '../edge/builtin/health.js';
import type { RouteSpec } from '../edge/builtin/proxy.js';
import { targetId, type Edge } from '../edge/edge.js';
import { BatonError, messageOf } from '../errors.js';
import type { Logger } from '../log.js';
import { blueGreen } from '../strategies/blue-green.js';
import { recreate } from '../strategies/recreate.js';
import { rolling } from '../strategies/rolling.js';
import { canary } from '../strategies/canary.js';
import type { StatsSnapshot, Verdict } from '../strategies/analysis.js';
import type { SplitSpec } from '../edge/builtin/split.js';
import { startAlone, type DeployContext, type Managed, type Strategy } from '../strategies/strategy.js';
import { DeployAborted, DeployFailure, reasonOf } from './errors.js';
import type {
  DeployResult,
  DeployStep,
  DeploymentState,
  HistoryEntry,
  ServiceState,
  StateStore,
} from './state.js';

const STRATEGIES: Record<StrategyType, Strategy> = {
  'blue-green': blueGreen,
  rolling,
  recreate,
  canary,
  ab: canary,
};

/** Restart backoff for crashed instances: 1s doubling to 30s; 5 crashes in a minute is a loop. */
const BACKOFF_MS = [1000, 2000, 4000, 8000, 16_000, 30_000];
const CRASH_LOOP = { count: 5, windowMs: 60_000 };
/** How often instances that could not be stopped (their host unreachable) are tried again. */
const ORPHAN_RETRY_MS = 5000;
/** How often a state file (or history line) that could not be written (a full disk) is tried again. */
const STATE_RETRY_MS = 5000;

export interface ProgressEvent {
  readonly time: string;
  readonly deployId: string;
  readonly kind: 'start' | 'step' | 'info' | 'done';
  readonly step?: DeployStep;
  readonly message: string;
  readonly elapsedMs: number;
  /** On 'done'. */
  readonly result?: DeployResult;
  readonly entry?: HistoryEntry;
}

/** One instance's log tail, for `baton logs`. */
export interface InstanceLog {
  readonly id: string;
  readonly version: string;
  readonly host: string;
  readonly port: number;
  readonly logFile: string;
  readonly text: string;
  /** Why its log could not be read (its host unreachable, the file gone). */
  readonly error?: string;
}

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
}

/** How a deployment moves traffic: a configured strategy, or the instant switch back. */
type Plan =
  | { readonly kind: 'strategy'; readonly config: StrategyConfig }
  | { readonly kind: 'switch-back'; readonly to: Managed[] };

interface Running {
  readonly deployment: DeploymentState;
  readonly abort: AbortController;
  readonly events: ProgressEvent[];
  readonly listeners: Set<(e: ProgressEvent) => void>;
  readonly done: Promise<HistoryEntry>;
  /** `baton promote` / `pause` / `resume` for steps that wait. */
  readonly control: { promote: 'none' | 'step' | 'full'; paused: boolean; wake: (() => void) | null };
  /** The canary's split and analysis so far, for status. */
  canary: { percent: number; rules: unknown[]; verdicts: Verdict[] } | null;
  /** Every instance this deployment started, to stop the ones a failure left behind. */
  readonly started: Managed[];
  /**
   * Set once it goes back (a rollback step) or its state could not be written: from then on a
   * state write that fails is retried later instead of stopping the way back halfway.
   */
  unwinding: boolean;
  /** Why a rollback started without its state on disk (it runs anyway), or null. */
  unsavedAtStart: string | null;
}

export class Controller {
  private state: ServiceState;
  private live: Managed[] = [];
  private standby: Managed[] = [];
  private standbyTimer: NodeJS.Timeout | null = null;
  private running: Running | null = null;
  private readonly crashes = new Map<number, number[]>();
  private readonly crashLoops = new Set<number>();
  private closed = false;
  /** Instances that should be gone but whose stop failed (see ServiceState.orphans), by id. */
  private readonly orphans = new Map<string, Instance>();
  private orphanTimer: NodeJS.Timeout | null = null;
  private readonly extensions: DeployExtension[] = [];
  /** The canary split in effect (kept when a crashed instance is replaced), or null. */
  private split: { readonly spec: SplitSpec; readonly canary: ReadonlySet<Managed> } | null = null;
  /** Why the state file on disk is behind the one in memory (a write failed), or null. */
  private unsaved: string | null = null;
  private saveTimer: NodeJS.Timeout | null = null;
  /** History lines not written yet (a full disk), oldest first: written before any newer one. */
  private readonly pendingHistory: HistoryEntry[] = [];

  constructor(
    private config: BatonConfig,
    private readonly edge: Edge,
    private driver: InstanceDriver,
    private readonly store: StateStore,
    private readonly log: Logger,
  ) {
    this.state = store.load();
  }

  private get app(): NonNullable<BatonConfig['app']> {
    return this.config.app!;
  }

  // --- start-up and recovery -----------------------------------------------------------------

  /**
   * Brings the service back to one complete, healthy release after a (re)start: the live one,
   * or the one a crashed deployment started from. Instances still running are adopted when
   * healthy; the missing ones are started; every other recorded process is stopped.
   */
  async recover(): Promise<void> {
    const st = this.state;
    // A recorded pid that another process holds now (a reboot, a pid wrap) is not ours: never
    // signalled, its record dropped (and the instance replaced, as a dead one is).
    const lost = new Map<string, string>();
    const adopt = (r: InstanceRecord): Instance | null =>
      this.driver.adopt(r, (reason) => {
        if (lost.has(r.id)) return;
        lost.set(r.id, reason);
        this.log.warn(
          { instance: r.id, host: r.host, pid: r.pid, reason },
          'recorded instance lost: its pid is another process now, left alone; not adopted',
        );
      });
    for (const r of st.orphans ?? []) {
      const instance = adopt(r);
      if (instance) this.orphans.set(r.id, instance);
    }
    this.scheduleOrphans();
    // By id, not pid: pids of different hosts collide.
    const records = new Map<string, InstanceRecord>();
    for (const r of [
      ...(st.live?.instances ?? []),
      ...(st.standby?.instances ?? []),
      // The set it was replacing: once traffic moved, `live` no longer lists it.
      ...(st.deployment?.replacing ?? []),
      ...(st.deployment?.started ?? []),
    ]) {
      records.set(r.id, r);
    }
    let version = st.live?.version ?? null;
    let note: string | null = null;
    if (st.deployment) {
      const d = st.deployment;
      const completed = d.step === 'finishing';
      version = completed ? d.version : d.previousVersion;
      note = `the daemon stopped during the deploy of ${d.version} (step ${d.step}); ${
        completed
          ? `${d.version} had taken all traffic and stays live`
          : version
            ? `back on ${version}`
            : 'nothing was live before it'
      }`;
      this.appendHistory(
        this.historyEntry(d, completed ? 'succeeded' : 'rolled-back', completed ? null : note),
      );
      this.log.warn({ deployment: d.id }, note);
    }
    const keep: Managed[] = [];
    if (version !== null) {
      for (const r of records.values()) {
        if (r.version !== version || keep.length >= this.app.instances) continue;
        const instance = adopt(r);
        if (instance && (await this.readyNow(instance)))
          keep.push({ instance, slot: keep.length + 1, stopping: false });
      }
    }
    const adopted = new Set(keep.map((m) => m.instance.record.id));
    // Everything recorded and not kept is stopped: no orphan survives a restart.
    // One whose host does not answer is an orphan, stopped once it does.
    await this.stopAll(
      [...records.values()]
        .filter((r) => !adopted.has(r.id))
        .map((r) => adopt(r))
        .filter((i) => i !== null)
        .map((instance) => ({ instance, slot: 0, stopping: false })),
    );
    this.state.deployment = null;
    this.state.standby = null;
    const lostNotes = [...lost].map(([id, reason]) => `instance ${id} lost: ${reason}; not signalled`);
    this.state.lastRecovery =
      note === null && lostNotes.length === 0 ? null : [note, ...lostNotes].filter(Boolean).join('; ');
    if (version !== null && keep.length < this.app.instances) {
      try {
        keep.push(...(await this.startReady(this.app.instances - keep.length, version, keep)));
      } catch (err) {
        // Serve with what was adopted rather than nothing; the error says why not all.
        this.log.error(
          { version, instances: keep.length, error: reasonOf(err) },
          'could not start the missing instances of the live release',
        );
      }
    }
    // Back in the route table: the built-in proxy of a fresh process starts with none, and an
    // nginx / HAProxy edge may still list instances that are gone now.
    this.live = keep;
    await this.routeLive();
    this.setLive(version, keep);
    for (const m of keep) this.supervise(m);
    if (version !== null) {
      this.log.info({ version, adopted: adopted.size, instances: keep.length }, 'release restored');
    }
  }

  private async readyNow(instance: Instance): Promise<boolean> {
    const h = this.app.health;
    for (let i = 0; i < h.healthyThreshold + 2; i++) {
      if (!instance.alive()) return false;
      if ((await probe(origin(instance), h)) === null) return true;
      await sleep(h.interval);
    }
    return false;
  }

  // --- deployments ---------------------------------------------------------------------------

  /** Starts a deployment in the background; progress goes to `listen`, the result to `done`. */
  /** Adds an extension that runs around every deployment from now on. */
  use(extension: DeployExtension): void {
    this.extensions.push(extension);
  }

  deploy(req: DeployRequest, plan?: Plan): Running {
    checkVersion(req.version);
    if (this.closed) throw new BatonError('BATON_E_CONFLICT', 'the daemon is shutting down');
    if (this.running) throw this.locked(this.running.deployment);
    for (const x of this.extensions) x.admit?.(req);
    const strategyType = req.strategy ?? this.config.strategy.type;
    const strategy: StrategyConfig =
      strategyType === this.config.strategy.type ? this.config.strategy : defaultStrategy(strategyType);
    const lacking = this.edgeLacks(strategy);
    if (lacking) throw new BatonError('BATON_E_CONFIG', lacking);
    const deployment: DeploymentState = {
      id: randomUUID().slice(0, 8),
      version: req.version,
      previousVersion: this.state.live?.version ?? null,
      strategy: strategyType,
      actor: req.actor || 'unknown',
      startedAt: new Date().toISOString(),
      rollback: req.rollback ?? false,
      forced: req.force ?? false,
      step: 'starting',
      detail: '',
      replacing: records(this.live),
      started: [],
    };
    let finish!: (entry: HistoryEntry) => void;
    const running: Running = {
      deployment,
      abort: new AbortController(),
      events: [],
      listeners: new Set(),
      done: new Promise<HistoryEntry>((r) => (finish = r)),
      control: { promote: 'none', paused: false, wake: null },
      canary: null,
      started: [],
      unwinding: false,
      unsavedAtStart: null,
    };
    // The deployment is on disk before anything starts (a crash resumes from it); when it cannot
    // be written, nothing starts and the lock is not taken. A rollback goes on all the same: the
    // way back never waits for the disk (its writes are tried again; see save()).
    this.state.deployment = deployment;
    try {
      this.persist();
    } catch (err) {
      if (req.rollback) {
        running.unwinding = true;
        running.unsavedAtStart = reasonOf(err);
      } else {
        this.state.deployment = null;
        throw new BatonError(
          'BATON_E_STATE',
          `deploy of ${req.version} not started: ${reasonOf(err)}. Nothing changed (${this.state.live ? `${this.state.live.version} still serves` : 'nothing was live'}); try again once it can be written, or \`baton rollback\`, which runs anyway.`,
          { cause: err },
        );
      }
    }
    this.running = running;
    void this.run(running, plan ?? { kind: 'strategy', config: strategy })
      .catch((err: unknown) => {
        // run() ends every deployment itself; should it ever throw, the lock is released anyway.
        this.log.error({ deployment: deployment.id, err }, 'deploy ended with an internal error');
        if (this.running === running) this.running = null;
        return this.historyEntry(deployment, 'failed', reasonOf(err));
      })
      .then(finish);
    return running;
  }

  private async run(running: Running, plan: Plan): Promise<HistoryEntry> {
    const d = running.deployment;
    const t0 = Date.now();
    const emit = (e: Omit<ProgressEvent, 'time' | 'deployId' | 'elapsedMs'>): void => {
      const event: ProgressEvent = {
        time: new Date().toISOString(),
        deployId: d.id,
        elapsedMs: Date.now() - t0,
        ...e,
      };
      running.events.push(event);
      for (const l of running.listeners) l(event);
      for (const x of this.extensions) {
        try {
          x.onEvent?.(event, d);
        } catch (err) {
          this.log.error({ err }, 'a deploy extension failed on an event');
        }
      }
    };
    emit({
      kind: 'start',
      message: `deploying ${d.version} (${d.strategy}${d.previousVersion ? `, replacing ${d.previousVersion}` : ', first deploy'}) for ${d.actor}`,
    });
    this.log.info(
      { deployment: d.id, version: d.version, strategy: d.strategy, actor: d.actor },
      'deploy started',
    );
    if (running.unsavedAtStart) {
      emit({
        kind: 'info',
        message: `${running.unsavedAtStart}: rolling back anyway; the state on disk catches up once it can be written (should the daemon stop before, it restarts from the state last saved)`,
      });
    }
    if (plan.kind === 'strategy')
      for (const message of this.edgeNotes(plan.config)) emit({ kind: 'info', message });
    let result: DeployResult = 'succeeded';
    let reason: string | null = null;
    // What served when it started: a failure goes back to it while it still runs (settleFailure).
    const previous = [...this.live];
    try {
      const ctx = this.context(running, emit);
      for (const x of this.extensions) await x.beforeStart?.(d, (message) => ctx.info(message));
      if (plan.kind === 'switch-back') {
        await switchBack(
          ctx,
          plan.to,
          this.config.strategy.type === 'blue-green' ? this.config.strategy.keepOld : 30_000,
        );
      } else {
        // A new deploy supersedes the kept blue-green standby: stop it first.
        await this.dropStandby();
        if (this.live.length === 0) {
          ctx.step('starting', `starting ${this.app.instances} instance(s) of ${d.version}`);
          // A first deploy has nothing to go back to: if its postSwitch fails, it stops.
          await startAlone(ctx, d.version);
        } else {
          await STRATEGIES[d.strategy](ctx, plan.config);
        }
      }
      ctx.step('finishing', `${d.version} serves all traffic`);
    } catch (err) {
      result = err instanceof DeployFailure && err.rolledBack ? 'rolled-back' : 'failed';
      reason = reasonOf(err);
      const involved = [...previous, ...(plan.kind === 'switch-back' ? plan.to : [])];
      const back = await this.settleFailure(running, previous, involved).catch((e: unknown) => {
        this.log.error(
          { deployment: d.id, error: reasonOf(e) },
          'could not clean up after the failed deploy',
        );
        return false;
      });
      if (back && result === 'failed') {
        result = 'rolled-back';
        reason = `${reason}; traffic switched back to ${d.previousVersion}`;
      }
      this.log.error({ deployment: d.id, reason }, `deploy ${result}`);
    }
    // From here on nothing throws: the lock is released whatever happens (a full disk).
    this.state.deployment = null;
    const unsaved = this.setLive(this.liveVersion(), this.live);
    const entry = this.historyEntry(d, result, reason);
    this.appendHistory(entry);
    this.running = null;
    if (unsaved) {
      emit({
        kind: 'info',
        message: `${unsaved.message}: the state on disk is behind (tried again every ${STATE_RETRY_MS / 1000}s); the daemon serves as it says here`,
      });
    }
    for (const x of this.extensions) {
      await x
        .afterEnd?.(d, entry, (message) => emit({ kind: 'info', message }))
        .catch((err: unknown) => this.log.error({ err }, 'a deploy extension failed after the deploy'));
    }
    emit({
      kind: 'done',
      result,
      entry,
      message:
        result === 'succeeded'
          ? `${d.version} is live (${entry.durationMs}ms)`
          : `deploy ${result}: ${reason}; ${this.state.live ? `${this.state.live.version} is serving` : 'nothing is serving'}`,
    });
    return entry;
  }

  /**
   * After a failure the strategy did not undo (one between two of its steps: a state file that
   * could not be written, an edge that refused the last change): when traffic had moved and the
   * set that served before is still whole, it serves again (true: an automatic rollback). Then
   * whatever the deploy started or replaced that is neither live nor kept is taken out of the
   * routes, drained and stopped: no instance outlives a deploy outside the live and standby sets.
   */
  private async settleFailure(
    running: Running,
    previous: readonly Managed[],
    involved: readonly Managed[],
  ): Promise<boolean> {
    let back = false;
    const moved = this.live.length !== previous.length || this.live.some((m) => !previous.includes(m));
    if (moved && previous.length && previous.every((m) => !m.stopping && m.instance.alive())) {
      try {
        await this.applyRoutes(previous, null);
        this.split = null;
        this.live = [...previous];
        // It may be the standby already (kept, then a later step failed): live again instead.
        if (this.standby.some((m) => previous.includes(m))) {
          if (this.standbyTimer) clearTimeout(this.standbyTimer);
          this.standbyTimer = null;
          this.standby = [];
          this.state.standby = null;
        }
        this.setLive(this.liveVersion(), this.live);
        back = true;
      } catch (err) {
        this.log.error(
          { error: reasonOf(err) },
          `${this.edge.describe} refused to switch back; the new set serves`,
        );
      }
    }
    const kept = new Set([...this.live, ...this.standby]);
    const stray = (m: Managed): boolean => !kept.has(m) && !m.stopping;
    const strays = [...new Set([...running.started, ...involved])].filter(stray);
    // Once traffic moved, some may still be in the table (a blue-green backup, the set just
    // switched away from): out of it and drained first. Before, none was ever routed.
    if (strays.length && (moved || strays.some((m) => involved.includes(m)))) {
      await this.routeLive();
      await this.edge.drain(
        strays.map((m) => targetIdOf(m.instance)),
        this.app.drainTimeout,
      );
    }
    if (strays.length) await this.stopAll(strays);
    return back;
  }

  private context(
    running: Running,
    emit: (e: Omit<ProgressEvent, 'time' | 'deployId' | 'elapsedMs'>) => void,
  ): DeployContext {
    const d = running.deployment;
    const app = this.app;
    return {
      service: this.config.service,
      version: d.version,
      previousVersion: d.previousVersion,
      app,
      live: () => this.live,
      step: (step, detail) => {
        d.step = step;
        d.detail = detail;
        if (step === 'rolling-back') running.unwinding = true;
        // On disk before it runs (a crash resumes from there); if it cannot be, the deploy stops
        // here and goes back, and the way back is not stopped by the same full disk.
        this.persistStep(running);
        emit({ kind: 'step', step, message: detail });
        crashHookForTests(step);
      },
      info: (message) => emit({ kind: 'info', message }),
      switched: async () => {
        for (const x of this.extensions)
          await x.afterSwitch?.(d, (message) => emit({ kind: 'info', message }));
      },
      start: async (count, version, onHosts) => {
        const started = await this.startReady(count, version, this.live, running, onHosts);
        running.started.push(...started);
        for (const m of started) this.supervise(m);
        if (app.warmup) {
          for (const m of started) {
            emit({ kind: 'info', message: await warmUp(m.instance, app.warmup, running.abort.signal) });
          }
        }
        if (app.slowStart > 0) {
          emit({
            kind: 'info',
            message: `slow start: new instances ramp up to full weight over ${app.slowStart}ms`,
          });
        }
        return started;
      },
      route: async (instances, fallback = []) => {
        // The edge first: should it refuse the change, nothing moved and `live` stays as it was.
        await this.edge.apply(
          [
            ...instances.map((m) => routeOf(m, app.slowStart)),
            ...fallback.map((m) => ({ ...routeOf(m, app.slowStart), backup: true })),
          ],
          null,
        );
        this.split = null;
        this.live = [...instances];
        this.setLive(this.liveVersion(), this.live);
      },
      drain: async (instances) => {
        const routed = new Set(this.live.map((m) => targetIdOf(m.instance)));
        const ids = instances.map((m) => targetIdOf(m.instance)).filter((id) => !routed.has(id));
        const results = await this.edge.drain(ids, app.drainTimeout);
        for (const r of results) {
          if (!r.drained)
            emit({
              kind: 'info',
              message: `${r.id}: ${r.inflightLeft} request(s) still running after drainTimeout`,
            });
        }
      },
      stop: (instances) => this.stopAll(instances),
      verify: (instances, ms) => this.verify(instances, ms, running.abort.signal),
      keepStandby: (instances, ms) => {
        this.standby = [...instances];
        const stopAt = new Date(Date.now() + ms).toISOString();
        this.state.standby = {
          version: instances[0]!.instance.record.version,
          instances: records(instances),
          stopAt,
        };
        this.save();
        emit({ kind: 'info', message: `old set kept until ${stopAt} for an instant \`baton rollback\`` });
        this.standbyTimer = setTimeout(() => void this.dropStandby(), ms);
        this.standbyTimer.unref();
      },
      checkAborted: () => {
        if (running.abort.signal.aborted) throw running.abort.signal.reason as Error;
      },
      routeSplit: async (stable, canaries, split) => {
        const next = { spec: split, canary: new Set(canaries) };
        await this.applyRoutes([...stable, ...canaries], next);
        this.live = [...stable, ...canaries];
        this.split = next;
        this.setLive(this.liveVersion(), this.live);
        running.canary = {
          percent: split.canaryPercent,
          rules: [...split.rules],
          verdicts: running.canary?.verdicts ?? [],
        };
      },
      stats: (instances) => this.statsOf(instances),
      verdict: (v) => {
        running.canary?.verdicts.push(v);
        emit({ kind: 'info', message: `analysis ${v.result}: ${v.reason}` });
      },
      fail: (reason) => running.abort.abort(new BatonError('BATON_E_DEPLOY_FAILED', reason)),
      wait: (ms) => this.waitStep(running, ms, emit),
      promotion: () => (running.control.promote === 'full' ? 'full' : null),
    };
  }

  /** A pause step: `ms` of unpaused time, or until promoted; throws when aborted. */
  private async waitStep(
    running: Running,
    ms: number | null,
    emit: (e: Omit<ProgressEvent, 'time' | 'deployId' | 'elapsedMs'>) => void,
  ): Promise<'elapsed' | 'step' | 'full'> {
    const c = running.control;
    let left = ms ?? Infinity;
    let last = Date.now();
    let reported = false;
    for (;;) {
      if (running.abort.signal.aborted) throw running.abort.signal.reason as Error;
      if (c.promote !== 'none') {
        const how = c.promote;
        if (how === 'step') c.promote = 'none';
        emit({
          kind: 'info',
          message: how === 'full' ? 'promoted: skipping to 100%' : 'promoted: next step',
        });
        return how;
      }
      const now = Date.now();
      if (!c.paused) left -= now - last;
      last = now;
      if (left <= 0) return 'elapsed';
      if (c.paused && !reported) {
        emit({ kind: 'info', message: 'paused by `baton pause`; `baton resume` to go on' });
        reported = true;
      } else if (!c.paused) reported = false;
      // One abort listener per wait, removed after it: a long pause must not pile them up.
      const onAbort = (): void => c.wake?.();
      running.abort.signal.addEventListener('abort', onAbort, { once: true });
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 250));
        c.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      running.abort.signal.removeEventListener('abort', onAbort);
      c.wake = null;
    }
  }

  /** `baton promote [--step]`: the canary goes to 100% now (or past its current pause). */
  promote(step: boolean): DeploymentState {
    const r = this.requireRunning();
    r.control.promote = step ? 'step' : 'full';
    r.control.paused = false;
    r.control.wake?.();
    return r.deployment;
  }

  pause(paused: boolean): DeploymentState {
    const r = this.requireRunning();
    r.control.paused = paused;
    r.control.wake?.();
    return r.deployment;
  }

  private requireRunning(): Running {
    if (!this.running) throw new BatonError('BATON_E_NOT_FOUND', 'no deploy is running');
    return this.running;
  }

  private statsOf(instances: readonly Managed[]): Promise<StatsSnapshot | null> {
    return this.edge.stats(instances.map((m) => targetIdOf(m.instance)));
  }

  /** `baton abort`: the running deployment stops at its next step and rolls back. */
  abort(actor: string): DeploymentState {
    if (!this.running) throw new BatonError('BATON_E_NOT_FOUND', 'no deploy is running');
    this.running.abort.abort(new DeployAborted(actor));
    return this.running.deployment;
  }

  /**
   * `baton rollback`: an instant switch back to the kept blue-green set when there is one,
   * else a deploy of the previous (or given) version with the configured strategy.
   */
  rollback(to: string | undefined, actor: string): Running {
    // While a deploy runs, the same refusal as `baton deploy` (not "nothing to roll back to").
    if (this.running) throw this.locked(this.running.deployment);
    const target = to ?? this.previousRelease();
    if (!target)
      throw new BatonError(
        'BATON_E_NOT_FOUND',
        'nothing to roll back to: no earlier successful release in history',
      );
    if (to !== undefined && !this.history(10_000).some((h) => h.version === to && h.result === 'succeeded')) {
      throw new BatonError('BATON_E_NOT_FOUND', `version ${to} was never live here; see \`baton history\``);
    }
    if (
      this.standby.length &&
      this.standby[0]!.instance.record.version === target &&
      this.standby.every((m) => m.instance.alive())
    ) {
      return this.instantSwitchBack(target, actor);
    }
    return this.deploy({ version: target, actor, rollback: true });
  }

  /** Why this edge cannot run the strategy (checked before anything starts), or null. */
  private edgeLacks(strategy: StrategyConfig): string | null {
    const rules =
      strategy.type === 'ab' ||
      (strategy.type === 'canary' && strategy.steps.some((s) => 'setHeaderRoute' in s));
    if (rules && !this.edge.can.matchRules) {
      return `${this.edge.describe} cannot send requests to the new version by header, cookie or address (the ${strategy.type} strategy's match rules): use the built-in or nginx edge, or a canary with setWeight steps only`;
    }
    return null;
  }

  /** What the edge does differently from the config's wish (said at the start of the deploy). */
  private edgeNotes(strategy: StrategyConfig): string[] {
    if (strategy.type !== 'canary') return [];
    const sticky = this.edge.can.sticky;
    if (sticky === 'any' || (sticky === 'named' && strategy.sticky !== 'baton')) return [];
    return [
      `${this.edge.describe} cannot keep a client on one side${sticky === 'named' ? " with Baton's own cookie (set strategy.sticky to a header or cookie of yours)" : ''}: the canary share is per request`,
    ];
  }

  /** The deploy lock is taken: who holds it, since when, and what to do. */
  private locked(d: DeploymentState): BatonError {
    return new BatonError(
      'BATON_E_LOCKED',
      `a deploy of ${d.version} by ${d.actor} is running since ${d.startedAt} (step ${d.step}); wait for it, follow it with \`baton status\`, or stop it with \`baton abort\``,
      { details: { deployment: d } },
    );
  }

  private instantSwitchBack(version: string, actor: string): Running {
    const back = this.standby;
    const running = this.deploy(
      { version, actor, rollback: true, strategy: 'blue-green' },
      { kind: 'switch-back', to: back },
    );
    // Only once it started (a deploy refused, by a full disk, keeps the standby as it was); the
    // deploy's first await comes after this, so it never sees the standby it takes back.
    if (this.standbyTimer) clearTimeout(this.standbyTimer);
    this.standbyTimer = null;
    this.standby = [];
    this.state.standby = null;
    return running;
  }

  private previousRelease(): string | null {
    const live = this.state.live?.version;
    for (const h of this.history(10_000)) {
      if (h.result === 'succeeded' && h.version !== live) return h.version;
    }
    return null;
  }

  // --- instances -----------------------------------------------------------------------------

  /** Starts `count` instances and waits until each is ready; on any failure stops them all. */
  private async startReady(
    count: number,
    version: string,
    beside: readonly Managed[],
    running?: Running,
    onHosts?: readonly string[],
  ): Promise<Managed[]> {
    // Orphans still hold their ports.
    const others = [
      ...[...beside, ...this.standby, ...this.live].map((m) => m.instance.record),
      ...[...this.orphans.values()].map((i) => i.record),
    ];
    const slots = new Set([...beside].map((m) => m.slot));
    const started: Managed[] = [];
    try {
      for (let i = 0; i < count; i++) {
        const { host, port } = await this.driver.allocate(
          [...others, ...started.map((m) => m.instance.record)],
          version,
          onHosts,
        );
        let slot = 1;
        while (slots.has(slot)) slot++;
        slots.add(slot);
        const instance = await this.driver.start({ service: this.config.service, host, version, port, slot });
        started.push({ instance, slot, stopping: false });
        if (running) {
          running.deployment.started.push(instance.record);
          this.persistStep(running);
        }
      }
      await Promise.all(started.map((m) => this.waitReady(m.instance, running?.abort.signal)));
      return started;
    } catch (err) {
      await this.stopAll(started);
      throw err;
    }
  }

  /** Readiness: `healthyThreshold` consecutive passes within `readyTimeout`, or why not. */
  private async waitReady(instance: Instance, signal?: AbortSignal): Promise<void> {
    const h = this.app.health;
    const deadline = Date.now() + this.app.readyTimeout;
    const r = instance.record;
    let passes = 0;
    let last = 'no check answered yet';
    let everAnswered = false;
    for (;;) {
      if (signal?.aborted) throw signal.reason as Error;
      if (!instance.alive()) {
        const exit = await Promise.race([instance.exited, sleep(200).then(() => null)]);
        const how = exit
          ? exit.signal
            ? `was killed by ${exit.signal}`
            : exit.code === null
              ? 'exited (its exit code is not known on a remote host)'
              : `exited with code ${exit.code}`
          : 'exited';
        throw new BatonError(
          'BATON_E_DEPLOY_FAILED',
          `instance ${r.id} (pid ${r.pid}, port ${r.port}) ${how} before it was ready. Last log lines (${r.logFile}):\n${indent(instance.logTail())}`,
        );
      }
      const { failure, answered } = await probeTarget(origin(instance), h);
      if (failure === null) {
        if (++passes >= h.healthyThreshold) return;
      } else {
        passes = 0;
        last = failure;
        everAnswered ||= answered;
      }
      if (Date.now() > deadline) {
        const remote = !['127.0.0.1', '::1', 'localhost'].includes(r.host);
        const hint = everAnswered
          ? 'Check app.health.path.'
          : remote
            ? `Nothing answered on ${r.host}:${r.port} from here: the host may be down or cut off, or the app listens on 127.0.0.1 only (it must listen on an address the edges reach, e.g. 0.0.0.0).`
            : 'Check that the app listens on {port}.';
        throw new BatonError(
          'BATON_E_DEPLOY_FAILED',
          `instance ${r.id} (port ${r.port}) was not ready within readyTimeout ${this.app.readyTimeout}ms: ${last}. ` +
            `${hint} Last log lines (${r.logFile}):\n${indent(instance.logTail())}`,
        );
      }
      await sleep(h.interval);
    }
  }

  private async verify(instances: readonly Managed[], ms: number, signal: AbortSignal): Promise<void> {
    const h = this.app.health;
    const until = Date.now() + ms;
    const failures = new Map<Managed, number>();
    while (Date.now() < until) {
      if (signal.aborted) throw signal.reason as Error;
      for (const m of instances) {
        const r = m.instance.record;
        if (!m.instance.alive()) {
          throw new BatonError(
            'BATON_E_DEPLOY_FAILED',
            `instance ${r.id} exited after the switch. Last log lines:\n${indent(m.instance.logTail())}`,
          );
        }
        const failure = await probe(origin(m.instance), h);
        const n = failure === null ? 0 : (failures.get(m) ?? 0) + 1;
        failures.set(m, n);
        if (n >= h.unhealthyThreshold) {
          throw new BatonError(
            'BATON_E_DEPLOY_FAILED',
            `instance ${r.id} became unhealthy after the switch: ${failure}`,
          );
        }
      }
      await sleep(Math.min(h.interval, Math.max(10, until - Date.now())));
    }
  }

  /**
   * Stops them all at once. One that cannot be stopped (its host unreachable, the stop timed
   * out) does not fail the rest: it becomes an orphan, stopped when its host answers again.
   */
  private async stopAll(instances: readonly Managed[]): Promise<void> {
    const results = await Promise.allSettled(
      instances.map(async (m) => {
        m.stopping = true;
        const { forced } = await this.driver.stop(m.instance, {
          signal: this.app.stopSignal,
          timeoutMs: this.app.stopTimeout,
        });
        if (forced) {
          this.log.warn(
            { instance: m.instance.record.id },
            `ignored ${this.app.stopSignal} for stopTimeout; killed with SIGKILL`,
          );
        }
      }),
    );
    let added = false;
    for (const [i, r] of results.entries()) {
      if (r.status === 'fulfilled') continue;
      const instance = instances[i]!.instance;
      this.log.warn(
        { instance: instance.record.id, host: instance.record.host, error: reasonOf(r.reason) },
        `could not stop this instance; tried again every ${ORPHAN_RETRY_MS / 1000}s until it is gone`,
      );
      this.orphans.set(instance.record.id, instance);
      added = true;
    }
    if (added) {
      this.saveOrphans();
      this.scheduleOrphans();
    }
  }

  private saveOrphans(): void {
    this.state.orphans = [...this.orphans.values()].map((i) => i.record);
    this.save();
  }

  private scheduleOrphans(): void {
    if (this.closed || this.orphanTimer || this.orphans.size === 0) return;
    this.orphanTimer = setTimeout(() => {
      this.orphanTimer = null;
      void this.stopOrphans();
    }, ORPHAN_RETRY_MS);
    this.orphanTimer.unref();
  }

  private async stopOrphans(): Promise<void> {
    await Promise.all(
      [...this.orphans.values()].map(async (instance) => {
        const r = instance.record;
        try {
          await this.driver.stop(instance, { signal: this.app.stopSignal, timeoutMs: this.app.stopTimeout });
          this.orphans.delete(r.id);
          this.log.info(
            { instance: r.id, host: r.host },
            'stopped an instance its host had kept out of reach',
          );
        } catch (err) {
          if (err instanceof BatonError && err.code === 'BATON_E_NOT_FOUND') {
            // Its host left hosts: Baton can no longer reach it at all.
            this.orphans.delete(r.id);
            this.log.error({ instance: r.id, host: r.host, pid: r.pid }, `${reasonOf(err)}; no longer tried`);
          }
        }
      }),
    );
    if (this.closed) return;
    this.saveOrphans();
    this.scheduleOrphans();
  }

  /** Restarts a live instance that exits on its own, with backoff; reports a crash loop. */
  private supervise(m: Managed): void {
    void m.instance.exited.then((exit) => {
      if (m.stopping || this.closed || !this.live.includes(m)) return;
      const r = m.instance.record;
      this.log.error(
        { instance: r.id, code: exit.code, signal: exit.signal, log: m.instance.logTail(5) },
        'instance exited; out of rotation, restarting',
      );
      // Out of rotation at once; back in when its replacement is ready.
      this.live = this.live.filter((x) => x !== m);
      void this.routeLive();
      this.setLive(this.state.live?.version ?? r.version, this.live);
      void this.restart(m.slot, r.version);
    });
  }

  private async restart(slot: number, version: string): Promise<void> {
    for (;;) {
      const now = Date.now();
      const recent = (this.crashes.get(slot) ?? []).filter((t) => now - t < CRASH_LOOP.windowMs);
      recent.push(now);
      this.crashes.set(slot, recent);
      if (recent.length >= CRASH_LOOP.count && !this.crashLoops.has(slot)) {
        this.crashLoops.add(slot);
        this.log.error(
          { slot, version, crashes: recent.length },
          'instance is crash-looping; still retrying with backoff',
        );
      }
      await sleep(BACKOFF_MS[Math.min(recent.length - 1, BACKOFF_MS.length - 1)]!);
      // A deploy started meanwhile owns the instance set now.
      if (this.closed || this.running) return;
      try {
        const [fresh] = await this.startReady(1, version, this.live);
        if (this.closed || this.running) return void (await this.stopAll([fresh!]));
        const m: Managed = { ...fresh!, slot };
        this.live = [...this.live, m];
        await this.routeLive();
        this.setLive(version, this.live);
        this.supervise(m);
        if (this.crashLoops.delete(slot)) this.log.info({ slot }, 'instance recovered from its crash loop');
        return;
      } catch (err) {
        this.log.error({ slot, version, error: reasonOf(err) }, 'restart failed');
      }
    }
  }

  private async dropStandby(): Promise<void> {
    if (this.standbyTimer) clearTimeout(this.standbyTimer);
    this.standbyTimer = null;
    const old = this.standby;
    if (!old.length) return;
    this.standby = [];
    this.state.standby = null;
    this.save();
    await this.stopAll(old);
  }

  // --- routing and state -----------------------------------------------------------------------

  /** The live set into the route table, keeping a canary split (and its sides) in effect. */
  private async routeLive(): Promise<void> {
    try {
      await this.applyRoutes(this.live, this.split);
    } catch (err) {
      // Outside a deploy (recovery, a crashed instance replaced) there is nobody to report to:
      // the edge keeps its previous routes, the log says why.
      this.log.error({ error: reasonOf(err) }, `${this.edge.describe} refused the live routes`);
    }
  }

  private applyRoutes(
    instances: readonly Managed[],
    split: { readonly spec: SplitSpec; readonly canary: ReadonlySet<Managed> } | null,
  ): Promise<void> {
    return this.edge.apply(
      instances.map((m) => ({ ...routeOf(m, this.app.slowStart), canary: split?.canary.has(m) ?? false })),
      split?.spec ?? null,
    );
  }

  private liveVersion(): string | null {
    const versions = new Set(this.live.map((m) => m.instance.record.version));
    if (versions.size === 1) return [...versions][0]!;
    if (versions.size === 0) return this.state.live?.version ?? null;
    return this.running?.deployment.version ?? [...versions].at(-1)!;
  }

  /** The live release, in memory and (best effort: see save) on disk; the write's error, if any. */
  private setLive(version: string | null, instances: readonly Managed[]): BatonError | null {
    this.state.live = version === null ? null : { version, instances: records(instances) };
    return this.save();
  }

  /** Writes the state file; throws (BATON_E_STATE) when it cannot, and tries again later. */
  private persist(): void {
    const err = this.save();
    if (err) throw err;
  }

  /** persist() for a running deploy: throws only until it starts going back (see `unwinding`). */
  private persistStep(running: Running): void {
    try {
      this.persist();
    } catch (err) {
      if (running.unwinding) return;
      running.unwinding = true;
      throw err;
    }
  }

  /**
   * Writes the state file (and any history line still pending) and returns null, or the error:
   * a state file that cannot be written (a full disk) must not stop what is under way. The whole
   * state is written each time, so the next write that works (tried every STATE_RETRY_MS) brings
   * the file up to date; until then it holds the last state that could be written.
   */
  private save(): BatonError | null {
    this.flushHistory();
    try {
      this.store.save(this.state);
    } catch (err) {
      const e =
        err instanceof BatonError ? err : new BatonError('BATON_E_STATE', reasonOf(err), { cause: err });
      if (this.unsaved === null) {
        this.log.error(
          { error: e.message },
          `could not save the state; tried again every ${STATE_RETRY_MS / 1000}s`,
        );
      }
      this.unsaved = e.message;
      this.scheduleSave();
      return e;
    }
    if (this.unsaved !== null && this.pendingHistory.length === 0) {
      this.unsaved = null;
      this.log.info({ file: this.store.stateFile }, 'state saved again');
    }
    return null;
  }

  private scheduleSave(): void {
    if (this.closed || this.saveTimer) return;
    this.saveTimer = setTimeout(() => {
      this.saveTimer = null;
      this.save();
    }, STATE_RETRY_MS);
    this.saveTimer.unref();
  }

  /** Records a deploy in history; a line that cannot be written yet waits in memory, in order. */
  private appendHistory(entry: HistoryEntry): void {
    this.pendingHistory.push(entry);
    this.flushHistory();
  }

  private flushHistory(): void {
    while (this.pendingHistory.length) {
      try {
        this.store.append(this.pendingHistory[0]!);
      } catch (err) {
        if (this.unsaved === null) {
          this.log.error(
            { error: reasonOf(err) },
            `could not write to the history; tried again every ${STATE_RETRY_MS / 1000}s`,
          );
        }
        this.unsaved = reasonOf(err);
        this.scheduleSave();
        return;
      }
      this.pendingHistory.shift();
    }
  }

  private historyEntry(d: DeploymentState, result: DeployResult, reason: string | null): HistoryEntry {
    const end = Date.now();
    return {
      id: d.id,
      version: d.version,
      previousVersion: d.previousVersion,
      strategy: d.strategy,
      actor: d.actor,
      rollback: d.rollback,
      ...(d.forced ? { forced: true } : {}),
      startedAt: d.startedAt,
      endedAt: new Date(end).toISOString(),
      durationMs: end - Date.parse(d.startedAt),
      result,
      reason,
    };
  }

  // --- queries and shutdown --------------------------------------------------------------------

  async status(): Promise<unknown> {
    const views = new Map((await this.edge.view().catch(() => [])).map((v) => [v.id, v]));
    const d = this.running?.deployment ?? null;
    return {
      service: this.config.service,
      live: this.state.live && {
        version: this.state.live.version,
        instances: this.live.map((m) => {
          const r = m.instance.record;
          const v = views.get(targetIdOf(m.instance));
          return {
            id: r.id,
            slot: m.slot,
            version: r.version,
            host: r.host,
            port: r.port,
            pid: r.pid,
            alive: m.instance.alive(),
            health: v?.health ?? 'unknown',
            inflight: v?.inflight ?? 0,
            requests: v?.requests ?? 0,
            // Abandoned by their client: in no success or error count (null: the edge cannot tell).
            clientAborts: v?.clientAborts ?? null,
            crashLoop: this.crashLoops.has(m.slot),
          };
        }),
      },
      standby: this.state.standby,
      orphans: [...this.orphans.values()].map(({ record: r }) => ({
        id: r.id,
        version: r.version,
        host: r.host,
        port: r.port,
        pid: r.pid,
      })),
      deployment: d && {
        ...d,
        elapsedMs: Date.now() - Date.parse(d.startedAt),
        paused: this.running?.control.paused ?? false,
        canary: this.running?.canary ?? null,
      },
      lastRecovery: this.state.lastRecovery,
    };
  }

  /**
   * The last `lines` lines of each instance's log that `select` names (an instance id, a
   * version, or a host's address; none: the live instances), read where each runs. An instance
   * whose host cannot be reached gets its error instead of its text.
   */
  async logs(select: string | undefined, lines: number): Promise<InstanceLog[]> {
    const all = this.managed().map((i) => i.record);
    const chosen =
      select === undefined
        ? this.live.map((m) => m.instance.record)
        : all.filter(
            (r) =>
              r.id === select || r.version === select || r.host === select || r.id.includes(`-${select}-`),
          );
    if (chosen.length === 0) {
      throw new BatonError(
        'BATON_E_NOT_FOUND',
        select === undefined
          ? 'no instance is live'
          : `no instance matches "${select}" (give an instance id, a version or a host; running: ${all.map((r) => r.id).join(', ') || 'none'})`,
      );
    }
    return Promise.all(
      chosen.map(async (r) => {
        const base = { id: r.id, version: r.version, host: r.host, port: r.port, logFile: r.logFile };
        try {
          return { ...base, text: await this.driver.fetchLog(r, lines) };
        } catch (err) {
          return { ...base, text: '', error: messageOf(err) };
        }
      }),
    );
  }

  /** Newest first, the lines not written yet (a full disk) included. */
  history(limit = 50): HistoryEntry[] {
    return [...[...this.pendingHistory].reverse(), ...this.store.history(limit)].slice(0, limit);
  }

  /** The running deployment, to follow its progress. */
  current(): Running | null {
    return this.running;
  }

  /**
   * Daemon shutdown: abort a running deploy, then drain and stop every instance. A state file
   * that cannot be written then is thrown once all of that is done (the stop goes through).
   */
  async shutdown(): Promise<void> {
    this.running?.abort.abort(new DeployAborted('daemon shutdown'));
    await this.running?.done.catch(() => undefined);
    this.closed = true;
    if (this.standbyTimer) clearTimeout(this.standbyTimer);
    if (this.orphanTimer) clearTimeout(this.orphanTimer);
    if (this.saveTimer) clearTimeout(this.saveTimer);
    this.saveTimer = null;
    const all = [...this.live, ...this.standby];
    try {
      await this.edge.apply([], null);
      await this.edge.drain(
        all.map((m) => targetIdOf(m.instance)),
        this.app.drainTimeout,
      );
    } catch (err) {
      this.log.error({ error: reasonOf(err) }, `${this.edge.describe} refused to take the instances out`);
    }
    await this.stopAll(all);
    this.state.standby = null;
    const err = this.save();
    if (err) {
      throw new BatonError(
        'BATON_E_STATE',
        `the instances were stopped, but ${err.message}; ${this.pendingHistory.length ? `${this.pendingHistory.length} history line(s) are lost, and ` : ''}the next \`baton up\` starts from the state last saved`,
        { cause: err },
      );
    }
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
    return [...new Set([...this.managed(), ...this.orphans.values()])];
  }

  /** The instances it runs: live, standby and those a running deploy started, once each. */
  private managed(): Instance[] {
    return [
      ...new Set([...this.live, ...this.standby, ...(this.running?.started ?? [])].map((m) => m.instance)),
    ];
  }
}

/** The kept blue-green set takes all traffic back at once; the current set becomes the kept one. */
async function switchBack(ctx: DeployContext, to: readonly Managed[], keepOldMs: number): Promise<void> {
  const current = [...ctx.live()];
  ctx.step('switching', `switching back to ${ctx.version}, still running: no restart`);
  await ctx.route(to);
  ctx.step('draining', `draining ${current.length} instance(s) of ${ctx.previousVersion}`);
  await ctx.drain(current);
  if (current.length) ctx.keepStandby(current, keepOldMs);
}

function records(instances: readonly Managed[]): InstanceRecord[] {
  return instances.map((m) => m.instance.record);
}

function origin(i: Instance): string {
  return `http://${targetId(i.record)}`;
}

function targetIdOf(i: Instance): string {
  return targetId(i.record);
}

function routeOf(m: Managed, slowStartMs = 0): RouteSpec {
  const r = m.instance.record;
  return { host: r.host, port: r.port, weight: 1, version: r.version, slowStartMs };
}

/** Warm-up: `count` requests over `paths`, `concurrency` at a time, straight to the instance. */
async function warmUp(
  instance: Instance,
  w: NonNullable<NonNullable<BatonConfig['app']>['warmup']>,
  signal: AbortSignal,
): Promise<string> {
  const t0 = Date.now();
  let sent = 0;
  let ok = 0;
  const failures = new Map<string, number>();
  const worker = async (): Promise<void> => {
    while (sent < w.count && !signal.aborted) {
      const path = w.paths[sent++ % w.paths.length]!;
      try {
        const res = await request(origin(instance) + path, {
          headers: { 'user-agent': 'baton-warmup' },
          signal: AbortSignal.timeout(w.timeout),
        });
        await res.body.dump();
        if (res.statusCode < 500) ok++;
        else failures.set(`${res.statusCode}`, (failures.get(`${res.statusCode}`) ?? 0) + 1);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? (err as Error).name;
        failures.set(code, (failures.get(code) ?? 0) + 1);
      }
    }
  };
  await Promise.all(Array.from({ length: w.concurrency }, worker));
  const bad = [...failures].map(([k, n]) => `${n}x ${k}`).join(', ');
  return `warm-up of ${instance.record.id}: ${ok}/${sent} requests ok in ${Date.now() - t0}ms${bad ? ` (failed: ${bad})` : ''}`;
}

function defaultStrategy(type: StrategyType): StrategyConfig {
  if (type === 'blue-green') return { type, keepOld: 30_000, verify: 5000 };
  if (type === 'rolling') return { type, maxSurge: '25%', maxUnavailable: '25%', minReady: 0 };
  if (type === 'recreate') return { type };
  throw new BatonError(
    'BATON_E_BAD_REQUEST',
    `--strategy ${type} needs its steps in the config: set strategy.type: ${type} (with ${type === 'canary' ? 'steps' : 'match and duration'}) in baton.yaml`,
  );
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function indent(text: string): string {
  return text ? text.replace(/^/gm, '    ') : '    (no output)';
}

/**
 * Test hook for the crash-safety tests: BATON_TEST_CRASH_AT=<step> kills the daemon with
 * SIGKILL right after that step is persisted, as a power cut would.
 */
function crashHookForTests(step: DeployStep): void {
  if (process.env.BATON_TEST_CRASH_AT === step) process.kill(process.pid, 'SIGKILL');
}
