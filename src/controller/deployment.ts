// The deploy state machine: one deployment at a time (the deploy lock), persisted before it
// starts and before every step, run with its strategy (or the instant switch back), and ended
// on every path: a failure the strategy did not undo is settled here, the lock is released
// whatever happens, and the result goes to history. Also `baton promote` / `pause` / `abort` /
// `rollback`.
import { randomUUID } from 'node:crypto';
import type { BatonConfig, StrategyConfig } from '../config/schema.js';
import { checkVersion } from '../process/command.js';
import type { Edge } from '../edge/edge.js';
import { BatonError, causedBy, messageOf } from '../errors.js';
import type { Logger } from '../log.js';
import { switchBack } from '../strategies/blue-green.js';
import { defaultStrategy, STRATEGIES } from '../strategies/index.js';
import { DeployAborted, DeployFailure, startAlone, type Managed } from '../strategies/strategy.js';
import { deployContext } from './context.js';
import type { DeployExtension, DeployRequest, ProgressEvent } from './events.js';
import { records, targetIdOf, type Fleet } from './fleet.js';
import { historyEntry, STATE_RETRY_MS, type Persistence } from './persist.js';
import { ProofRecorder } from './proof.js';
import type { Plan, Running } from './running.js';
import type { DeploymentState, DeployResult, HistoryEntry } from './state.js';
import { andThen, thenSentence } from '../util/text.js';

/** What the deployments run on. */
export interface DeploymentsHost {
  /** The config in effect (a SIGHUP reload applies from the next deploy). */
  config(): BatonConfig;
  readonly edge: Edge;
  readonly log: Logger;
  readonly fleet: Fleet;
  readonly persist: Persistence;
}

export class Deployments {
  private running: Running | null = null;
  private readonly extensions: DeployExtension[] = [];
  private closed = false;

  constructor(private readonly host: DeploymentsHost) {}

  private get config(): BatonConfig {
    return this.host.config();
  }

  private get app(): NonNullable<BatonConfig['app']> {
    return this.config.app!;
  }

  private get fleet(): Fleet {
    return this.host.fleet;
  }

  private get persist(): Persistence {
    return this.host.persist;
  }

  private get log(): Logger {
    return this.host.log;
  }

  /** The running deployment, to follow its progress. */
  current(): Running | null {
    return this.running;
  }

  /** What holds the deploy lock without a deployment (a data plane upgrade), or null. */
  private held: string | null = null;

  /** Runs `work` with the deploy lock taken for `why`: deploys and rollbacks are refused meanwhile. */
  async whileHeld<T>(why: string, work: () => Promise<T>): Promise<T> {
    if (this.running) throw this.locked(this.running.deployment);
    if (this.held) throw this.heldError();
    this.held = why;
    try {
      return await work();
    } finally {
      this.held = null;
    }
  }

  private heldError(): BatonError {
    return new BatonError(
      'BATON_E_LOCKED',
      `${this.held ?? 'something'} holds the deploy lock: try again in a moment`,
    );
  }

  /** Adds an extension that runs around every deployment from now on. */
  use(extension: DeployExtension): void {
    this.extensions.push(extension);
  }

