// `baton up`: the long-running process on a host. The edge (the built-in proxy, or the user's
// nginx / HAProxy driven through its files and sockets) and the admin API, and either a static
// `targets` list (a plain load balancer, built-in edge only) or the deploy controller running
// the app's instances (`app:`).
import type { BatonConfig, EdgeConfig, TargetConfig } from '../config/schema.js';
import { AdminServer } from '../admin/server.js';
import { registerDeployRoutes } from '../admin/deploy-routes.js';
import { registerFreezeRoutes } from '../admin/freeze-routes.js';
import { registerEdgeRoutes } from '../admin/edge-routes.js';
import { registerProxyRoutes } from '../admin/proxy-routes.js';
import { formatAddress, type ListenAddress } from '../config/address.js';
import { instanceBaseEnv } from '../config/secrets.js';
import { Controller } from '../controller/controller.js';
import { FreezeStore } from '../controller/freeze.js';
import { DeployGate } from '../controller/gate.js';
import { StateStore } from '../controller/state.js';
import { Hooks } from '../hooks/extension.js';
import { Notifier } from '../notify/notifier.js';
import type { InstanceDriver } from '../drivers/driver.js';
import { LocalDriver } from '../drivers/local/local.js';
import { SshDriver } from '../drivers/ssh/ssh.js';
import { ProxyMetrics } from '../edge/builtin/metrics.js';
import { BuiltinEdge } from '../edge/builtin/edge.js';
import { BuiltinProxy } from '../edge/builtin/proxy.js';
import { createEdge } from '../edge/create.js';
import type { Edge, RouteSpec } from '../edge/edge.js';
import { MultiEdge } from '../edge/multi.js';
import { messageOf } from '../errors.js';
import { createAccessLog, type Logger } from '../log.js';
import { loadRouteState, saveRouteState, seedOf } from '../state/routes.js';
import { VERSION } from '../version.js';
import { takeDaemonLock } from './lock.js';

export function routesFromConfig(targets: readonly TargetConfig[] | undefined): RouteSpec[] {
  return (targets ?? []).map((t) => ({
    host: t.address.host,
    port: t.address.port,
    weight: t.weight,
    backup: t.backup,
    version: t.version ?? '',
    maxFails: t.maxFails,
    failTimeoutMs: t.failTimeout,
    ...(t.slowStart !== undefined ? { slowStartMs: t.slowStart } : {}),
  }));
}

/** This daemon's own proxy (a built-in edge with an admin address is another Baton's). */
function isLocalBuiltin(e: EdgeConfig): boolean {
  return e.type === 'builtin' && e.admin === undefined;
}

/** Instances on this machine, or on `hosts:` over SSH. */
function driverFor(config: BatonConfig, log: Logger): InstanceDriver {
  const app = config.app!;
  // Instances never see Baton's secrets (the admin token, tokenEnv, notify's variables).
  if (!config.hosts)
    return new LocalDriver(app, config.baseDir, config.stateDirPath, instanceBaseEnv(config));
  return new SshDriver(app, config.hosts, {
    service: config.service,
    stateDir: config.stateDirPath,
    log,
    sshOptions: config.ssh.options,
    connectTimeoutMs: config.ssh.connectTimeout,
    env: instanceBaseEnv(config),
    ...(config.ssh.remoteDir ? { remoteDir: config.ssh.remoteDir } : {}),
  });
}

/**
 * Where clients send requests (GET /v1/health): the first edge's `url:`, else the built-in proxy's
 * bound address, a wildcard one reached on loopback; null when nginx / HAProxy have no `url:`.
 */
function clientUrl(config: BatonConfig, proxy: BuiltinProxy | null): string | null {
  const configured = (config.edges ?? [config.edge]).find((e) => e.url !== undefined)?.url;
  if (configured !== undefined) return configured;
  const a: ListenAddress | undefined = proxy?.address();
  if (a?.kind !== 'tcp') return null;
  const host = a.host === '0.0.0.0' ? '127.0.0.1' : a.host === '::' ? '::1' : a.host;
  return `http://${host.includes(':') ? `[${host}]` : host}:${a.port}/`;
}

