// The app's instances as the controller runs them: started and health-gated, watched after a
// switch, stopped (one that cannot be is an orphan, tried again), supervised (a crashed live
// instance is restarted with backoff; a crash loop is reported), and the live, standby and
// canary sets that go into the edge's route table. It sees the rest of the controller through
// FleetHost only.
import type { BatonConfig } from '../config/schema.js';
import type { Instance, InstanceDriver, InstanceRecord } from '../drivers/driver.js';
import { targetId, type Edge, type RouteSpec, type SplitSpec } from '../edge/edge.js';
import { BatonError, messageOf } from '../errors.js';
import type { Logger } from '../log.js';
import type { Managed } from '../strategies/strategy.js';
import { sleep } from '../util/sleep.js';
import { readyNow, verifyHealthy, waitAllReady } from './readiness.js';
import type { DeploymentState, ServiceState } from './state.js';
import { andThen } from '../util/text.js';

/** Restart backoff for crashed instances: 1s doubling to 30s; 5 crashes in a minute is a loop. */
const BACKOFF_MS = [1000, 2000, 4000, 8000, 16_000, 30_000];
const CRASH_LOOP = { count: 5, windowMs: 60_000 };
/** How often instances that could not be stopped (their host unreachable) are tried again. */
const ORPHAN_RETRY_MS = 5000;

/** What the fleet needs of the controller around it. */
export interface FleetHost {
  /** The config in effect (a SIGHUP reload applies from the next instance started). */
  config(): BatonConfig;
  /** The driver in effect (rebuilt on a SIGHUP reload). */
  driver(): InstanceDriver;
  readonly edge: Edge;
  readonly log: Logger;
  /** The state in memory, where the fleet writes the live release, the standby and the orphans. */
  readonly state: ServiceState;
  /** Writes the state file, best effort: the write's error, if any (see Persistence.save). */
  save(): BatonError | null;
  /** The deployment running now, or null. While one runs it owns the instance set. */
  deploying(): DeploymentState | null;
}

/** A deployment starting instances: its abort signal, and where each one started is recorded. */
export interface StartingDeploy {
  readonly signal: AbortSignal;
  /** Records (and persists) an instance it started; throwing stops those started so far. */
  started(record: InstanceRecord): void;
  /** A line saying how the wait for readiness goes (every READY_PROGRESS_MS, see readiness.ts). */
  progress(message: string): void;
}

/** A canary split and the instances on its canary side. */
export interface LiveSplit {
  readonly spec: SplitSpec;
  readonly canary: ReadonlySet<Managed>;
}

export class Fleet {
  /** The instances in the route table. */
  live: Managed[] = [];
  /** The replaced blue-green set, kept for an instant rollback. */
  private standbySet: Managed[] = [];
  private standbyTimer: NodeJS.Timeout | null = null;
  /** The canary split in effect (kept when a crashed instance is replaced), or null. */
  split: LiveSplit | null = null;
  private readonly crashes = new Map<number, number[]>();
  /** Slots whose instance is crash-looping. */
  readonly crashLoops = new Set<number>();
  /** Instances that should be gone but whose stop failed (see ServiceState.orphans), by id. */
  readonly orphans = new Map<string, Instance>();
  private orphanTimer: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(private readonly host: FleetHost) {}

  private get app(): NonNullable<BatonConfig['app']> {
    return this.host.config().app!;
  }

  private get driver(): InstanceDriver {
    return this.host.driver();
  }

  private get state(): ServiceState {
    return this.host.state;
  }

  private get log(): Logger {
    return this.host.log;
  }

  get standby(): readonly Managed[] {
    return this.standbySet;
  }

  /** Healthy now (recovery's check of an instance it adopts): see readiness.ts. */
  readyNow(instance: Instance): Promise<boolean> {
    return readyNow(instance, this.app);
  }

