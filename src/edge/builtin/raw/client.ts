// One client connection on the raw engine: request heads parsed straight from each read (a partial
// head is copied to a per-connection buffer and parsed again with the next read), bodies framed by
// Content-Length or chunked and forwarded as their raw bytes, pipelined requests held until the
// answer before them is complete. Whatever is not the common case (a refused head, Upgrade,
// Expect, HTTP/1.0, OPTIONS and other methods, Connection naming fields) goes to the node:http
// server at that request boundary, with the bytes read so far put back on the socket: that
// connection is node's from then on, answered exactly as with `engine: node`.
import type { Socket } from 'node:net';
import {
  CHUNK_DONE,
  CHUNK_NEED_MORE,
  CHUNK_REFUSED,
  ChunkedBody,
  type ChunkedLimits,
} from '../http1/chunked.js';
import { REFUSAL_STATUS } from '../http1/fields.js';
import {
  Framing,
  HEAD_INCOMPLETE,
  HEAD_REFUSED,
  RequestHead,
  TargetForm,
  type HeadLimits,
} from '../http1/request-head.js';
import { RawExchange, type ClientSide, type RawContext } from './exchange.js';
import { upstreamRequestHead, type ForwardInfo, type PeerInfo } from './heads.js';
import { copyOf } from './bytes.js';
import { writeDirect } from './direct-write.js';
import { CLIENT_READ_BUFFER, readAsStream, readIntoShared } from './read-buffer.js';
import { RequestView } from './request-view.js';

/** What a client connection needs from the engine. */
export interface ClientContext extends RawContext {
  readonly limits: HeadLimits;
  readonly chunkedLimits: ChunkedLimits;
  readonly headerTimeoutMs: number;
  /** proxy.clientRequestTimeout: the whole request (head and body) within it. */
  readonly requestTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly bodyTimeoutMs: number;
  readonly sendTimeoutMs: number;
  peerOf(socket: Socket): PeerInfo;
  /** Gives the connection to the node:http server, `rest` put back first. */
  handOver(socket: Socket, rest: Buffer | null): void;
  forget(c: ClientConn): void;
  /** The proxy is closing: no request more on a connection. */
  readonly stopped: boolean;
}

const FAST_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE']);

const HEAD = 0;
const BODY = 1;
const WAIT = 2;
const GONE = 3;

const TIMEOUT_408 = Buffer.from(
  'HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: 24\r\nconnection: close\r\n\r\nRequest Timeout (baton)\n',
  'latin1',
);

type WithMessage = Socket & { _httpMessage?: unknown };

/** src[s, e) as a buffer the exchange may keep: a copy if src is the shared read buffer. */
function owned(src: Buffer, s: number, e: number): Buffer {
  return src === CLIENT_READ_BUFFER ? copyOf(src, s, e) : src.subarray(s, e);
}

export class ClientConn implements ClientSide {
  private readonly head = new RequestHead();
  private readonly chunked = new ChunkedBody();
  private readonly view: RequestView;
  private readonly ex: RawExchange;
  private readonly peer: PeerInfo;
  private readonly info: ForwardInfo = { requestId: '' };
  private phase = HEAD;
  /** A partial head (or pipelined bytes) carried to the next read. */
  private buf: Buffer | null = null;
  private bufLen = 0;
  private stash: Buffer | null = null;
  private bodyLeft = 0;
  /** The body is read but not forwarded: its answer went out already. */
  private sinking = false;
  closeAfter = false;
  private ended = false;
  /** Checked by the engine's sweep; kind by phase. */
  private deadline: number;
  /** When the request being read must be in whole (clientRequestTimeout). */
  private requestBy = 0;
  private lastRead = 0;
  private lastBacklog = 0;
  private sendSince = 0;

  constructor(
    readonly socket: Socket,
    private readonly ctx: ClientContext,
    now: number,
  ) {
    this.view = new RequestView(socket, this.head);
    this.ex = new RawExchange(this.view.asMessage(), this, ctx);
    this.peer = ctx.peerOf(socket);
    this.deadline = now + ctx.headerTimeoutMs;
    socket.setNoDelay(true);
    if (!readIntoShared(socket, this.onRead)) socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('close', this.onClose);
    socket.on('drain', this.onDrain);
    socket.on('error', this.onError);
  }

  // --- ClientSide ----------------------------------------------------------------------------

  write(b: Buffer): boolean {
    return writeDirect(this.socket, b);
  }
  queued(): boolean {
    return this.socket.writableLength > 0;
  }
  cork(): void {
    this.socket.cork();
  }
  uncork(): void {
    this.socket.uncork();
  }
  pauseBody(): void {
    this.socket.pause();
  }
  resumeBody(): void {
    if (this.phase === BODY) this.socket.resume();
  }
  destroy(): void {
    this.socket.destroy();
  }

