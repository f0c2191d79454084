// `baton up`: the long-running process on a host. For now it runs the built-in proxy over the
// config's static `targets` list with its admin API; the deploy controller plugs in here.
import type { BatonConfig, TargetConfig } from '../config/schema.js';
import { AdminServer } from '../admin/server.js';
import { registerProxyRoutes } from '../admin/proxy-routes.js';
import { formatAddress } from '../config/address.js';
import { ProxyMetrics } from '../edge/builtin/metrics.js';
import { BuiltinProxy, type RouteSpec } from '../edge/builtin/proxy.js';
import { createAccessLog, type Logger } from '../log.js';
import { loadRouteState, saveRouteState, seedOf } from '../state/routes.js';
import { VERSION } from '../version.js';

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

export class Daemon {
  readonly proxy: BuiltinProxy;
  private admin: AdminServer | null = null;
  private seed: string;

  private constructor(
    private config: BatonConfig,
    private readonly log: Logger,
  ) {
    this.seed = seedOf(routesFromConfig(config.targets));
    const accessLog = config.proxy.accessLog === 'off' ? null : createAccessLog(config.proxy.accessLog);
    this.proxy = new BuiltinProxy({
      listen: config.listen,
      proxy: config.proxy,
      balance: config.balance,
      healthCheck: config.healthCheck,
      log,
      accessLog,
      onChange: () => this.persist(),
    });
  }

  static async start(config: BatonConfig, log: Logger): Promise<Daemon> {
    const d = new Daemon(config, log);
    try {
      await d.boot();
    } catch (err) {
      await d.stop(0);
      throw err;
    }
    return d;
  }

  private async boot(): Promise<void> {
    const { config, log } = this;
    // First: an admin address that needs a token and has none refuses the start before any
    // port is opened or state is written.
    if (config.admin) this.admin = new AdminServer(config.admin, log);
    const state = loadRouteState(config.stateDirPath);
    const fromConfig = routesFromConfig(config.targets);
    if (state && state.seed === this.seed) {
      // Same config as when the state was saved: come back exactly as we were.
      this.proxy.setRoutes([...state.routes, ...state.drained]);
      if (state.drained.length) {
        const drained = this.proxy.setRoutes(state.routes).removed;
        await this.proxy.drainTargets(drained, 0);
      }
      log.info(
        { targets: state.routes.length, drained: state.drained.length },
        'routing restored from state',
      );
    } else {
      if (state) log.info('config targets changed since the last run; routing from the config');
      this.proxy.setRoutes(fromConfig);
    }
    const bound = await this.proxy.listen();
    log.info({ listen: formatAddress(bound), service: config.service }, 'proxy listening');
    if (this.admin) {
      registerProxyRoutes(
        this.admin,
        this.proxy,
        new ProxyMetrics(this.proxy, config.service),
        config.proxy.drainTimeout,
      );
      this.admin.route('GET', '/v1/health', () => ({
        json: { ok: true, service: config.service, version: VERSION },
      }));
      const adminBound = await this.admin.listen();
      log.info({ admin: formatAddress(adminBound) }, 'admin API listening');
    }
  }

  /** SIGHUP: apply a changed `targets` list (the listener and admin address stay as they are). */
  async reload(next: BatonConfig): Promise<void> {
    const routes = routesFromConfig(next.targets);
    const seed = seedOf(routes);
    this.config = next;
    if (seed === this.seed) {
      this.log.info('config reloaded; targets unchanged');
      return;
    }
    this.seed = seed;
    const { added, removed } = this.proxy.setRoutes(routes);
    this.log.info(
      { added: added.map((t) => t.spec.id), removed: removed.map((t) => t.spec.id) },
      'targets reloaded',
    );
    const results = await this.proxy.drainTargets(removed);
    for (const r of results)
      if (!r.drained) this.log.warn(r, 'target left rotation with requests still in flight');
  }

  async stop(timeoutMs = this.config.proxy.drainTimeout): Promise<void> {
    await this.admin?.close();
    await this.proxy.close(timeoutMs);
  }

  private persist(): void {
    try {
      saveRouteState(this.config.stateDirPath, {
        seed: this.seed,
        routes: this.proxy.currentRoutes(),
        drained: this.proxy.drainedRoutes(),
      });
    } catch (err) {
      this.log.error({ err }, 'could not save routing state');
    }
  }
}
