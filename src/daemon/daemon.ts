// `baton up`: the long-running process on a host. The edge (the built-in proxy, or the user's
// nginx / HAProxy driven through its files and sockets) and the admin API, and either a static
// `targets` list (a plain load balancer, built-in edge only) or the deploy controller running
// the app's instances (`app:`).
import type { BatonConfig, EdgeConfig } from '../config/schema.js';
import { AdminServer } from '../admin/server.js';
import { registerDeployRoutes } from '../admin/deploy-routes.js';
import { registerFreezeRoutes } from '../admin/freeze-routes.js';
import { registerEdgeRoutes } from '../admin/edge-routes.js';
import { registerMetricsRoute } from '../admin/metrics-route.js';
import { registerProxyRoutes } from '../admin/proxy-routes.js';
import { registerDashboard } from '../dashboard/routes.js';
import { formatAddress, parseListen, type ListenAddress } from '../config/address.js';
import { instanceBaseEnv } from '../config/secrets.js';
import { Controller } from '../controller/controller.js';
import { FreezeStore } from '../controller/freeze.js';
import { DeployMetrics } from '../controller/metrics.js';
import { DeployGate } from '../controller/gate.js';
import { StateStore } from '../controller/state.js';
import { Hooks } from '../hooks/extension.js';
import { Notifier } from '../notify/notifier.js';
import type { InstanceDriver } from '../drivers/driver.js';
import { LocalDriver } from '../drivers/local/local.js';
import { SshDriver } from '../drivers/ssh/ssh.js';
import { ProxyMetrics } from '../edge/builtin/metrics.js';
import { BuiltinEdge } from '../edge/builtin/edge.js';
import type { BuiltinProxy } from '../edge/builtin/proxy.js';
import { proxyFromConfig } from '../edge/builtin/from-config.js';
import { startAcme, type AcmeManager } from '../edge/builtin/acme/manager.js';
import { createEdge } from '../edge/create.js';
import type { Edge } from '../edge/edge.js';
import { MultiEdge } from '../edge/multi.js';
import { messageOf } from '../errors.js';
import type { Logger } from '../log.js';
import { loadRouteState, saveRouteState, seedOf } from '../state/routes.js';
import { VERSION } from '../version.js';
import { connectDataPlane, type ConnectedDataPlane } from '../dataplane/connect.js';
import { DataPlaneClient, registerDataPlaneForwards } from '../dataplane/forward.js';
import { DataPlaneWatchdog } from '../dataplane/watchdog.js';
import type { HandoverResult } from '../dataplane/upgrade.js';
import { BatonError } from '../errors.js';
import { PATHS } from '../api/paths.js';
import { sleep } from '../util/sleep.js';
import { keepingRunning, restartNeeded } from './reload.js';
import { clientUrl, routesFromConfig } from './targets.js';

export { routesFromConfig } from './targets.js';

export { restartNeeded } from './reload.js';
import { DATAPLANE_LOCK, lockHolder, takeDaemonLock } from '../state/lock.js';

/** This daemon's own proxy (a built-in edge with an admin address is another Baton's). */
function isLocalBuiltin(e: EdgeConfig): boolean {
  return e.type === 'builtin' && e.admin === undefined;
}

export interface DaemonOptions {
  /** Stop the instances and the data plane when this process stops (the behaviour before 0.2). */
  readonly stopOnExit?: boolean;
  /** A listening socket from systemd (socket activation) for the proxy. */
  readonly listenFd?: number;
  /** Called for `baton down` (POST /v1/down): the process should stop, everything with it. */
  readonly onDown?: () => void;
}