  exchangeDone(close: boolean): void {
    (this.socket as WithMessage)._httpMessage = null;
    if (this.phase === GONE) return;
    if (close || this.ended || this.ctx.stopped) {
      this.phase = GONE;
      this.socket.end();
      this.socket.destroySoon();
      return;
    }
    // The body may still be coming (the target answered early): it is read and dropped.
    if (this.phase === BODY) {
      this.sinking = true;
      this.socket.resume();
      return;
    }
    this.nextRequest();
  }

  private nextRequest(): void {
    this.phase = HEAD;
    this.deadline = Date.now() + this.ctx.idleTimeoutMs;
    const stash = this.stash;
    this.stash = null;
    this.socket.resume();
    if (stash !== null) this.process(stash, 0, stash.length);
  }

  // --- reading -------------------------------------------------------------------------------

  private readonly onData = (chunk: Buffer): void => {
    this.process(chunk, 0, chunk.length);
  };

  /** A read into CLIENT_READ_BUFFER (read-buffer.ts): what is kept of it is copied. */
  private readonly onRead = (n: number, buf: Buffer): boolean => {
    this.process(buf, 0, n);
    return true;
  };

  private process(src: Buffer, p: number, end: number): void {
    for (;;) {
      const phase = this.phase;
      if (phase === HEAD) {
        if (this.readHead(src, p, end) === false) return;
        src = this.src;
        p = this.head.end;
        end = this.srcEnd;
      } else if (phase === BODY) {
        p = this.readBody(src, p, end);
        if (p < 0) return;
      } else {
        if (phase === WAIT && p < end) this.keep(src, p, end);
        return;
      }
    }
  }

  /** Where the last complete head lies (the read, or this.buf). */
  private src: Buffer = Buffer.alloc(0);
  private srcEnd = 0;

  /** Parses a head from src[p, end) (after any partial one); true once a request started. */
  private readHead(src: Buffer, p: number, end: number): boolean {
    const h = this.head;
    let s = src;
    let e = end;
    let now = 0;
    if (this.bufLen > 0) {
      s = this.append(src, p, end);
      e = this.bufLen;
    } else {
      if (p >= end) return false;
      h.reset(p);
      now = Date.now();
      this.deadline = now + this.ctx.headerTimeoutMs;
      this.requestBy = now + this.ctx.requestTimeoutMs;
    }
    const r = h.parse(s, e, this.ctx.limits);
    if (r === HEAD_INCOMPLETE) {
      if (s === src) {
        const start = h.start;
        this.bufLen = 0;
        this.append(src, start, end);
        h.rebase(0);
      }
      return false;
    }
    this.bufLen = 0;
    if (r === HEAD_REFUSED || !this.fast()) {
      this.handOver(s.subarray(h.start, e));
      return false;
    }
    this.src = s;
    this.srcEnd = e;
    this.startRequest(s, now === 0 ? Date.now() : now);
    return true;
  }

  /** The common case, served here; anything else is node:http's. */
  private fast(): boolean {
    const h = this.head;
    return (
      h.versionMinor === 1 &&
      !h.hasUpgrade &&
      !h.expectContinue &&
      !h.expectOther &&
      !h.connectionOther &&
      h.targetForm !== TargetForm.asterisk &&
      FAST_METHODS.has(h.method)
    );
  }

  private startRequest(src: Buffer, now: number): void {
    const h = this.head;
    this.view.reset(src, src === CLIENT_READ_BUFFER);
    this.closeAfter = !h.keepAlive || this.ctx.stopped;
    const upHead = upstreamRequestHead(h, src, this.peer, this.info, this.ex.requestScratch());
    this.sinking = false;
    const ex = this.ex;
    if (h.framing === Framing.none) {
      this.phase = WAIT;
      ex.bodyDone = true;
      this.deadline = 0;
    } else {
      this.phase = BODY;
      ex.bodyDone = false;
      this.bodyLeft = h.bodyLength;
      if (h.framing === Framing.chunked) this.chunked.reset(this.ctx.chunkedLimits);
      this.lastRead = this.socket.bytesRead;
      this.deadline = now + this.ctx.bodyTimeoutMs;
    }
    (this.socket as WithMessage)._httpMessage = ex;
    ex.begin(upHead, this.info.requestId, h.method === 'HEAD', now);
  }

