// The built-in reverse proxy: one HTTP/1.1 listener (HTTPS with tls:, front.ts), a route-table
// reference swapped whole on every change, and the operations the controller and admin API use to
// change it (add, remove, weight, drain, switch). The listener is never restarted by a change.
//
// Split by responsibility: the listener and the request entry here (the hot path), what the
// proxy answers itself in answers.ts, route-table changes and drains in route-changes.ts,
// upgrades in tunnel.ts, listening on a handed-over socket and retiring after a handover in
// handover.ts.
import type { TargetView } from '../../api/targets.js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type net from 'node:net';
import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import type { BalanceConfig, HealthConfig, ProxyConfig } from '../../config/schema.js';
import type { ListenAddress } from '../../config/address.js';
import { BatonError } from '../../errors.js';
import type { Logger } from '../../log.js';
import { targetId, type DrainResult, type RouteSpec, type SplitSpec } from '../edge.js';
import {
  answerHere,
  answerUpgrade,
  BodyLimit,
  logClientTimeout,
  onClientError,
  onConnectMethod,
  tooLarge,
} from './answers.js';
import { byClient, Exchange, type ExchangeHost, type FinishedRequest } from './exchange.js';
import { RawEngine, type RawHost } from './raw/engine.js';
import {
  IDLE_GRACE_MS,
  listenOn,
  Retirement,
  stopAccepting,
  type ListenSource,
  type RetireResult,
} from './handover.js';
import { TrustedProxies, upstreamRequestHeaders } from './headers.js';
import { createFront, isH2, type Front, type FrontServer, type HttpsOptions } from './front.js';
import { h2Callbacks } from './h2/serve.js';
import { HealthChecker } from './health.js';
import { RouteChanges, routesOf, specOf, type Known } from './route-changes.js';
import { RouteTable } from './route-table.js';
import type { PoolOptions, Target } from './target.js';
import type { LaneDecision } from './split.js';
import { TrafficCounters } from './stats.js';
import { openTunnel, type TunnelHost } from './tunnel.js';

export interface BuiltinProxyOptions {
  readonly listen: ListenAddress;
  readonly proxy: ProxyConfig;
  readonly balance: BalanceConfig;
  readonly healthCheck?: HealthConfig | undefined;
  readonly log: Logger;
  /** Called with one object per finished request; null = access log off (no work at all). */
  readonly accessLog?: ((entry: AccessLogEntry) => void) | null;
  /** Called after every route change (to persist it). */
  readonly onChange?: (() => void) | undefined;
  /** tls:, hsts: and redirectHttp:; null: plain HTTP. */
  readonly https?: HttpsOptions | null;
}

export interface AccessLogEntry {
  readonly time: string;
  readonly requestId: string;
  readonly method: string;
  readonly url: string;
  readonly status: number;
  readonly ms: number;
  readonly target: string | null;
  readonly version: string | null;
  readonly attempts: number;
  readonly client: string;
  readonly failure?: string;
}

export type { ListenSource, RetireResult } from './handover.js';

/** One target as GET /v1/targets shows it: the wire type. */
export type { TargetView } from '../../api/targets.js';

export class BuiltinProxy implements ExchangeHost, TunnelHost, RawHost {
  readonly maxAttempts: number;
  readonly retryTimeoutMs: number;
  readonly clientBodyTimeoutMs: number;
  readonly clientSendTimeoutMs: number;
  readonly versionHeader: boolean;
  private table: RouteTable;
  private readonly known: RouteChanges;
  private readonly server: FrontServer;
  /** The listener's server, and with HTTPS its certificates and redirectHttp's listener. */
  readonly front: Front;
  private readonly trusted: TrustedProxies;
  private readonly underscores: boolean;
  private readonly poolOptions: PoolOptions;
  private readonly health: HealthChecker | null;
  private readonly accessLog: ((entry: AccessLogEntry) => void) | null;
  private readonly sockets = new Set<Socket>();
  private inflight = 0;
  private closing = false;
  /** By version, for deploy proofs (BuiltinEdge.traffic). */
  readonly traffic = new TrafficCounters(() => this.targets().map((t) => t.spec.version));
  /** Set while retiring after a handover (see retire). */
  private retirement: Retirement | null = null;
  private retired: Promise<RetireResult> | null = null;
  /** proxy.engine: raw (raw/engine.ts); null: node:http serves every connection. */
  private readonly raw: RawEngine | null;

