// HTTP/2 to clients (ALPN "h2" on the HTTPS listener): the TLS connections that chose h2 are
// handed to a node:http2 server that never listens itself, one session each; its requests go
// through the same Exchange as HTTP/1.1 ones (serve.ts) and on to the targets over the pooled
// HTTP/1.1 connections. This file owns the sessions: their limits, the flood guards, and the
// graceful end (GOAWAY) a retiring or closing proxy gives them.
//
// Limits (nghttp2's, set here): SETTINGS_MAX_CONCURRENT_STREAMS, SETTINGS_MAX_HEADER_LIST_SIZE
// (proxy.maxHeaderSize, as for HTTP/1.1), header pairs, session memory, invalid frames, refused
// streams. Floods node:http2 does not stop itself are counted per session over a window, and
// the session ends with GOAWAY ENHANCE_YOUR_CALM past a budget:
//   - streams the client reset before their answer ended (CVE-2023-44487, "rapid reset"): each
//     one made the proxy start an upstream request; honest clients cancel a few;
//   - SETTINGS and PING frames, each of which the proxy must acknowledge.
import http2, {
  type Http2Server,
  type Http2ServerRequest,
  type Http2ServerResponse,
  type ServerHttp2Session,
} from 'node:http2';
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';

/** tls.http2 and the proxy limits that apply to h2 (from-config.ts). */
export interface H2Settings {
  /** tls.maxConcurrentStreams: streams one client connection may have open at once. */
  readonly maxConcurrentStreams: number;
}

export interface H2Limits extends H2Settings {
  /** proxy.maxHeaderSize: the request's header list, decoded (name + value + 32 per field). */
  readonly maxHeaderListSize: number;
  /** proxy.clientIdleTimeout: a session with no frame for this long is sent GOAWAY. */
  readonly idleTimeoutMs: number;
}

/** The flood budgets, per session and window: past one, GOAWAY ENHANCE_YOUR_CALM. */
export const FLOOD_WINDOW_MS = 10_000;
export const MAX_RESETS_PER_WINDOW = 200;
export const MAX_CONTROL_FRAMES_PER_WINDOW = 200;

/** The session of an h2 request, kept on it when it comes in (see clientReset). */
export const H2_SESSION = Symbol('baton.h2Session');

export type H2Handler = (req: Http2ServerRequest, res: Http2ServerResponse, expectContinue: boolean) => void;

/** What a session is counted for (flood guards), kept on the session object. */
interface Counted {
  windowStart: number;
  resets: number;
  control: number;
}

export class H2Sessions {
  readonly server: Http2Server;
  private readonly sessions = new Set<ServerHttp2Session>();
  private readonly counts = new WeakMap<ServerHttp2Session, Counted>();
  private closing = false;
  /** Sessions ended by a flood guard, by cause (for tests and the log). */
  readonly floods = { resets: 0, control: 0 };

  constructor(
    limits: H2Limits,
    handler: H2Handler,
    private readonly onFlood: (what: string, socket: TLSSocket | undefined) => void,
  ) {
    this.server = http2.createServer({
      settings: {
        maxConcurrentStreams: limits.maxConcurrentStreams,
        maxHeaderListSize: limits.maxHeaderListSize,
        // No server push: the proxy has nothing to push.
        enablePush: false,
      },
      maxHeaderListPairs: 128,
      // Megabytes: the streams' buffers, the header tables, unacknowledged frames. Past it,
      // new streams are refused (ENHANCE_YOUR_CALM) while the open ones go on.
      maxSessionMemory: 16,
      maxSessionInvalidFrames: 100,
      maxSessionRejectedStreams: 100,
      maxSettings: 32,
    });
    this.server.on('request', (req: Http2ServerRequest, res: Http2ServerResponse) =>
      handler(req, res, false),
    );
    // Expect: 100-continue: answered only for a request the proxy accepts, as on HTTP/1.1.
    this.server.on('checkContinue', (req: Http2ServerRequest, res: Http2ServerResponse) =>
      handler(req, res, true),
    );
    this.server.on('session', (session: ServerHttp2Session) => this.track(session, limits.idleTimeoutMs));
  }