  /** Frames body bytes in src[p, end); returns where the body ended, or -1 when all was used. */
  private readBody(src: Buffer, p: number, end: number): number {
    const ex = this.ex;
    if (this.head.framing === Framing.length) {
      const n = Math.min(this.bodyLeft, end - p);
      this.bodyLeft -= n;
      if (!this.sinking && n > 0) ex.body(owned(src, p, p + n));
      if (this.bodyLeft > 0) return -1;
      this.bodyEnded();
      return p + n;
    }
    const c = this.chunked;
    let q = p;
    for (;;) {
      const r = c.next(src, q, end);
      if (r === CHUNK_REFUSED) {
        const status = REFUSAL_STATUS[c.refusal!];
        if (this.sinking) this.socket.destroy();
        else ex.bodyRefused(status === 413 ? 413 : 400, this.ctx.chunkedLimits.maxBodySize);
        return -1;
      }
      if (r === CHUNK_NEED_MORE) {
        q = end;
        break;
      }
      q = c.offset;
      if (r === CHUNK_DONE) break;
    }
    // Raw bytes up to where the framer stopped: chunk-size lines, data and trailer alike.
    if (!this.sinking && q > p) ex.body(owned(src, p, q));
    if (!c.done) return -1;
    this.bodyEnded();
    return q;
  }

  private bodyEnded(): void {
    this.ex.bodyDone = true;
    if (this.sinking) return this.nextRequest();
    this.phase = WAIT;
    this.deadline = 0;
  }

  /** Bytes after a request whose answer is still under way: kept, and the socket paused. */
  private keep(src: Buffer, p: number, end: number): void {
    const b = src.subarray(p, end);
    this.stash = this.stash === null ? Buffer.from(b) : Buffer.concat([this.stash, b]);
    this.socket.pause();
  }

  private append(src: Buffer, p: number, end: number): Buffer {
    const need = this.bufLen + (end - p);
    let buf = this.buf;
    if (buf === null || buf.length < need) {
      const bigger = Buffer.allocUnsafe(Math.max(4096, need * 2));
      if (buf !== null) buf.copy(bigger, 0, 0, this.bufLen);
      this.buf = buf = bigger;
    }
    src.copy(buf, this.bufLen, p, end);
    this.bufLen = need;
    return buf;
  }

  private handOver(rest: Buffer): void {
    const s = this.socket;
    s.pause();
    s.off('data', this.onData);
    s.off('end', this.onEnd);
    s.off('close', this.onClose);
    s.off('drain', this.onDrain);
    s.off('error', this.onError);
    readAsStream(s);
    this.phase = GONE;
    this.ctx.forget(this);
    const stash = this.stash;
    const all = stash === null ? Buffer.from(rest) : Buffer.concat([rest, stash]);
    this.ctx.handOver(s, all.length > 0 ? all : null);
  }

  // --- socket events and deadlines -------------------------------------------------------------

  private readonly onDrain = (): void => {
    this.sendSince = 0;
    this.ex.clientDrain();
  };

  /** The client half-closed: as node:http (httpAllowHalfOpen off), a request under way is aborted. */
  private readonly onEnd = (): void => {
    this.ended = true;
    if (this.phase !== HEAD) return void this.socket.destroy();
    this.phase = GONE;
    this.socket.end();
  };

  private readonly onClose = (): void => {
    this.phase = GONE;
    this.ctx.forget(this);
    this.ex.clientClosed();
  };

  private readonly onError = (): void => {
    this.socket.destroy();
  };

  /** Closes the connection if no request is under way on it. */
  closeIfIdle(): void {
    if (this.phase === HEAD && this.bufLen === 0) this.socket.destroy();
  }

  /** The engine's sweep: header, idle, body and send timeouts. */
  sweep(now: number): void {
    const s = this.socket;
    const backlog = s.writableLength;
    if (backlog > 0) {
      if (this.sendSince === 0 || backlog < this.lastBacklog) {
        this.sendSince = now;
        this.lastBacklog = backlog;
      } else if (now - this.sendSince >= this.ctx.sendTimeoutMs) {
        this.ex.sendStalled();
        s.destroy();
        return;
      }
    } else this.sendSince = 0;
    if (this.deadline === 0 || (now < this.deadline && (this.phase !== BODY || now < this.requestBy))) return;
    if (this.phase === HEAD) {
      // Idle between requests: closed quietly; a head begun and not finished: 408.
      this.phase = GONE;
      if (this.bufLen > 0) {
        s.end(TIMEOUT_408);
        s.destroySoon();
      } else s.destroy();
      return;
    }
    if (this.phase === BODY && !this.sinking) {
      const read = s.bytesRead;
      if (now < this.requestBy && (read !== this.lastRead || s.isPaused())) {
        this.lastRead = read;
        this.deadline = now + this.ctx.bodyTimeoutMs;
        return;
      }
      this.deadline = 0;
      this.ex.bodyStalled();
    } else if (this.phase === BODY) s.destroy();
  }
}