  constructor(private readonly opts: BuiltinProxyOptions) {
    const p = opts.proxy;
    this.maxAttempts = p.retries + 1;
    this.retryTimeoutMs = p.retryTimeout;
    this.clientBodyTimeoutMs = p.clientBodyTimeout;
    this.clientSendTimeoutMs = p.clientSendTimeout;
    this.versionHeader = p.versionHeader;
    this.trusted = new TrustedProxies(p.trustedProxies);
    this.underscores = p.allowUnderscoresInHeaders;
    this.accessLog = opts.accessLog ?? null;
    this.poolOptions = {
      connectTimeoutMs: p.connectTimeout,
      headersTimeoutMs: p.upstreamHeaderTimeout,
      bodyTimeoutMs: p.upstreamBodyTimeout,
      idleTimeoutMs: p.upstreamIdleTimeout,
    };
    this.table = new RouteTable(0, [], opts.balance);
    this.known = new RouteChanges(this.poolOptions, p.slowStart, p.drainTimeout, opts.onChange);
    this.health = opts.healthCheck ? new HealthChecker(opts.healthCheck, opts.log) : null;
    const h2 = { trusted: this.trusted, underscores: this.underscores, maxBodySize: p.maxBodySize };
    this.front = createFront(
      p,
      opts.https ?? null,
      this.onRequest,
      () => this.address(),
      h2Callbacks(this, { ...h2, hsts: opts.https?.hsts ?? null }, opts.log),
    );
    this.server = this.front.server;
    this.server.on('checkContinue', this.onCheckContinue);
    this.server.on('upgrade', this.onUpgrade);
    this.server.on('connect', onConnectMethod);
    this.server.on('clientError', onClientError);
    this.server.on(this.front.ready, (socket: Socket) => {
      // Once per socket: a connection whose upgrade was declined comes back (reuseConnection).
      // HTTP/2 sessions are front.h2's.
      if (this.sockets.has(socket) || isH2(socket)) return;
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
    this.raw = p.engine === 'raw' ? new RawEngine(this, this.front, p, this.trusted, this.underscores) : null;
  }

  // --- lifecycle ---------------------------------------------------------------------------

  /**
   * Binds `listen:`, or listens on `from`: a listening socket another process handed over (a
   * net.Server received with `process.on('message', (m, server) => ...)`) or inherited (systemd's
   * `{ fd: 3 }`). `address()` then reports the socket's real address.
   */
  async listen(from?: ListenSource, redirectFrom?: ListenSource): Promise<ListenAddress> {
    await listenOn(this.server, this.opts.listen, from);
    await this.front.redirect?.listen(redirectFrom);
    return this.address();
  }

  /** The bound address (with the real port when `listen` asked for port 0). */
  address(): ListenAddress {
    const a = this.server.address();
    if (typeof a === 'string' && a !== '') return { kind: 'unix', path: a };
    if (a === null || typeof a === 'string') return this.opts.listen;
    return { kind: 'tcp', host: a.address, port: a.port };
  }

  /** The listening server, to hand to a new process: `child.send(msg, proxy.listeningServer())`. */
  listeningServer(): net.Server {
    return this.server;
  }

  /**
   * After the listener was handed to a new process: stops accepting here (the new process keeps
   * accepting on the same kernel socket), answers every request still coming on open connections
   * with `Connection: close`, closes keep-alive connections once idle for a grace (not at once:
   * the client may be sending its next request), sends WebSockets a Close frame (1001), and at
   * `timeoutMs` closes what is left, as close() does. Once; later calls get the same result.
   */
  retire(timeoutMs = this.opts.proxy.drainTimeout): Promise<RetireResult> {
    if (this.retired !== null) return this.retired;
    if (this.closing) {
      return Promise.reject(
        new BatonError('BATON_E_CONFLICT', 'the proxy is closing already: nothing to retire'),
      );
    }
    const deadline = Date.now() + timeoutMs;
    const r = new Retirement(
      {
        connections: this.sockets,
        others: () => (this.front.h2?.size ?? 0) + this.front.handshaking(),
        tunnels: () => this.targets().flatMap((t) => [...t.tunnels]),
        closing: () => this.closing,
      },
      Math.min(IDLE_GRACE_MS, this.opts.proxy.clientIdleTimeout),
    );
    this.retirement = r;
    this.front.h2?.goaway(IDLE_GRACE_MS);
    stopAccepting(this.server);
    this.front.redirect?.stopAccepting();
    return (this.retired = (async () => {
      const left = await r.run(deadline);
      await this.close(0);
      return r.result(left);
    })());
  }

  /** Stops accepting, lets in-flight requests finish (bounded), then closes everything. */
  async close(timeoutMs = this.opts.proxy.drainTimeout): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    this.health?.stopAll();
    const frontClosed = this.front.close();
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    this.front.h2?.goaway(IDLE_GRACE_MS);
    this.raw?.stopping();
    const deadline = Date.now() + timeoutMs;
    while (this.inflight > 0 && Date.now() < deadline) await delay(20);
    for (const k of this.known.values()) for (const t of k.target.tunnels) t.close();
    this.server.closeAllConnections();
    for (const s of this.sockets) s.destroy();
    this.front.h2?.destroyAll();
    this.raw?.close();
    this.front.destroyHandshaking();
    await frontClosed;
    await Promise.all([...this.known.values()].map((k) => k.target.pool.destroy().catch(() => undefined)));
    await closed;
  }

  // --- routing (hot path) ------------------------------------------------------------------

  pickTarget(
    req: IncomingMessage,
    now: number,
    tried: readonly Target[] | null,
    canary: boolean | null = null,
  ): Target | undefined {
    return this.table.pick(req, now, tried, canary);
  }

  laneFor(req: IncomingMessage): LaneDecision | null {
    const split = this.table.split;
    return split === null ? null : split.lane(req);
  }

  /** The split in effect, if any (for status). */
  get split(): SplitSpec | null {
    return this.table.split?.spec ?? null;
  }

  requestStarted(): void {
    this.inflight++;
  }

  finished(ex: FinishedRequest): void {
    this.inflight--;
    // An h2 stream reset by the client: counted against rapid-reset floods (h2/sessions.ts).
    if (ex.failure === 'client-closed' && ex.req.httpVersionMajor === 2) this.front.h2?.clientReset(ex.req);
    if (this.retirement !== null) this.retirement.requests++;
    this.count(ex);
  }

  upgradeDeclined(r: FinishedRequest): void {
    if (this.retirement !== null) this.retirement.requests++;
    this.count(r);
  }

  get keepAlive(): boolean {
    return this.retirement === null;
  }

  reuseConnection(socket: Socket): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    // Node's own connection handling: a new parser on the socket, with the server's limits.
    this.server.emit(this.front.ready, socket);
    socket.resume();
  }