  /** A TLS connection that chose h2 by ALPN: it becomes a session of this server. */
  accept(socket: TLSSocket): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    this.server.emit('connection', socket);
  }

  /** Open sessions (retirement waits for them). */
  get size(): number {
    return this.sessions.size;
  }

  /**
   * Ends every session gracefully, as nginx and Go do (RFC 9113 §6.8): a first GOAWAY with the
   * highest stream id tells the client to open no new stream here (it connects again, to
   * whichever process accepts then) while the requests it already sent are still taken;
   * `graceMs` later (h2o's choice), the final GOAWAY names the last stream taken, and the
   * session ends when its streams have. Sessions that start later (a TLS
   * handshake that was under way) get the same at once. Once; later calls do nothing.
   */
  goaway(graceMs: number): void {
    if (this.retireGraceMs !== null) return;
    this.retireGraceMs = graceMs;
    for (const s of this.sessions) this.wind(s, graceMs);
  }

  /** Ends every session now (the proxy's close, once in-flight requests had their time). */
  destroyAll(): void {
    this.closing = true;
    for (const s of this.sessions) {
      // Its socket too: a session's destroy ends the socket gracefully, which a client that
      // stopped reading would hold open (and the server's close with it).
      const socket = s.socket;
      s.destroy();
      socket?.destroy();
    }
  }

  private retireGraceMs: number | null = null;

  /** Sessions sent the first GOAWAY. */
  private readonly winding = new WeakSet<ServerHttp2Session>();

  private wind(session: ServerHttp2Session, graceMs: number): void {
    if (session.closed || session.destroyed || this.winding.has(session)) return;
    this.winding.add(session);
    session.goaway(http2.constants.NGHTTP2_NO_ERROR, 2 ** 31 - 1);
    // Not at a PING's acknowledgement: nghttp2 sends acknowledgements ahead of the HEADERS a
    // client had queued, which would then arrive after the final GOAWAY and be refused.
    setTimeout(() => {
      if (!session.closed && !session.destroyed) session.close();
    }, graceMs).unref();
  }

  private track(session: ServerHttp2Session, idleTimeoutMs: number): void {
    this.sessions.add(session);
    this.counts.set(session, { windowStart: Date.now(), resets: 0, control: 0 });
    session.once('close', () => this.sessions.delete(session));
    // A session error (a protocol error by the client, a reset socket) ends that session only.
    session.on('error', () => session.destroy());
    session.setTimeout(idleTimeoutMs, () => session.close());
    session.on('ping', () => this.control(session));
    session.on('remoteSettings', () => this.control(session));
    const grace = this.retireGraceMs;
    if (grace !== null) {
      // Started while retiring (its TLS handshake was under way): a GOAWAY before its first
      // request would have that request refused (node:http2's client, for one, never sends it),
      // so the session takes its first request, then winds down; one that sends none within the
      // grace is closed.
      session.once('stream', () => this.wind(session, grace));
      setTimeout(() => {
        if (!this.winding.has(session) && !session.closed && !session.destroyed) session.close();
      }, grace).unref();
    }
  }

  /**
   * A request the client gave up before its answer was whole (RST_STREAM from its side): the
   * proxy had started an upstream request for it. Called by the proxy for each such exchange.
   */
  clientReset(req: IncomingMessage): void {
    // The stream has let go of its session by now: serve.ts kept it on the request.
    const session = (req as IncomingMessage & { [H2_SESSION]?: ServerHttp2Session })[H2_SESSION];
    if (session === undefined) return;
    const c = this.count(session);
    if (c !== null && ++c.resets > MAX_RESETS_PER_WINDOW) this.calm(session, 'resets');
  }

  private control(session: ServerHttp2Session): void {
    const c = this.count(session);
    if (c !== null && ++c.control > MAX_CONTROL_FRAMES_PER_WINDOW) this.calm(session, 'control');
  }

  /** The session's counters, restarted when their window is over. */
  private count(session: ServerHttp2Session): Counted | null {
    const c = this.counts.get(session);
    if (c === undefined) return null;
    const now = Date.now();
    if (now - c.windowStart >= FLOOD_WINDOW_MS) {
      c.windowStart = now;
      c.resets = 0;
      c.control = 0;
    }
    return c;
  }

  private calm(session: ServerHttp2Session, what: 'resets' | 'control'): void {
    if (session.destroyed) return;
    this.counts.delete(session);
    this.floods[what]++;
    this.onFlood(
      what === 'resets'
        ? `more than ${MAX_RESETS_PER_WINDOW} streams reset by the client within ${FLOOD_WINDOW_MS / 1000}s (HTTP/2 rapid reset)`
        : `more than ${MAX_CONTROL_FRAMES_PER_WINDOW} SETTINGS/PING frames within ${FLOOD_WINDOW_MS / 1000}s`,
      session.socket as TLSSocket | undefined,
    );
    session.goaway(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
    session.destroy();
  }
}