  /** Starts a deployment in the background; progress goes to `listen`, the result to `done`. */
  deploy(req: DeployRequest, plan?: Plan): Running {
    checkVersion(req.version);
    if (this.closed) throw new BatonError('BATON_E_CONFLICT', 'the daemon is shutting down');
    if (this.running) throw this.locked(this.running.deployment);
    if (this.held) throw this.heldError();
    for (const x of this.extensions) x.admit?.(req);
    const strategyType = req.strategy ?? this.config.strategy.type;
    const strategy: StrategyConfig =
      strategyType === this.config.strategy.type ? this.config.strategy : defaultStrategy(strategyType);
    const lacking = this.edgeLacks(strategy);
    if (lacking) throw new BatonError('BATON_E_CONFIG', lacking);
    const state = this.persist.state;
    const deployment: DeploymentState = {
      id: randomUUID().slice(0, 8),
      version: req.version,
      previousVersion: state.live?.version ?? null,
      strategy: strategyType,
      actor: req.actor || 'unknown',
      startedAt: new Date().toISOString(),
      rollback: req.rollback ?? false,
      forced: req.force ?? false,
      step: 'starting',
      detail: '',
      replacing: records(this.fleet.live),
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
    // way back never waits for the disk (its writes are tried again; see Persistence.save()).
    state.deployment = deployment;
    try {
      this.persist.persist();
    } catch (err) {
      if (req.rollback) {
        running.unwinding = true;
        running.unsavedAtStart = messageOf(err);
      } else {
        state.deployment = null;
        throw new BatonError(
          'BATON_E_STATE',
          thenSentence(
            `deploy of ${req.version} not started: ${messageOf(err)}`,
            `Nothing changed (${state.live ? `${state.live.version} still serves` : 'nothing was live'}); try again once it can be written, or \`baton rollback\`, which runs anyway.`,
          ),
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
        return historyEntry(deployment, 'failed', messageOf(err));
      })
      .then(finish);
    return running;
  }

  private async run(running: Running, plan: Plan): Promise<HistoryEntry> {
    const d = running.deployment;
    // Counted from here: the edge's counters now, and again once it ended (its proof).
    const proof = await ProofRecorder.start(this.host.edge, () => this.running === running);
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
    // Why it failed, for the exit code: an edge that refused a change is the edge's (exit 14).
    let code: ProgressEvent['code'];
    // What served when it started: a failure goes back to it while it still runs (settleFailure).
    const previous = [...this.fleet.live];
    try {
      const ctx = deployContext(running, emit, {
        config: this.config,
        edge: this.host.edge,
        fleet: this.fleet,
        persist: this.persist,
        extensions: this.extensions,
      });
      for (const x of this.extensions) await x.beforeStart?.(d, (message) => ctx.info(message));
      if (plan.kind === 'switch-back') {
        await switchBack(
          ctx,
          plan.to,
          this.config.strategy.type === 'blue-green'
            ? this.config.strategy.keepOld
            : defaultStrategy('blue-green').keepOld,
        );
      } else {
        // A new deploy supersedes the kept blue-green standby: stop it first.
        await this.fleet.dropStandby();
        if (this.fleet.live.length === 0) {
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
      reason = messageOf(err);
      code = causedBy(err, 'BATON_E_EDGE') ? 'BATON_E_EDGE' : 'BATON_E_DEPLOY_FAILED';
      const involved = [...previous, ...(plan.kind === 'switch-back' ? plan.to : [])];
      const back = await this.settleFailure(running, previous, involved).catch((e: unknown) => {
        this.log.error(
          { deployment: d.id, error: messageOf(e) },
          'could not clean up after the failed deploy',
        );
        return false;
      });
      if (back && result === 'failed') {
        result = 'rolled-back';
        reason = andThen(reason, `traffic switched back to ${d.previousVersion}`);
      }
      this.log.error({ deployment: d.id, reason }, `deploy ${result}`);
    }
    // From here on nothing throws: the lock is released whatever happens (a full disk).
    const verdicts = running.canary?.verdicts ?? [];
    const entry = historyEntry(d, result, reason, await proof.finish(running.events, verdicts, result));
    this.persist.state.deployment = null;
    const unsaved = this.fleet.setLive(this.fleet.liveVersion(), this.fleet.live);
    this.persist.appendHistory(entry);
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
    const live = this.persist.state.live;
    emit({
      kind: 'done',
      result,
      ...(code ? { code } : {}),
      entry,
      message:
        result === 'succeeded'
          ? `${d.version} is live (${entry.durationMs}ms)`
          : andThen(
              `deploy ${result}: ${reason}`,
              live ? `${live.version} is serving` : 'nothing is serving',
            ),
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
    const fleet = this.fleet;
    let back = false;
    const moved = fleet.live.length !== previous.length || fleet.live.some((m) => !previous.includes(m));
    if (moved && previous.length && previous.every((m) => !m.stopping && m.instance.alive())) {
      try {
        await fleet.applyRoutes(previous, null);
        fleet.split = null;
        fleet.live = [...previous];
        // It may be the standby already (kept, then a later step failed): live again instead.
        if (fleet.standby.some((m) => previous.includes(m))) fleet.forgetStandby();
        fleet.setLive(fleet.liveVersion(), fleet.live);
        back = true;
      } catch (err) {
        this.log.error(
          { error: messageOf(err) },
          `${this.host.edge.describe} refused to switch back; the new set serves`,
        );
      }
    }
    const kept = new Set([...fleet.live, ...fleet.standby]);
    const stray = (m: Managed): boolean => !kept.has(m) && !m.stopping;
    const strays = [...new Set([...running.started, ...involved])].filter(stray);
    // Once traffic moved, some may still be in the table (a blue-green backup, the set just
    // switched away from): out of it and drained first. Before, none was ever routed.
    if (strays.length && (moved || strays.some((m) => involved.includes(m)))) {
      await fleet.routeLive();
      await this.host.edge.drain(
        strays.map((m) => targetIdOf(m.instance)),
        this.app.drainTimeout,
      );
    }
    if (strays.length) await fleet.stopAll(strays);
    return back;
  }

  /** `baton promote [--full]`: the canary goes on to its next step (or, not `step`, to 100% now). */
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
    if (this.held) throw this.heldError();
    const target = to ?? this.previousRelease();
    if (!target)
      throw new BatonError(
        'BATON_E_NOT_FOUND',
        'nothing to roll back to: no earlier successful release in history',
      );
    if (
      to !== undefined &&
      !this.persist.history(10_000).some((h) => h.version === to && h.result === 'succeeded')
    ) {
      throw new BatonError('BATON_E_NOT_FOUND', `version ${to} was never live here; see \`baton history\``);
    }
    const standby = this.fleet.standby;
    if (
      standby.length &&
      standby[0]!.instance.record.version === target &&
      standby.every((m) => m.instance.alive())
    ) {
      return this.instantSwitchBack(target, actor);
    }
    return this.deploy({ version: target, actor, rollback: true });
  }

  /** Daemon shutdown: a running deploy is aborted (and awaited), and no other starts. */
  async close(): Promise<void> {
    this.running?.abort.abort(new DeployAborted('daemon shutdown'));
    await this.running?.done.catch(() => undefined);
    this.closed = true;
  }

  /** Why this edge cannot run the strategy (checked before anything starts), or null. */
  private edgeLacks(strategy: StrategyConfig): string | null {
    const edge = this.host.edge;
    const rules =
      strategy.type === 'ab' ||
      (strategy.type === 'canary' && strategy.steps.some((s) => 'setHeaderRoute' in s));
    if (rules && !edge.can.matchRules) {
      return `${edge.describe} cannot send requests to the new version by header, cookie or address (the ${strategy.type} strategy's match rules): use the built-in or nginx edge, or a canary with setWeight steps only`;
    }
    return null;
  }

  /** What the edge does differently from the config's wish (said at the start of the deploy). */
  private edgeNotes(strategy: StrategyConfig): string[] {
    const edge = this.host.edge;
    if (strategy.type !== 'canary') return [];
    const sticky = edge.can.sticky;
    if (sticky === 'any' || (sticky === 'named' && strategy.sticky !== 'baton')) return [];
    return [
      `${edge.describe} cannot keep a client on one side${sticky === 'named' ? " with Baton's own cookie (set strategy.sticky to a header or cookie of yours)" : ''}: the canary share is per request`,
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
    const back = [...this.fleet.standby];
    const running = this.deploy(
      { version, actor, rollback: true, strategy: 'blue-green' },
      { kind: 'switch-back', to: back },
    );
    // Only once it started (a deploy refused, by a full disk, keeps the standby as it was); the
    // deploy's first await comes after this, so it never sees the standby it takes back.
    this.fleet.forgetStandby();
    return running;
  }

  private previousRelease(): string | null {
    const live = this.persist.state.live?.version;
    for (const h of this.persist.history(10_000)) {
      if (h.result === 'succeeded' && h.version !== live) return h.version;
    }
    return null;
  }
}