  clientTimedOut(ex: FinishedRequest, what: 'body' | 'send'): void {
    const ms = what === 'body' ? this.clientBodyTimeoutMs : this.clientSendTimeoutMs;
    logClientTimeout(this.opts.log, ex, what, ms);
  }

  /** Stats and access log of a finished request. */
  private count(ex: FinishedRequest): void {
    const t = ex.target;
    const now = Date.now();
    if (t !== undefined) {
      // An answer the client abandoned is none of the target's, unless it was already a 5xx.
      if (byClient(ex.failure) && ex.status < 500) t.stats.clientAborts++;
      else t.stats.record(ex.failure === undefined || ex.status >= 500 ? ex.status : 0, now - ex.started);
    }
    this.traffic.finished(t?.spec.version ?? '', ex.status, ex.failure, now - ex.started);
    if (this.accessLog !== null) {
      const req = ex.req;
      this.accessLog({
        time: new Date(ex.started).toISOString(),
        requestId: ex.requestId,
        method: req.method ?? '',
        url: req.url ?? '',
        status: ex.failure === 'client-closed' ? 499 : ex.status,
        ms: now - ex.started,
        target: t?.spec.id ?? null,
        version: t?.spec.version || null,
        attempts: ex.attempts,
        client: req.socket.remoteAddress ?? '',
        ...(ex.failure ? { failure: ex.failure } : {}),
      });
    }
  }

