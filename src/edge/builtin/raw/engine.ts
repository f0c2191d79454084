// `proxy.engine: raw`: the listener's connections are taken from node:http as they are accepted
// (after the TLS handshake with tls:) and served by client.ts on the raw sockets; the node:http
// server keeps its listener, its limits and every rare path, and gets a connection back (at a
// request boundary, the bytes read so far put back) whenever a request is not the common case.
// Timeouts on both sides are deadlines looked at by one sweep, a few times per shortest timeout.
import type { Socket } from 'node:net';
import type { ProxyConfig } from '../../../config/schema.js';
import { isH2, type Front, type FrontServer } from '../front.js';
import { unmapped, type TrustedProxies } from '../headers.js';
import type { ChunkedLimits } from '../http1/chunked.js';
import type { HeadLimits } from '../http1/request-head.js';
import type { Target } from '../target.js';
import { ClientConn, type ClientContext } from './client.js';
import { peerInfo, type PeerInfo } from './heads.js';
import { RawPool, type UpstreamTimeouts } from './upstream.js';

import type { RawHost } from './exchange.js';

export type { RawHost } from './exchange.js';

type ConnectionListener = (this: FrontServer, socket: Socket) => void;

/** Field lines a head may have on the raw path; more go to node:http (which takes 2000). */
const MAX_FIELDS = 128;

export class RawEngine implements ClientContext {
  readonly hsts: string | null;
  readonly limits: HeadLimits;
  readonly chunkedLimits: ChunkedLimits;
  readonly headerTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly bodyTimeoutMs: number;
  readonly sendTimeoutMs: number;
  private readonly timeouts: UpstreamTimeouts;
  private readonly pools = new Map<Target, RawPool>();
  private readonly conns = new Set<ClientConn>();
  private readonly nodeListener: ConnectionListener;
  private readonly sweeper: NodeJS.Timeout;
  stopped = false;

  constructor(
    readonly host: RawHost,
    private readonly front: Front,
    p: ProxyConfig,
    private readonly trusted: TrustedProxies,
    private readonly underscores: boolean,
  ) {
    this.hsts = front.hsts;
    this.limits = { maxHeadSize: p.maxHeaderSize, maxFields: MAX_FIELDS, maxBodySize: p.maxBodySize };
    this.chunkedLimits = {
      maxChunkSize: Number.MAX_SAFE_INTEGER,
      maxBodySize: p.maxBodySize,
      maxTrailerSize: p.maxHeaderSize,
    };
    this.headerTimeoutMs = p.clientHeaderTimeout;
    this.requestTimeoutMs = p.clientRequestTimeout;
    this.idleTimeoutMs = p.clientIdleTimeout;
    this.bodyTimeoutMs = p.clientBodyTimeout;
    this.sendTimeoutMs = p.clientSendTimeout;
    this.timeouts = {
      connectMs: p.connectTimeout,
      headerMs: p.upstreamHeaderTimeout,
      bodyMs: p.upstreamBodyTimeout,
      idleMs: p.upstreamIdleTimeout,
    };
    // node:http's own listener for ready connections (registered when the server was made): it
    // is called for the connections handed over, and no longer for every one.
    const server = front.server;
    const listeners = server.listeners(front.ready) as ConnectionListener[];
    const node = listeners.find((l) => l.name === 'connectionListener') ?? listeners[0]!;
    this.nodeListener = node;
    server.off(front.ready, node);
    server.prependListener(front.ready, this.onConnection);
    const shortest = Math.min(
      p.clientHeaderTimeout,
      p.clientIdleTimeout,
      p.clientBodyTimeout,
      p.clientSendTimeout,
      p.connectTimeout,
      p.upstreamHeaderTimeout,
      p.upstreamBodyTimeout,
      p.upstreamIdleTimeout,
    );
    this.sweeper = setInterval(this.sweep, Math.min(1000, Math.max(10, Math.floor(shortest / 8)))).unref();
  }

  private readonly onConnection = (socket: Socket): void => {
    // HTTP/2 (ALPN h2) goes through node:http2 (front.ts' listener sends it there).
    if (isH2(socket)) return void this.nodeListener.call(this.front.server, socket);
    this.conns.add(new ClientConn(socket, this, Date.now()));
  };

  private readonly sweep = (): void => {
    const now = Date.now();
    for (const c of this.conns) c.sweep(now);
    for (const [target, pool] of this.pools) {
      pool.sweep(now);
      // A pool with no connection left is made again when needed (targets come and go).
      if (pool.all.size === 0) this.pools.delete(target);
    }
  };

  poolFor(target: Target): RawPool {
    let pool = this.pools.get(target);
    if (pool === undefined || pool.closed) {
      pool = new RawPool(target, this.timeouts);
      this.pools.set(target, pool);
    }
    return pool;
  }

  peerOf(socket: Socket): PeerInfo {
    const peer = unmapped(socket.remoteAddress ?? '');
    return peerInfo(peer, this.trusted.has(peer), this.front.encrypted ? 'https' : 'http', this.underscores);
  }

  handOver(socket: Socket, rest: Buffer | null): void {
    if (rest !== null) socket.unshift(rest);
    // node:http would read the socket in C++ (parser.consume) and miss the bytes put back.
    const handle = (socket as Socket & { _handle?: { _consumed?: boolean } | null })._handle;
    if (handle) handle._consumed = true;
    this.nodeListener.call(this.front.server, socket);
    socket.resume();
  }

  forget(c: ClientConn): void {
    this.conns.delete(c);
  }

  /** After a drain: the targets' idle connections are closed. */
  drained(targets: readonly Target[]): void {
    for (const t of targets) this.pools.get(t)?.closeIdle();
  }

  /** A target forgotten: its connections close. */
  removed(target: Target): void {
    this.pools.get(target)?.destroy();
    this.pools.delete(target);
  }

  /** The proxy is closing: idle connections close now, the others after their answer. */
  stopping(): void {
    this.stopped = true;
    for (const c of this.conns) c.closeIfIdle();
  }

  close(): void {
    clearInterval(this.sweeper);
    for (const pool of this.pools.values()) pool.destroy();
    this.pools.clear();
  }
}
