// `baton dataplane`: the built-in proxy in a process of its own, started (detached, in its own
// session) by `baton up` and outliving it. The controller pushes the route table over the edge
// API on a unix socket in stateDir (src/admin/edge-routes.ts, driven by src/edge/remote.ts);
// the data plane writes every table it is given to a file and comes back with it, and between
// controllers it keeps serving, with its own active health checks and passive failover.
//
// Its listener comes from, in order: the data plane it replaces (`baton upgrade`: the socket is
// handed over, never closed; src/dataplane/upgrade.ts), a file descriptor the controller was
// given by systemd socket activation, or a bind of `listen:`.
import type net from 'node:net';
import os from 'node:os';
import { existsSync, renameSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import type { EdgeRoutesBody } from '../api/edge.js';
import type { HealthAnswer } from '../api/health.js';
import { DATAPLANE_PATHS } from '../api/paths.js';
import { registerEdgeRoutes } from '../admin/edge-routes.js';
import { registerProxyRoutes } from '../admin/proxy-routes.js';
import { AdminServer } from '../admin/server.js';
import { formatAddress } from '../config/address.js';
import type { BatonConfig } from '../config/schema.js';
import { ProxyMetrics } from '../edge/builtin/metrics.js';
import type { BuiltinProxy } from '../edge/builtin/proxy.js';
import { proxyFromConfig } from '../edge/builtin/from-config.js';
import { startAcme, type AcmeManager } from '../edge/builtin/acme/manager.js';
import { BatonError, messageOf } from '../errors.js';
import type { Logger } from '../log.js';
import { VERSION } from '../version.js';
import { DATAPLANE_LOCK, takeDaemonLock } from '../state/lock.js';
import { dataPlanePaths, ensureSocketDir, listeningFd, type DataPlanePaths } from './paths.js';
import { loadServedRoutes, saveServedRoutes } from './routes-file.js';
import { handOver, type HandoverResult } from './upgrade.js';
import { ProxyWorkers, workerCount, WorkersEdge } from './workers.js';
import { BuiltinEdge } from '../edge/builtin/edge.js';

/** Where the listener comes from (see the top of this file). */
export type ListenerSource =
  | { readonly kind: 'bind' }
  | { readonly kind: 'fd'; readonly fd: number }
  | {
      readonly kind: 'handover';
      /** The socket as an inherited fd (no accept before this process listens), or over IPC. */
      readonly listener: net.Server | { readonly fd: number };
      /** redirectHttp's socket, inherited too. */
      readonly redirect?: { readonly fd: number } | undefined;
      readonly table: EdgeRoutesBody;
    };

/** The data plane's GET /v1/health: the common answer, with its pid (and its workers'). */
export interface DataPlaneHealth extends HealthAnswer {
  readonly pid: number;
  /** proxy.workers above 1: the pids of the other processes serving (src/dataplane/workers.ts). */
  readonly workers?: readonly number[];
}

export class DataPlane {
  readonly proxy: BuiltinProxy;
  readonly paths: DataPlanePaths;
  private admin: AdminServer | null = null;
  /** proxy.workers above 1: the other processes serving the listener. */
  private workers: ProxyWorkers | null = null;
  private releaseLock: (() => void) | null = null;
  /** tls.acme: the ACME client (src/edge/builtin/acme/manager.ts). */
  private acme: AcmeManager | null = null;
  /** The last table the controller sent (or the one restored / handed over). */
  private table: EdgeRoutesBody = { routes: [], split: null };
  private upgrading: Promise<HandoverResult> | null = null;
  private stopping: Promise<void> | null = null;
  /** Resolves when the process may exit (stopped, or retired after a handover). */
  readonly done: Promise<void>;
  private finish!: () => void;

  constructor(
    readonly config: BatonConfig,
    private readonly log: Logger,
  ) {
    this.paths = dataPlanePaths(config.stateDirPath);
    this.done = new Promise((resolve) => (this.finish = resolve));
    this.proxy = proxyFromConfig(config, log);
  }

  /**
   * Takes the lock, routes what it served last (or what it was handed), opens the listener and
   * then the admin socket. A handed-over data plane binds its admin socket beside the old one
   * and renames it into place only when told to (see upgrade.ts).
   */
  async start(source: ListenerSource): Promise<void> {
    const { config, log } = this;
    if (source.kind === 'handover') this.table = source.table;
    else {
      this.releaseLock = takeDaemonLock(config.stateDirPath, config.file, log, DATAPLANE_LOCK);
      this.table = loadServedRoutes(this.paths.routes) ?? this.table;
    }
    this.proxy.setRoutes(this.table.routes, this.table.split);
    // A unix listener left by a data plane that was killed: this one holds the lock now.
    const listen = config.listen!;
    if (source.kind === 'bind' && listen.kind === 'unix' && existsSync(listen.path)) unlinkSync(listen.path);
    const bound = await this.proxy.listen(
      source.kind === 'handover' ? source.listener : source.kind === 'fd' ? { fd: source.fd } : undefined,
      source.kind === 'handover' ? source.redirect : undefined,
    );
    log.info(
      { listen: formatAddress(bound), routes: this.table.routes.length, from: source.kind, pid: process.pid },
      'data plane listening',
    );
    // `baton up` logged them too, in its own log.
    for (const w of this.proxy.front.certificates?.warnings() ?? []) log.warn(w);
    // tls.acme: this process owns the proxy, so it gets and renews the certificates.
    this.acme = startAcme(config, this.proxy, log, () => {
      // At once, not when their file watchers notice: new connections to them get it too.
      this.workers?.reloadCertificates().catch((err: unknown) => {
        log.error({ error: messageOf(err) }, 'a data plane worker could not read the new certificate');
      });
    });
    this.startWorkers();
    const socket =
      source.kind === 'handover'
        ? path.join(path.dirname(this.paths.socket), `.dataplane-${process.pid}.sock`)
        : this.paths.socket;
    ensureSocketDir(this.paths);
    // A unix socket only this user can open: no token.
    this.admin = new AdminServer({ kind: 'unix', path: socket }, log, { token: '' });
    this.registerRoutes();
    await this.admin.listen();
    log.info({ admin: socket }, 'data plane admin socket listening');
  }

  /**
   * After a handover: this process takes the lock and the route file, and then (last: once it
   * is there, the controller's calls come here) the admin socket's path. A write that fails
   * throws before the rename, and the old data plane serves on.
   */
  takeOver(): void {
    const admin = this.admin!;
    const from = admin.path!;
    saveServedRoutes(this.paths.routes, this.table);
    this.releaseLock = takeDaemonLock(this.config.stateDirPath, this.config.file, this.log, DATAPLANE_LOCK, {
      takeOver: true,
    });
    renameSync(from, this.paths.socket);
    this.log.info({ admin: this.paths.socket }, 'data plane took over');
  }

  /** The handover failed after the new one may have taken the lock: it is this one's again. */
  retakeLock(): void {
    this.releaseLock = takeDaemonLock(this.config.stateDirPath, this.config.file, this.log, DATAPLANE_LOCK, {
      takeOver: true,
    });
  }

  /** proxy.workers above 1: the other processes, started in the background. */
  private startWorkers(): void {
    const count = workerCount(this.config.proxy.workers, os.availableParallelism()) - 1;
    if (count < 1) return;
    const fd = listeningFd(this.proxy.listeningServer());
    if (fd === null) {
      this.log.warn('proxy.workers: the listening socket has no fd to share: this process serves alone');
      return;
    }
    const proxy = this.proxy;
    const current = (): { generation: number; table: EdgeRoutesBody } => ({
      generation: proxy.generation,
      table: { routes: proxy.currentRoutes(), split: proxy.split },
    });
    this.workers = new ProxyWorkers(this.config, current, fd, this.paths.log, this.log, count);
    // Not awaited: this process serves from now on, and a worker still starting gets every
    // change made meanwhile before it counts as serving (workers.ts), so nothing waits for it.
    const workers = this.workers;
    void workers.start().then(() => {
      this.log.info({ workers: workers.pids() }, `${workers.pids().length + 1} processes serve the listener`);
    });
  }

  private registerRoutes(): void {
    const admin = this.admin!;
    const { config } = this;
    const log = this.log;
    const workers = this.workers;
    registerEdgeRoutes(
      admin,
      this.proxy,
      {
        before: () => {
          if (this.upgrading || this.stopping) {
            throw new BatonError(
              'BATON_E_CONFLICT',
              `the data plane is ${this.stopping ? 'stopping' : 'handing over to a new one (baton upgrade)'}: nothing changed; try again in a moment`,
            );
          }
        },
        applied: (table) => {
          this.table = table;
          try {
            saveServedRoutes(this.paths.routes, table);
          } catch (err) {
            // It serves the table anyway; after a restart of its own it would serve the older one.
            log.error({ error: messageOf(err) }, 'could not save the served routes');
          }
        },
      },
      workers ? new WorkersEdge(new BuiltinEdge(this.proxy), workers) : undefined,
    );
    registerProxyRoutes(
      admin,
      this.proxy,
      new ProxyMetrics(this.proxy, config.service, () => workers?.rows() ?? Promise.resolve([])),
      config.proxy.drainTimeout,
      (op) => workers?.target(op) ?? Promise.resolve(),
    );
    admin.route<DataPlaneHealth>('GET', DATAPLANE_PATHS.health, () => ({
      json: {
        ok: true,
        service: config.service,
        version: VERSION,
        mode: 'edge',
        edge: 'builtin',
        listen: formatAddress(this.proxy.address()),
        url: null,
        pid: process.pid,
        workers: workers?.pids() ?? [],
      },
    }));
    admin.route<HandoverResult>('POST', DATAPLANE_PATHS.upgrade, async () => ({
      json: await this.upgrade(),
    }));
    admin.route<{ reloaded: boolean }>('POST', DATAPLANE_PATHS.certificates, () => ({
      json: { reloaded: this.reloadCertificates('SIGHUP of baton up') },
    }));
    admin.route<{ stopping: true; pid: number }>('POST', DATAPLANE_PATHS.stop, () => {
      // Answered first: the caller learns it was taken, then waits for the pid to go.
      setImmediate(() => void this.stop('baton down'));
      return { json: { stopping: true, pid: process.pid } };
    });
  }

  /** Re-reads tls:'s certificates (true without tls:); refused ones are logged, the old serve on. */
  reloadCertificates(why: string): boolean {
    this.workers?.reloadCertificates().catch((err: unknown) => {
      this.log.error({ error: messageOf(err) }, 'a data plane worker could not re-read the certificates');
    });
    return this.proxy.front.certificates?.reload(why) ?? true;
  }

  /**
   * `baton upgrade` or SIGUSR2: a new data plane from the Baton installed now takes the
   * listener, then this one finishes what it has and exits. One at a time; a failed one leaves
   * this one serving as before.
   */
  upgrade(): Promise<HandoverResult> {
    if (this.proxy.address().kind === 'unix') {
      // A unix listener cannot be shared the same way (listening on it again fails, and closing
      // it here would unlink its path).
      return Promise.reject(
        new BatonError(
          'BATON_E_CONFLICT',
          'baton upgrade hands over TCP listeners only: with listen: unix:..., run baton down and baton up (clients are refused in between), or listen on TCP',
        ),
      );
    }
    if (this.stopping) {
      return Promise.reject(
        new BatonError('BATON_E_CONFLICT', 'the data plane is stopping: nothing to upgrade'),
      );
    }
    this.upgrading ??= handOver(this, this.table, this.log).then(
      (result) => {
        // Answered before the retirement, which may take up to drainTimeout.
        setImmediate(() => void this.retire());
        return result;
      },
      (err: unknown) => {
        this.upgrading = null;
        throw err;
      },
    );
    return this.upgrading;
  }

  /** After a handover: stop accepting, let in-flight requests finish, close the rest gracefully. */
  private async retire(): Promise<void> {
    // The admin socket's path is the new data plane's now: never unlinked from here.
    this.admin?.abandon();
    this.acme?.stop();
    const timeout = this.config.proxy.drainTimeout;
    const [result] = await Promise.all([this.proxy.retire(timeout), this.workers?.stop('retire', timeout)]);
    this.log.info({ ...result }, 'data plane retired after the handover');
    this.finish();
  }

  /** `baton down` (or SIGTERM): stop accepting, finish in-flight requests, exit. */
  stop(why: string): Promise<void> {
    this.stopping ??= (async () => {
      this.log.info({ why }, 'data plane stopping: finishing in-flight requests');
      await this.upgrading?.catch(() => undefined);
      if (this.upgrading) {
        // Handed over already: the new one serves; this one is retiring.
        await this.done;
        return;
      }
      await this.admin?.close().catch(() => undefined);
      this.acme?.stop();
      const timeout = this.config.proxy.drainTimeout;
      await Promise.all([this.proxy.close(timeout), this.workers?.stop('close', timeout)]);
      this.releaseLock?.();
      this.finish();
    })();
    return this.stopping;
  }
}
