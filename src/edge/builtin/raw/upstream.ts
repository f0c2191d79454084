// The raw engine's connections to one target: keep-alive net sockets on a small free list (last
// in, first out, so the warm ones stay warm and the rest reach upstreamIdleTimeout), each with
// its response-head parser and chunked framer, reused from one response to the next. A socket
// goes back on the list only when its response was read to its exact end and allowed keep-alive;
// anything else (a cut, extra bytes, Connection: close, a body read until close) closes it.
// Timeouts are deadlines checked by the engine's sweep (engine.ts), not timers per request.
import net from 'node:net';
import { CHUNK_DONE, CHUNK_NEED_MORE, CHUNK_REFUSED, ChunkedBody } from '../http1/chunked.js';
import { Framing, HEAD_INCOMPLETE, HEAD_REFUSED } from '../http1/request-head.js';
import { ResponseHead } from '../http1/response-head.js';
import type { Target } from '../target.js';
import { writeDirect } from './direct-write.js';

/** The exchange using a connection (raw/exchange.ts). */
export interface UpstreamUser {
  /** Connected (or taken from the free list): the request may be written. */
  upstreamReady(): void;
  /** The response head; its bytes are src[h.start, h.end). `src` is lent: copy what is kept. */
  upstreamHead(h: ResponseHead, src: Buffer): void;
  /** Body bytes src[start, end); `src` is lent (READ_BUFFER): copy what is kept or written on. */
  upstreamBody(src: Buffer, start: number, end: number): void;
  /** The response ended (the connection is back on the free list, or closed). */
  upstreamDone(): void;
  /** No (complete) response: `code` as exchange.ts's retry rules know them. */
  upstreamFailed(code: string, reused: boolean): void;
  /** The socket took the request bytes written so far. */
  upstreamDrain(): void;
  /** The whole request went out (else the connection cannot carry another one). */
  readonly bodyDone: boolean;
}

export interface UpstreamTimeouts {
  readonly connectMs: number;
  readonly headerMs: number;
  readonly bodyMs: number;
  readonly idleMs: number;
}

const CONNECTING = 0;
const IDLE = 1;
const HEAD = 2;
const BODY = 3;
const GONE = 4;

/** Most idle sockets kept per target. */
const MAX_FREE = 128;
const HEAD_BUFFER = 4096;

/**
 * Every upstream socket reads into this one buffer (net's `onread`: no Buffer, no stream push and
 * no 'data' event per read). Nothing may keep a view of it past the read's callback: the next
 * read on any upstream socket overwrites it (exchange.ts copies what it writes on).
 */
const READ_BUFFER = Buffer.allocUnsafe(64 * 1024);

export class UpstreamConn {
  readonly socket: net.Socket;
  user: UpstreamUser | null = null;
  /** Taken from the free list (a failure before any response byte may be a stale socket). */
  reused = false;
  /** Bytes of the response reached the user. */
  responded = false;
  private phase = CONNECTING;
  private readonly head = new ResponseHead();
  private readonly chunked = new ChunkedBody();
  private headRequest = false;
  private buf: Buffer | null = null;
  private bufLen = 0;
  private left = 0;
  private framing: Framing = Framing.none;
  /** Checked by the sweep; 0: none. */
  deadline = 0;
  /** When the last bytes were read (one clock read per read). */
  now = 0;
  private lastRead = 0;

  constructor(
    private readonly pool: RawPool,
    now: number,
  ) {
    this.socket = net.connect({
      host: pool.target.spec.host,
      port: pool.target.spec.port,
      noDelay: true,
      onread: { buffer: READ_BUFFER, callback: this.onRead },
    });
    this.deadline = now + pool.timeouts.connectMs;
    this.socket.on('connect', this.onConnect);
    this.socket.on('drain', this.onDrain);
    this.socket.on('error', this.onError);
    this.socket.on('close', this.onClose);
  }

  get connecting(): boolean {
    return this.phase === CONNECTING;
  }