/** Instances on this machine, or on `hosts:` over SSH. */
export function driverFor(config: BatonConfig, log: Logger): InstanceDriver {
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

export class Daemon {
  /** The built-in proxy in this process (targets, edge-only); null: nginx / HAProxy / data plane. */
  readonly proxy: BuiltinProxy | null;
  edge: Edge;
  /** The built-in proxy's own process, when an app runs behind it (src/dataplane/). */
  private dataPlane: (ConnectedDataPlane & { client: DataPlaneClient }) | null = null;
  /** The local built-in proxy runs in the data plane process. */
  private readonly usesDataPlane: boolean;
  private readonly external: readonly Edge[];
  controller: Controller | null = null;
  /** Deploy windows and freezes (app mode). */
  gate: DeployGate | null = null;
  private hooks: Hooks | null = null;
  private notifier: Notifier | null = null;
  private deployMetrics: DeployMetrics | null = null;
  private admin: AdminServer | null = null;
  private releaseLock: (() => void) | null = null;
  private watchdog: DataPlaneWatchdog | null = null;
  /** tls.acme without an app: the ACME client of the proxy this process owns. */
  private acme: AcmeManager | null = null;
  private driver: InstanceDriver | null = null;
  private seed: string;

  private constructor(
    private config: BatonConfig,
    private readonly log: Logger,
    /** The nginx / HAProxy edges (none: the built-in proxy is the only edge). */
    external: readonly Edge[],
    private readonly options: DaemonOptions = {},
  ) {
    this.seed = seedOf(routesFromConfig(config.targets));
    this.external = external;
    const edges = config.edges ?? [config.edge];
    this.usesDataPlane = Boolean(config.app) && edges.some(isLocalBuiltin);
    if (!edges.some(isLocalBuiltin) || this.usesDataPlane) {
      this.proxy = null;
      // The data plane's edge joins them at boot, once it is found or started.
      this.edge = external.length > 1 ? new MultiEdge(external) : external[0]!;
      return;
    }
    this.proxy = proxyFromConfig(config, log, config.app ? undefined : () => this.persist());
    const builtin = new BuiltinEdge(this.proxy);
    this.edge = external.length ? new MultiEdge([builtin, ...external]) : builtin;
  }

  static async start(config: BatonConfig, log: Logger, options: DaemonOptions = {}): Promise<Daemon> {
    const external = await Promise.all(
      (config.edges ?? [config.edge])
        .filter((e) => !isLocalBuiltin(e))
        .map((e) => createEdge(e, config, log)),
    );
    const d = new Daemon(config, log, external, options);
    try {
      await d.boot();
    } catch (err) {
      // The boot's error is the one to report, not a stop's that follows from it.
      await d.stop({ everything: false, timeoutMs: 0 }).catch(() => undefined);
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
    if (this.usesDataPlane) {
      // Found running (this is a restart: it served on meanwhile) or started now, detached.
      const dp = await connectDataPlane(
        config,
        log,
        this.options.listenFd !== undefined ? { listenFd: this.options.listenFd } : {},
      );
      this.dataPlane = { ...dp, client: new DataPlaneClient(dp.paths) };
      this.edge = this.external.length ? new MultiEdge([dp.edge, ...this.external]) : dp.edge;
      // From now on: one that dies during the recovery below is started again too.
      this.watchdog = new DataPlaneWatchdog(
        config,
        log,
        {
          paths: dp.paths,
          edge: dp.edge,
          health: () => this.dataPlane!.health,
          replaced: (health) => (this.dataPlane = { ...this.dataPlane!, health }),
        },
        this.options.listenFd !== undefined ? { listenFd: this.options.listenFd } : {},
      );
    }
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
      this.deployMetrics = new DeployMetrics(config.service, this.controller);
      this.controller.use(this.deployMetrics);
    } else await this.restoreStaticRoutes(this.proxy!);
    if (this.proxy) {
      const bound = await this.proxy.listen(
        this.options.listenFd !== undefined ? { fd: this.options.listenFd } : undefined,
      );
      log.info({ listen: formatAddress(bound), service: config.service }, 'proxy listening');
      this.acme = startAcme(config, this.proxy, log);
    } else if (this.dataPlane) {
      const { health, adopted } = this.dataPlane;
      log.info(
        { listen: health.listen, service: config.service, dataPlane: health.pid, adopted },
        'proxy listening',
      );
    } else log.info({ edge: this.edge.describe, service: config.service }, 'edge ready');
    if (this.controller) {
      const controller = this.controller;
      recovered = controller.recover().catch((err: unknown) => {
        log.error({ err }, 'could not restore the live release');
      });
    }
    if (this.admin) {
      if (this.proxy) {
        registerProxyRoutes(this.admin, this.proxy, null, config.proxy.drainTimeout);
        // Edge-only: another Baton routes this proxy (src/edge/remote.ts).
        if (this.edgeOnly) registerEdgeRoutes(this.admin, this.proxy);
      }
      if (this.dataPlane) {
        registerDataPlaneForwards(this.admin, this.dataPlane.client);
      }
      // On every edge: the deploys' families, the proxy's (here or fetched from the data
      // plane), and this process's, once.
      const deployMetrics = this.deployMetrics;
      const proxyMetrics = this.proxy && new ProxyMetrics(this.proxy, config.service);
      registerMetricsRoute(
        this.admin,
        [
          ...(deployMetrics ? [() => deployMetrics.render()] : []),
          ...(proxyMetrics ? [() => proxyMetrics.render()] : []),
          ...(this.dataPlane ? [() => this.dataPlane!.client.metrics()] : []),
        ],
        { processMetrics: true },
      );
      if (this.controller) {
        this.admin.route('POST', PATHS.down, () => {
          if (!this.options.onDown) {
            throw new BatonError('BATON_E_CONFLICT', 'this daemon cannot be stopped from the admin API');
          }
          // Answered first: the stop closes this API. The CLI then waits for the processes to go.
          setImmediate(this.options.onDown);
          return {
            json: {
              stopping: true,
              controller: process.pid,
              dataPlane: this.dataPlane?.health.pid ?? null,
              instances: this.controller!.instances().map((i) => i.record.id),
            },
          };
        });
        this.admin.route<HandoverResult>('POST', PATHS.upgrade, async () => ({ json: await this.upgrade() }));
      }
      this.admin.route('GET', '/v1/health', () => ({
        json: {
          ok: true,
          service: config.service,
          version: VERSION,
          mode: config.app ? 'app' : this.edgeOnly ? 'edge' : 'targets',
          edge: this.edge.kind,
          // The bound address (the config may say port 0); nginx / HAProxy own theirs.
          listen: this.proxy ? formatAddress(this.proxy.address()) : (this.dataPlane?.health.listen ?? null),
          url: clientUrl(this.config, this.proxy?.address() ?? this.dataPlaneAddress()),
        },
      }));
      // Status answers at once; deploys wait until the live release is restored.
      if (this.controller) registerDeployRoutes(this.admin, this.controller, recovered);
      if (this.controller) {
        registerDashboard(this.admin, this.controller, {
          config: () => this.config,
          edge: () => this.edge,
          freeze: () => this.gate?.state() ?? null,
        });
      }
      if (this.gate) registerFreezeRoutes(this.admin, this.gate, log);
      const adminBound = await this.admin.listen();
      log.info({ admin: formatAddress(adminBound) }, 'admin API listening');
    }
    await recovered;
  }

  /** Asks the data plane to stop and waits for its process to end (its drain, then a margin). */
  private async stopDataPlane(): Promise<void> {
    const dp = this.dataPlane!;
    await dp.client.stop();
    const deadline = Date.now() + this.config.proxy.drainTimeout + 5000;
    while (lockHolder(this.config.stateDirPath, DATAPLANE_LOCK) !== null) {
      if (Date.now() > deadline) {
        throw new BatonError(
          'BATON_E_EDGE',
          `the data plane (pid ${dp.health.pid}) was asked to stop but still runs; see ${dp.paths.log}`,
        );
      }
      await sleep(50);
    }
    this.log.info({ pid: dp.health.pid }, 'data plane stopped');
  }

  private dataPlaneAddress(): ListenAddress | undefined {
    const listen = this.dataPlane?.health.listen;
    return listen ? parseListen(listen) : undefined;
  }

  /**
   * `baton upgrade`: the data plane hands its listener over to a new one started from the
   * Baton installed now (src/dataplane/upgrade.ts). Refused while a deploy runs: its route
   * changes must reach the data plane that serves.
   */
  async upgrade(): Promise<HandoverResult> {
    if (!this.dataPlane) {
      throw new BatonError(
        'BATON_E_CONFLICT',
        `nothing to upgrade: ${this.edge.describe} is not Baton's data plane. To run a new Baton controller, restart baton up (systemctl restart baton): the instances and the edge keep serving.`,
      );
    }
    const running = this.controller?.current();
    if (running) {
      throw new BatonError(
        'BATON_E_LOCKED',
        `a deploy of ${running.deployment.version} is running: upgrade once it is done (baton follow)`,
      );
    }
    const result = await this.controller!.whileLocked(() => this.dataPlane!.client.upgrade());
    // The kept-alive connections went to the old process.
    await this.dataPlane.edge.reconnect();
    this.dataPlane = {
      ...this.dataPlane,
      health: { ...this.dataPlane.health, pid: result.to.pid, version: result.to.version },
    };
    this.log.info(result, 'data plane upgraded');
    return result;
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

  /** SIGHUP: tls:'s certificate files are read again, by the proxy here or the data plane. */
  async reloadCertificates(): Promise<void> {
    if (!this.config.tls) return;
    if (this.proxy) this.proxy.front.certificates?.reload('SIGHUP');
    else if (this.dataPlane) await this.dataPlane.client.reloadCertificates();
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
        `config changes NOT applied: ${unapplied.join(', ')} need a restart of baton up; running on the old values for them${
          this.usesDataPlane
            ? ' (the data plane reads proxy.*, balance and the health check when it starts: apply them with baton upgrade; a new listen: needs baton down and baton up)'
            : ''
        }`,
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
   * Stops this process, each part even when one before it failed (a state file the full disk
   * refuses): the lock is released and the listeners closed, so the process ends; the first
   * error is thrown after that. The instances and the data plane keep running, and nginx /
   * HAProxy keep their routes, unless `everything` (`baton down`, `--stop-on-exit`).
   */
  async stop({
    everything = this.options.stopOnExit ?? false,
    timeoutMs = this.config.proxy.drainTimeout,
  }: { everything?: boolean; timeoutMs?: number } = {}): Promise<void> {
    const errors: unknown[] = [];
    const attempt = async (what: string, part: () => unknown): Promise<void> => {
      try {
        await part();
      } catch (err) {
        errors.push(err);
        this.log.error({ error: messageOf(err) }, `stopping ${what} failed`);
      }
    };
    this.watchdog?.stop();
    // A running hook is killed: shutdown does not wait for its timeout.
    await attempt('hooks', () => this.hooks?.close());
    if (everything) await attempt('the instances', () => this.controller?.shutdown());
    else await attempt('the controller', () => this.controller?.detach());
    await attempt('the instance driver', () => this.driver?.close?.());
    // The last notifications (the aborted deploy's result) get a moment to go out.
    await attempt('notifications', () => this.notifier?.close());
    await attempt('the admin API', () => this.admin?.close());
    await attempt('the edge', () => this.edge.close());
    this.acme?.stop();
    await attempt('the proxy', () => this.proxy?.close(timeoutMs));
    if (everything && this.dataPlane) await attempt('the data plane', () => this.stopDataPlane());
    await this.dataPlane?.client.close().catch(() => undefined);
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