/**
 * Keys a SIGHUP cannot apply: the listeners, the edges and their connections, the proxy built
 * from them, and where state lives are set up once at start. Everything else (app, strategy,
 * hosts, ssh, targets, windows, hooks, notify, adminHosts) is read anew.
 */
const RESTART_KEYS = [
  'service',
  'listen',
  'admin',
  'edge',
  'edges',
  'proxy',
  'balance',
  'healthCheck',
  'stateDir',
] as const;

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** The keys of RESTART_KEYS that differ (`proxy.clientHeaderTimeout` for a section's key). */
export function restartNeeded(old: BatonConfig, next: BatonConfig): string[] {
  const changed: string[] = [];
  for (const key of RESTART_KEYS) {
    const a: unknown = key === 'stateDir' ? old.stateDirPath : old[key];
    const b: unknown = key === 'stateDir' ? next.stateDirPath : next[key];
    if (JSON.stringify(a) === JSON.stringify(b)) continue;
    // Sections are named by their changed keys; an address (listen, admin) as a whole.
    if (key === 'listen' || key === 'admin' || !isObject(a) || !isObject(b)) {
      changed.push(key);
      continue;
    }
    for (const sub of new Set([...Object.keys(a), ...Object.keys(b)]))
      if (JSON.stringify(a[sub]) !== JSON.stringify(b[sub])) changed.push(`${key}.${sub}`);
  }
  return changed;
}

/** `next`, with the running values of the keys a restart would be needed for. */
function keepingRunning(old: BatonConfig, next: BatonConfig): BatonConfig {
  const kept: Record<string, unknown> = { stateDirPath: old.stateDirPath };
  for (const key of RESTART_KEYS) kept[key] = old[key];
  return Object.freeze({ ...next, ...kept });
}

export class Daemon {
  /** The built-in proxy; null when nginx or HAProxy is the edge. */
  readonly proxy: BuiltinProxy | null;
  readonly edge: Edge;
  controller: Controller | null = null;
  /** Deploy windows and freezes (app mode). */
  gate: DeployGate | null = null;
  private hooks: Hooks | null = null;
  private notifier: Notifier | null = null;
  private admin: AdminServer | null = null;
  private releaseLock: (() => void) | null = null;
  private driver: InstanceDriver | null = null;
  private seed: string;

  private constructor(
    private config: BatonConfig,
    private readonly log: Logger,
    /** The nginx / HAProxy edges (none: the built-in proxy is the only edge). */
    external: readonly Edge[],
  ) {
    this.seed = seedOf(routesFromConfig(config.targets));
    const edges = config.edges ?? [config.edge];
    if (!edges.some(isLocalBuiltin)) {
      this.proxy = null;
      this.edge = external.length > 1 ? new MultiEdge(external) : external[0]!;
      return;
    }
    const accessLog = config.proxy.accessLog === 'off' ? null : createAccessLog(config.proxy.accessLog);
    this.proxy = new BuiltinProxy({
      listen: config.listen!,
      proxy: config.proxy,
      balance: config.balance,
      // Managed instances are health-checked in rotation with the app's own check.
      healthCheck: config.app ? config.app.health : config.healthCheck,
      log,
      accessLog,
      onChange: config.app ? undefined : () => this.persist(),
    });
    const builtin = new BuiltinEdge(this.proxy);
    this.edge = external.length ? new MultiEdge([builtin, ...external]) : builtin;
  }

  static async start(config: BatonConfig, log: Logger): Promise<Daemon> {
    const external = await Promise.all(
      (config.edges ?? [config.edge])
        .filter((e) => !isLocalBuiltin(e))
        .map((e) => createEdge(e, config, log)),
    );
    const d = new Daemon(config, log, external);
    try {
      await d.boot();
    } catch (err) {
      // The boot's error is the one to report, not a stop's that follows from it.
      await d.stop(0).catch(() => undefined);
      throw err;
    }
    return d;
  }

  private async boot(): Promise<void> {
    const { config, log } = this;
    // First: an admin address that needs a token and has none refuses the start before any
    // port is opened or state is written.
    if (config.admin)
      this.admin = new AdminServer(config.admin, log, { hosts: () => this.config.adminHosts });
    this.releaseLock = takeDaemonLock(config.stateDirPath, config.file, log);
    let recovered: Promise<void> = Promise.resolve();
    // nginx missing, a socket absent: refused before any instance starts.
    await this.edge.start();
    if (config.app) {
      const driver = driverFor(config, log);
      this.driver = driver;
      this.controller = new Controller(config, this.edge, driver, new StateStore(config.stateDirPath), log);
      // Reads the config at every deploy: windows reloaded with SIGHUP apply to the next one.
      this.gate = new DeployGate(() => this.config.windows, new FreezeStore(config.stateDirPath), log);
      this.controller.use(this.gate);
      // Hooks and notifications read the config at every deploy too (SIGHUP applies).
      this.hooks = new Hooks(() => this.config, log);
      this.controller.use(this.hooks);
      this.notifier = new Notifier(() => this.config, log);
      this.controller.use(this.notifier);
    } else await this.restoreStaticRoutes(this.proxy!);
    if (this.proxy) {
      const bound = await this.proxy.listen();
      log.info({ listen: formatAddress(bound), service: config.service }, 'proxy listening');
    } else log.info({ edge: this.edge.describe, service: config.service }, 'edge ready');
    if (this.controller) {
      const controller = this.controller;
      recovered = controller.recover().catch((err: unknown) => {
        log.error({ err }, 'could not restore the live release');
      });
    }
    if (this.admin) {
      if (this.proxy) {
        registerProxyRoutes(
          this.admin,
          this.proxy,
          new ProxyMetrics(this.proxy, config.service),
          config.proxy.drainTimeout,
        );
        // Edge-only: another Baton routes this proxy (src/edge/remote.ts).
        if (this.edgeOnly) registerEdgeRoutes(this.admin, this.proxy);
      }
      this.admin.route('GET', '/v1/health', () => ({
        json: {
          ok: true,
          service: config.service,
          version: VERSION,
          mode: config.app ? 'app' : this.edgeOnly ? 'edge' : 'targets',
          edge: this.edge.kind,
          // The bound address (the config may say port 0); nginx / HAProxy own theirs.
          listen: this.proxy ? formatAddress(this.proxy.address()) : null,
          url: clientUrl(this.config, this.proxy),
        },
      }));
      // Status answers at once; deploys wait until the live release is restored.
      if (this.controller) registerDeployRoutes(this.admin, this.controller, recovered);
      if (this.gate) registerFreezeRoutes(this.admin, this.gate, log);
      const adminBound = await this.admin.listen();
      log.info({ admin: formatAddress(adminBound) }, 'admin API listening');
    }
    await recovered;
  }

  /** No app and no targets list: an edge that another Baton drives through the admin API. */
  private get edgeOnly(): boolean {
    return !this.config.app && this.config.targets === undefined;
  }

  private async restoreStaticRoutes(proxy: BuiltinProxy): Promise<void> {
    const { config, log } = this;
    const state = loadRouteState(config.stateDirPath);
    if (state && state.seed === this.seed) {
      // Same config as when the state was saved: come back exactly as we were.
      proxy.setRoutes([...state.routes, ...state.drained]);
      if (state.drained.length) {
        const drained = proxy.setRoutes(state.routes).removed;
        await proxy.drainTargets(drained, 0);
      }
      log.info(
        { targets: state.routes.length, drained: state.drained.length },
        'routing restored from state',
      );
    } else {
      if (state) log.info('config targets changed since the last run; routing from the config');
      proxy.setRoutes(routesFromConfig(config.targets));
    }
  }

  /**
   * SIGHUP. Static mode: apply a changed `targets` list. App mode: the new app settings and
   * strategy apply from the next deploy. The keys of RESTART_KEYS (listeners, edges, proxy,
   * state folder) keep their running values, with a warning naming the ones that changed.
   */
  async reload(changed: BatonConfig): Promise<void> {
    const unapplied = restartNeeded(this.config, changed);
    if (unapplied.length) {
      this.log.warn(
        { notApplied: unapplied },
        `config changes NOT applied: ${unapplied.join(', ')} need a restart of baton up; running on the old values for them`,
      );
    }
    const next = unapplied.length ? keepingRunning(this.config, changed) : changed;
    if (this.controller) {
      if (!next.app) {
        this.log.error('reload refused: the new config has no app section; keeping the running config');
        return;
      }
      if (Boolean(this.config.hosts) !== Boolean(next.hosts)) {
        this.log.error(
          `reload refused: ${next.hosts ? 'hosts: was added' : 'hosts: was removed'}; moving instances between this machine and hosts needs a restart of baton up`,
        );
        return;
      }
      if (next.hosts) {
        // A new SSH driver for the new hosts, ssh options and app settings; it watches the
        // running instances from now on (each knows its host, even one no longer listed, so
        // the next deploy still stops it there), and the old one lets go of them.
        let ssh: InstanceDriver;
        try {
          ssh = driverFor(next, this.log);
        } catch (err) {
          this.log.error({ error: messageOf(err) }, 'config reload refused; keeping the running config');
          return;
        }
        const old = this.driver;
        if (ssh instanceof SshDriver) for (const i of this.controller.instances()) ssh.watch(i);
        this.driver = ssh;
        this.config = next;
        this.controller.reload(next, ssh);
        await old?.close?.();
        this.log.info(
          { hosts: next.hosts.map((h) => h.name) },
          'config reloaded; app, hosts and ssh settings apply from the next deploy',
        );
        return;
      }
      let driver: LocalDriver;
      try {
        // A command that cannot be split (an operator, an open quote) is refused here, not at
        // the next deploy.
        driver = new LocalDriver(next.app, next.baseDir, next.stateDirPath, instanceBaseEnv(next));
      } catch (err) {
        this.log.error({ error: messageOf(err) }, 'config reload refused; keeping the running config');
        return;
      }
      this.config = next;
      this.controller.reload(next, driver);
      this.log.info('config reloaded; app settings apply from the next deploy');
      return;
    }
    const routes = routesFromConfig(next.targets);
    const seed = seedOf(routes);
    this.config = next;
    if (seed === this.seed) {
      this.log.info('config reloaded; targets unchanged');
      return;
    }
    this.seed = seed;
    const proxy = this.proxy!; // targets mode runs the built-in edge only (the schema says so)
    const { added, removed } = proxy.setRoutes(routes);
    this.log.info(
      { added: added.map((t) => t.spec.id), removed: removed.map((t) => t.spec.id) },
      'targets reloaded',
    );
    const results = await proxy.drainTargets(removed);
    for (const r of results)
      if (!r.drained) this.log.warn(r, 'target left rotation with requests still in flight');
  }

  /**
   * Stops everything, each part even when one before it failed (a state file the full disk
   * refuses): the lock is released and the listeners closed, so the process ends; the first
   * error is thrown after that.
   */
  async stop(timeoutMs = this.config.proxy.drainTimeout): Promise<void> {
    const errors: unknown[] = [];
    const attempt = async (what: string, part: () => unknown): Promise<void> => {
      try {
        await part();
      } catch (err) {
        errors.push(err);
        this.log.error({ error: messageOf(err) }, `stopping ${what} failed`);
      }
    };
    // A running hook is killed: shutdown does not wait for its timeout.
    await attempt('hooks', () => this.hooks?.close());
    await attempt('the instances', () => this.controller?.shutdown());
    await attempt('the instance driver', () => this.driver?.close?.());
    // The last notifications (the aborted deploy's result) get a moment to go out.
    await attempt('notifications', () => this.notifier?.close());
    await attempt('the admin API', () => this.admin?.close());
    await attempt('the edge', () => this.edge.close());
    await attempt('the proxy', () => this.proxy?.close(timeoutMs));
    this.releaseLock?.();
    if (errors.length) throw errors[0];
  }

  private persist(): void {
    try {
      saveRouteState(this.config.stateDirPath, {
        seed: this.seed,
        routes: this.proxy!.currentRoutes(),
        drained: this.proxy!.drainedRoutes(),
      });
    } catch (err) {
      this.log.error({ err }, 'could not save routing state');
    }
  }
}