  /** Takes a request: `headRequest` (a response to HEAD has no body). */
  assign(user: UpstreamUser, headRequest: boolean, now: number): void {
    this.user = user;
    this.headRequest = headRequest;
    this.responded = false;
    this.head.reset(0);
    this.bufLen = 0;
    if (this.phase !== CONNECTING) {
      this.phase = HEAD;
      this.deadline = now + this.pool.timeouts.headerMs;
    }
  }

  /** Usable from the free list: still open, nothing received since. */
  private get usable(): boolean {
    return this.phase === IDLE && !this.socket.destroyed && this.socket.readyState === 'open';
  }

  /** Closes it; its user (if any) hears nothing more. */
  destroy(): void {
    this.user = null;
    this.phase = GONE;
    this.socket.destroy();
  }

  write(b: Buffer): boolean {
    return writeDirect(this.socket, b);
  }

  /** Engine sweep: a passed deadline fails (or, idle, closes) the connection. */
  sweep(now: number): void {
    if (this.deadline === 0 || now < this.deadline) return;
    const t = this.pool.timeouts;
    if (this.phase === BODY) {
      const read = this.socket.bytesRead;
      if (read !== this.lastRead || this.socket.isPaused()) {
        this.lastRead = read;
        this.deadline = now + t.bodyMs;
        return;
      }
    }
    const code =
      this.phase === CONNECTING
        ? 'UND_ERR_CONNECT_TIMEOUT'
        : this.phase === HEAD
          ? 'UND_ERR_HEADERS_TIMEOUT'
          : 'UND_ERR_BODY_TIMEOUT';
    this.fail(code);
  }

  private fail(code: string): void {
    const user = this.user;
    this.pool.forget(this);
    this.destroy();
    user?.upstreamFailed(code, this.reused);
  }

  private readonly onConnect = (): void => {
    if (this.phase !== CONNECTING) return;
    this.phase = this.user === null ? IDLE : HEAD;
    this.deadline = Date.now() + this.pool.timeouts.headerMs;
    this.user?.upstreamReady();
  };

  private readonly onDrain = (): void => {
    this.user?.upstreamDrain();
  };

  private readonly onError = (err: NodeJS.ErrnoException): void => {
    if (this.phase === GONE) return;
    this.fail(err.code ?? 'ECONNRESET');
  };

  private readonly onClose = (): void => {
    if (this.phase === GONE) return;
    if (this.phase === BODY && this.framing === Framing.untilClose) {
      const user = this.user;
      this.pool.forget(this);
      this.phase = GONE;
      this.user = null;
      user?.upstreamDone();
      return;
    }
    this.fail('ECONNRESET');
  };

  /** Bytes read, in READ_BUFFER[0, n): used or copied before this returns (true: read on). */
  private readonly onRead = (n: number): boolean => {
    this.now = Date.now();
    const phase = this.phase;
    if (phase === HEAD) this.onHead(READ_BUFFER, n);
    else if (phase === BODY) this.onBody(READ_BUFFER, 0, n);
    // Bytes nobody asked for (on an idle socket): it cannot be trusted with a request.
    else if (phase === IDLE) {
      this.pool.forget(this);
      this.destroy();
    }
    return true;
  };

  private onHead(chunk: Buffer, n: number): void {
    let src = chunk;
    let end = n;
    if (this.bufLen > 0) {
      src = this.append(chunk, 0, n);
      end = this.bufLen;
    }
    const h = this.head;
    for (;;) {
      const r = h.parse(src, end, this.headRequest);
      if (r === HEAD_INCOMPLETE) {
        if (src === chunk) {
          this.bufLen = 0;
          src = this.append(chunk, h.start, end);
          h.rebase(0);
        }
        return;
      }
      if (r === HEAD_REFUSED || h.upgrade) return this.fail('UPSTREAM_BAD_RESPONSE');
      if (!h.interim) break;
      // 1xx: the proxy answered the client's Expect itself (as the node path, not forwarded).
      h.reset(h.end);
    }
    this.bufLen = 0;
    this.responded = true;
    this.framing = h.framing;
    this.left = h.bodyLength;
    if (h.framing === Framing.chunked) this.chunked.reset();
    this.phase = BODY;
    this.lastRead = this.socket.bytesRead;
    this.deadline = this.now + this.pool.timeouts.bodyMs;
    this.user!.upstreamHead(h, src);
    if (this.phase !== BODY) return; // the user let go of it
    if (h.framing === Framing.none) return this.done(h.end === end && h.keepAlive);
    // Even with no body byte yet: the user sends the head with the first one, or now.
    this.onBody(src, h.end, end);
  }