  private readonly onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    this.serve(req, res, false);
  };

  private readonly onCheckContinue = (req: IncomingMessage, res: ServerResponse): void => {
    this.serve(req, res, true);
  };

  private serve(req: IncomingMessage, res: ServerResponse, expectContinue: boolean): void {
    // A request pipelined behind an answer that closes the connection (Node's own 400 for a
    // missing Host, any answer while retiring) would never get its answer: never forward it.
    const prev = (req.socket as Socket & { _httpMessage?: ServerResponse & { _last?: boolean } })
      ._httpMessage;
    if (!req.socket.writable || (prev && prev !== res && (prev._last || !prev.shouldKeepAlive))) return;
    // Retiring: Node writes `Connection: close` on this answer and closes the connection after it.
    if (this.retirement !== null) res.shouldKeepAlive = false;
    if (this.front.hsts !== null) res.setHeader('strict-transport-security', this.front.hsts);
    const h = upstreamRequestHeaders(req, this.trusted, this.front.encrypted, false, this.underscores);
    if (h.answer !== null) return answerHere(res, h.answer);
    let body: Readable | null = null;
    const max = this.opts.proxy.maxBodySize;
    if (req.headers['transfer-encoding'] !== undefined) {
      body = max > 0 ? req.pipe(new BodyLimit(max)) : req;
    } else {
      const cl = req.headers['content-length'];
      if (cl !== undefined && cl !== '0') {
        if (max > 0 && Number(cl) > max) return tooLarge(res, max);
        body = req;
      }
    }
    // Only a request we accept gets 100 Continue: others are refused before the body is sent
    // (RFC 9110 §10.1.1).
    if (expectContinue) res.writeContinue();
    const now = Date.now();
    this.inflight++;
    new Exchange(this, req, res, h.headers, h.requestId, body, now).start(now);
  }

  private readonly onUpgrade = (req: IncomingMessage, socket: Socket, head: Buffer): void => {
    const prev = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
    if (prev) {
      // Pipelined behind an answer still going out on this connection: the upgrade waits for
      // it (nothing may be written in between), unless that answer ends the connection.
      prev.once('close', () => {
        if (!socket.writable) return void socket.destroy();
        socket.setTimeout(0); // the keep-alive timer Node set when that answer finished
        this.onUpgrade(req, socket, head);
      });
      return;
    }
    const h = upstreamRequestHeaders(req, this.trusted, this.front.encrypted, true, this.underscores);
    if (h.answer !== null) return answerUpgrade(socket, h.answer);
    openTunnel(this, req, socket, head, h.headers, h.requestId);
  };

  // --- route changes -----------------------------------------------------------------------

  /** The generation of the live route table (bumps on every change). */
  get generation(): number {
    return this.table.generation;
  }

  /**
   * Makes the route table exactly `routes`, atomically. Targets that leave rotation are
   * returned (still open); drain them with `drainTargets`.
   */
  setRoutes(
    routes: readonly RouteSpec[],
    split: SplitSpec | null = null,
  ): { added: Target[]; removed: Target[] } {
    const { table, added, removed } = this.known.next(this.table, routes, split, Date.now());
    this.table = table;
    for (const t of added) this.health?.start(t);
    for (const t of removed) this.health?.stop(t);
    this.opts.onChange?.();
    return { added, removed };
  }

  /**
   * Waits until each target has no request in flight and no open tunnel (tunnels are asked
   * to close gracefully first), then closes its idle upstream connections.
   */
  async drainTargets(targets: readonly Target[], timeoutMs?: number): Promise<DrainResult[]> {
    const results = await this.known.drain(targets, timeoutMs ?? this.opts.proxy.drainTimeout);
    this.raw?.drained(targets);
    return results;
  }

  addTarget(spec: RouteSpec): Target {
    const id = targetId(spec);
    if (this.table.find(id)) throw new BatonError('BATON_E_CONFLICT', `target ${id} is already in rotation`);
    const { added } = this.setRoutes([...this.currentRoutes(), spec], this.split);
    return added[0]!;
  }

  setWeight(id: string, weight: number): void {
    this.requireInRotation(id);
    this.setRoutes(
      this.currentRoutes().map((r) => (targetId(r) === id ? { ...r, weight } : r)),
      this.split,
    );
  }

  /** Takes a target out of rotation and waits for it to be idle (or the timeout). */
  async drain(id: string, timeoutMs?: number): Promise<DrainResult> {
    const k = this.requireKnown(id);
    if (k.target.state.kind === 'active') {
      this.setRoutes(
        this.currentRoutes().filter((r) => targetId(r) !== id),
        this.split,
      );
    }
    const [result] = await this.drainTargets([k.target], timeoutMs);
    return result!;
  }

  /** Puts a drained target back into rotation with its last weight (and slow start). */
  undrain(id: string): void {
    const k = this.requireKnown(id);
    if (k.target.state.kind === 'active') return;
    this.setRoutes(
      [...this.currentRoutes(), { ...specOf(k.target), weight: k.weight, backup: k.backup }],
      this.split,
    );
  }

  /** Drains a target, then forgets it. */
  async remove(id: string, timeoutMs?: number): Promise<DrainResult> {
    const result = await this.drain(id, timeoutMs);
    const k = this.known.get(id);
    if (k && k.target.state.kind !== 'active') {
      this.known.delete(id);
      void k.target.pool.destroy().catch(() => undefined);
      this.raw?.removed(k.target);
      this.opts.onChange?.();
    }
    return result;
  }

  /** Targets out of rotation but still known (drained or draining), with their last weight. */
  drainedRoutes(): RouteSpec[] {
    return this.known.drainedRoutes();
  }

  currentRoutes(): RouteSpec[] {
    return routesOf(this.table);
  }

  /** Every known target, in rotation or not, for the admin API and the state file. */
  view(now = Date.now()): TargetView[] {
    return this.known.view(now);
  }

  targets(): Target[] {
    return [...this.known.values()].map((k) => k.target);
  }

  target(id: string): Target | undefined {
    return this.known.get(id)?.target;
  }

  private requireKnown(id: string): Known {
    const k = this.known.get(id);
    if (!k) throw new BatonError('BATON_E_NOT_FOUND', `no target ${id}; see GET /v1/targets for the list`);
    return k;
  }

  private requireInRotation(id: string): void {
    if (!this.table.find(id)) {
      throw new BatonError('BATON_E_NOT_FOUND', `target ${id} is not in rotation; see GET /v1/targets`);
    }
  }
}