  /**
   * Starts `count` instances and waits until each is ready; on any failure stops them all. How
   * the wait goes is the deploy's progress, or (recovery, a restart) the daemon's log.
   */
  async startReady(
    count: number,
    version: string,
    beside: readonly Managed[],
    deploy?: StartingDeploy,
    onHosts?: readonly string[],
  ): Promise<Managed[]> {
    // Orphans still hold their ports.
    const others = [
      ...[...beside, ...this.standbySet, ...this.live].map((m) => m.instance.record),
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
        const instance = await this.driver.start({
          service: this.host.config().service,
          host,
          version,
          port,
          slot,
        });
        started.push({ instance, slot, stopping: false });
        deploy?.started(instance.record);
      }
      await waitAllReady(
        started.map((m) => m.instance),
        this.app,
        deploy ? (message) => deploy.progress(message) : (message) => this.log.info({ version }, message),
        deploy?.signal,
      );
      return started;
    } catch (err) {
      await this.stopAll(started);
      throw err;
    }
  }

  /** Watches the instances for `ms`: throws if one exits or fails its health checks. */
  verify(instances: readonly Managed[], ms: number, signal: AbortSignal): Promise<void> {
    return verifyHealthy(instances, this.app, ms, signal);
  }

  /**
   * Stops them all at once. One that cannot be stopped (its host unreachable, the stop timed
   * out) does not fail the rest: it becomes an orphan, stopped when its host answers again.
   */
  /** Instances already out of the routes: their requests in flight finish, then they stop. */
  async retire(instances: readonly Managed[]): Promise<void> {
    try {
      await this.host.edge.drain(
        instances.map((m) => targetIdOf(m.instance)),
        this.app.drainTimeout,
      );
    } catch (err) {
      this.log.warn({ error: messageOf(err) }, `${this.host.edge.describe} could not drain; stopping anyway`);
    }
    await this.stopAll(instances);
  }

  async stopAll(instances: readonly Managed[]): Promise<void> {
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
        { instance: instance.record.id, host: instance.record.host, error: messageOf(r.reason) },
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
    this.host.save();
  }

  /** Tries the orphans again in ORPHAN_RETRY_MS (when there are any, and no try is due yet). */
  scheduleOrphans(): void {
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
            this.log.error(
              { instance: r.id, host: r.host, pid: r.pid },
              andThen(messageOf(err), 'no longer tried'),
            );
          }
        }
      }),
    );
    if (this.closed) return;
    this.saveOrphans();
    this.scheduleOrphans();
  }

  /** Restarts a live instance that exits on its own, with backoff; reports a crash loop. */
  supervise(m: Managed): void {
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
      if (this.closed || this.host.deploying()) return;
      try {
        const [fresh] = await this.startReady(1, version, this.live);
        if (this.closed || this.host.deploying()) return void (await this.stopAll([fresh!]));
        const m: Managed = { ...fresh!, slot };
        this.live = [...this.live, m];
        await this.routeLive();
        this.setLive(version, this.live);
        this.supervise(m);
        if (this.crashLoops.delete(slot)) this.log.info({ slot }, 'instance recovered from its crash loop');
        return;
      } catch (err) {
        this.log.error({ slot, version, error: messageOf(err) }, 'restart failed');
      }
    }
  }

  // --- the kept blue-green set -----------------------------------------------------------------

  /** Keeps a replaced set running for `ms` (instant rollback), then stops it; when, as ISO time. */
  keepStandby(instances: readonly Managed[], ms: number): string {
    this.standbySet = [...instances];
    const stopAt = new Date(Date.now() + ms).toISOString();
    this.state.standby = {
      version: instances[0]!.instance.record.version,
      instances: records(instances),
      stopAt,
    };
    this.host.save();
    this.standbyTimer = setTimeout(() => void this.dropStandby(), ms);
    this.standbyTimer.unref();
    return stopAt;
  }

  /** The kept set is no longer kept (it serves again, or is taken back): nothing is stopped. */
  forgetStandby(): void {
    if (this.standbyTimer) clearTimeout(this.standbyTimer);
    this.standbyTimer = null;
    this.standbySet = [];
    this.state.standby = null;
  }

  /** Stops the kept set (its time is up, or a new deploy supersedes it). */
  async dropStandby(): Promise<void> {
    if (this.standbyTimer) clearTimeout(this.standbyTimer);
    this.standbyTimer = null;
    const old = this.standbySet;
    if (!old.length) return;
    this.standbySet = [];
    this.state.standby = null;
    this.host.save();
    await this.stopAll(old);
  }

  // --- routing and the live release --------------------------------------------------------------

  /** The live set into the route table, keeping a canary split (and its sides) in effect. */
  async routeLive(): Promise<void> {
    try {
      await this.applyRoutes(this.live, this.split);
    } catch (err) {
      // Outside a deploy (recovery, a crashed instance replaced) there is nobody to report to:
      // the edge keeps its previous routes, the log says why.
      this.log.error({ error: messageOf(err) }, `${this.host.edge.describe} refused the live routes`);
    }
  }

  applyRoutes(instances: readonly Managed[], split: LiveSplit | null): Promise<void> {
    return this.host.edge.apply(
      instances.map((m) => ({ ...routeOf(m, this.app), canary: split?.canary.has(m) ?? false })),
      split?.spec ?? null,
    );
  }

  liveVersion(): string | null {
    const versions = new Set(this.live.map((m) => m.instance.record.version));
    if (versions.size === 1) return [...versions][0]!;
    // No instance live (a first deploy stopped after its postSwitch failed, a recreate between
    // its stop and its start): no version is, whatever was recorded before.
    if (versions.size === 0) return null;
    return this.host.deploying()?.version ?? [...versions].at(-1)!;
  }

  /** The live release, in memory and (best effort: see save) on disk; the write's error, if any. */
  setLive(version: string | null, instances: readonly Managed[]): BatonError | null {
    this.state.live = version === null ? null : { version, instances: records(instances) };
    return this.host.save();
  }

  /** The instances it runs: live, standby and those `deploying` started, once each. */
  managed(deploying: readonly Managed[]): Instance[] {
    return [...new Set([...this.live, ...this.standbySet, ...deploying].map((m) => m.instance))];
  }

  /** Daemon shutdown: no restart, no retry of the orphans, no timed stop of the standby. */
  close(): void {
    this.closed = true;
    if (this.standbyTimer) clearTimeout(this.standbyTimer);
    if (this.orphanTimer) clearTimeout(this.orphanTimer);
  }
}

export function records(instances: readonly Managed[]): InstanceRecord[] {
  return instances.map((m) => m.instance.record);
}

export function targetIdOf(i: Instance): string {
  return targetId(i.record);
}

/** An instance as the edge routes it, with the app's slow start and passive health (app.maxFails...). */
export function routeOf(
  m: Managed,
  app: Pick<NonNullable<BatonConfig['app']>, 'slowStart' | 'maxFails' | 'failTimeout'>,
): RouteSpec {
  const r = m.instance.record;
  return {
    host: r.host,
    port: r.port,
    weight: 1,
    version: r.version,
    slowStartMs: app.slowStart,
    maxFails: app.maxFails,
    failTimeoutMs: app.failTimeout,
  };
}