  private append(chunk: Buffer, s: number, e: number): Buffer {
    const need = this.bufLen + (e - s);
    let buf = this.buf;
    if (buf === null || buf.length < need) {
      const bigger = Buffer.allocUnsafe(Math.max(HEAD_BUFFER, need * 2));
      if (buf !== null) buf.copy(bigger, 0, 0, this.bufLen);
      this.buf = buf = bigger;
    }
    chunk.copy(buf, this.bufLen, s, e);
    this.bufLen = need;
    return buf;
  }

  private onBody(src: Buffer, start: number, end: number): void {
    const user = this.user!;
    if (this.framing === Framing.untilClose) return user.upstreamBody(src, start, end);
    if (this.framing === Framing.length) {
      const n = Math.min(this.left, end - start);
      this.left -= n;
      user.upstreamBody(src, start, start + n);
      if (this.left === 0 && this.phase === BODY) this.done(start + n === end && this.head.keepAlive);
      return;
    }
    const c = this.chunked;
    let p = start;
    for (;;) {
      const r = c.next(src, p, end);
      if (r === CHUNK_NEED_MORE) {
        user.upstreamBody(src, start, end);
        return;
      }
      if (r === CHUNK_REFUSED) return this.fail('UPSTREAM_BAD_RESPONSE');
      p = c.offset;
      if (r === CHUNK_DONE) {
        user.upstreamBody(src, start, p);
        if (this.phase === BODY) this.done(p === end && this.head.keepAlive);
        return;
      }
    }
  }

  private done(keep: boolean): void {
    const user = this.user;
    this.user = null;
    if (keep && user !== null && user.bodyDone && !this.pool.closed) {
      this.phase = IDLE;
      if (this.socket.isPaused()) this.socket.resume();
      this.pool.release(this);
    } else {
      this.pool.forget(this);
      this.phase = GONE;
      this.socket.destroy();
    }
    user?.upstreamDone();
  }

  /** Back on the free list: closes after upstreamIdleTimeout. */
  idleFrom(now: number): void {
    this.deadline = now + this.pool.timeouts.idleMs;
  }

  /** For the pool: take it from the free list if it is still good. */
  takeIfUsable(): boolean {
    return this.usable;
  }
}

/** One target's raw connections. */
export class RawPool {
  private readonly free: UpstreamConn[] = [];
  readonly all = new Set<UpstreamConn>();
  closed = false;

  constructor(
    readonly target: Target,
    readonly timeouts: UpstreamTimeouts,
  ) {}

  /** A connection for `user`: an idle one (ready at once: returns it) or a new one (connecting). */
  acquire(user: UpstreamUser, headRequest: boolean, now: number): UpstreamConn {
    const free = this.free;
    while (free.length > 0) {
      const c = free.pop()!;
      if (c.takeIfUsable()) {
        c.reused = true;
        c.assign(user, headRequest, now);
        return c;
      }
      this.all.delete(c);
      c.destroy();
    }
    const c = new UpstreamConn(this, now);
    this.all.add(c);
    c.assign(user, headRequest, now);
    return c;
  }

  release(c: UpstreamConn): void {
    if (this.free.length >= MAX_FREE) {
      this.forget(c);
      c.destroy();
      return;
    }
    c.idleFrom(c.now);
    this.free.push(c);
  }

  forget(c: UpstreamConn): void {
    this.all.delete(c);
    const i = this.free.indexOf(c);
    if (i >= 0) this.free.splice(i, 1);
  }

  sweep(now: number): void {
    for (const c of this.all) c.sweep(now);
  }

  /** Closes the idle connections (a drain); those in use close after their response. */
  closeIdle(): void {
    for (const c of this.free.splice(0)) {
      this.all.delete(c);
      c.destroy();
    }
  }

  destroy(): void {
    this.closed = true;
    this.closeIdle();
    for (const c of this.all) c.destroy();
    this.all.clear();
  }
}
