// One request on the raw engine, from its parsed head to the end of its answer: the target comes
// from the same route table, split and balancers as the node:http path (BuiltinProxy.pickTarget),
// failures follow exchange.ts's retry rules (its code sets), and the proxy's stats, traffic
// counters and access log count it through the same `finished`. One object per client connection,
// reused by each of its requests (they come one after another), with no closure per request.
import type { IncomingMessage } from 'node:http';
import {
  IDEMPOTENT,
  NOT_SENT,
  RESET,
  TARGET_DOWN,
  TIMEOUTS,
  type ExchangeFailure,
  type ExchangeHost,
  type FinishedRequest,
} from '../exchange.js';
import type { ResponseHead } from '../http1/response-head.js';
import { Framing } from '../http1/request-head.js';
import type { Target, Waiter } from '../target.js';
import { copyOf, putSpan } from './bytes.js';
import { downstreamResponseHead, ownAnswer, type ResponseAdditions } from './heads.js';
import type { RawPool, UpstreamConn, UpstreamUser } from './upstream.js';

/** What the raw engine needs from its proxy (BuiltinProxy): the node path's routing, and more. */
export interface RawHost extends Pick<
  ExchangeHost,
  'pickTarget' | 'laneFor' | 'maxAttempts' | 'retryTimeoutMs'
> {
  readonly versionHeader: boolean;
  /** False while retiring: every answer closes its connection. */
  readonly keepAlive: boolean;
  /** A request enters (in flight until `finished`). */
  requestStarted(): void;
  finished(r: FinishedRequest): void;
  clientTimedOut(r: FinishedRequest, what: 'body' | 'send'): void;
}

/** What an exchange needs of its client connection (raw/client.ts). */
export interface ClientSide {
  /** Writes to the client; false: its buffer is full (wait for clientDrain). */
  write(b: Buffer): boolean;
  /** Bytes written are still queued (not all taken by the kernel): their buffers are held. */
  queued(): boolean;
  cork(): void;
  uncork(): void;
  pauseBody(): void;
  resumeBody(): void;
  /** The exchange is over; `close`: the connection ends after its answer. */
  exchangeDone(close: boolean): void;
  destroy(): void;
  /** The client's request asked for the connection to end after it. */
  readonly closeAfter: boolean;
}

export interface RawContext {
  readonly host: RawHost;
  readonly hsts: string | null;
  poolFor(target: Target): RawPool;
}

type Additions = { -readonly [K in keyof ResponseAdditions]: ResponseAdditions[K] };

/** A body of known length up to this size goes out in the response head's buffer, in one write. */
const JOIN_MAX = 16 * 1024;

/** Body bytes kept for a retry; a larger body cannot be sent again once sent. */
const HOLD_MAX = 64 * 1024;

/** The reused head buffers' size; a head (with its small body) that needs more gets its own. */
const SCRATCH = 4096;

export class RawExchange implements FinishedRequest, Waiter, UpstreamUser {
  target: Target | undefined = undefined;
  status = 0;
  failure: ExchangeFailure | undefined = undefined;
  started = 0;
  requestId = '';
  attempts = 0;
  private tried: Target[] | null = null;
  private canary: boolean | null = null;
  private setCookie: string | null = null;
  private up: UpstreamConn | null = null;
  private upHead: Buffer = Buffer.alloc(0);
  private headRequest = false;
  /** Body bytes not yet written on this attempt, and all of them so far (null: over HOLD_MAX). */
  private pending: Buffer[] = [];
  private held: Buffer[] | null = [];
  private heldBytes = 0;
  private bodyWritten = false;
  /** The head went to the current attempt's socket. */
  private sent = false;
  private responseStarted = false;
  /** The response head (its first responseHeadLength bytes) and room for a small body. */
  private responseHead: Buffer | null = null;
  private responseHeadLength = 0;
  /**
   * Buffers for request and response heads, reused from one request to the next while the
   * socket they went to took them whole (a write that is queued keeps its buffer: null, a new one).
   */
  private requestBuf: Buffer | null = null;
  private responseBuf: Buffer | null = null;
  /** What the proxy adds to the response head, reused. */
  private readonly additions: Additions = {
    requestId: '',
    version: '',
    setCookie: null,
    hsts: null,
    close: false,
  };
  private staleRetried = false;
  private close = false;
  private stalled = false;
  done = true;
  private attemptDone = true;

  constructor(
    readonly req: IncomingMessage,
    private readonly client: ClientSide,
    private readonly ctx: RawContext,
  ) {}

  /** Where the client side writes the next request head (upstreamRequestHead). */
  requestScratch(): Buffer {
    return (this.requestBuf ??= Buffer.allocUnsafe(SCRATCH));
  }

  /** A new request: `upHead` is its head for the target. */
  begin(upHead: Buffer, requestId: string, headRequest: boolean, now: number): void {
    const host = this.ctx.host;
    this.target = undefined;
    this.status = 0;
    this.failure = undefined;
    this.started = now;
    this.requestId = requestId;
    this.attempts = 0;
    this.tried = null;
    this.upHead = upHead;
    this.headRequest = headRequest;
    this.pending.length = 0;
    if (this.held === null) this.held = [];
    else this.held.length = 0;
    this.heldBytes = 0;
    this.bodyWritten = false;
    this.responseStarted = false;
    this.responseHead = null;
    this.staleRetried = false;
    this.stalled = false;
    this.close = this.client.closeAfter || !host.keepAlive;
    this.done = false;
    const lane = host.laneFor(this.req);
    this.canary = lane === null ? null : lane.canary;
    this.setCookie = lane === null ? null : lane.setCookie;
    host.requestStarted();
    this.attempt(now);
  }

  private attempt(now: number): void {
    const target = this.ctx.host.pickTarget(this.req, now, this.tried, this.canary);
    if (target === undefined) {
      const first = this.attempts === 0;
      this.fail(first ? 503 : 502, first ? 'no-target' : (this.failure ?? 'upstream-error'));
      return;
    }
    this.attempts++;
    this.attemptOn(target, now);
  }

  private attemptOn(target: Target, now: number): void {
    this.target = target;
    this.attemptDone = false;
    this.sent = false;
    if (this.held !== null && this.bodyWritten) this.pending = this.held.slice();
    target.begin();
    target.waiting.add(this);
    const up = this.ctx.poolFor(target).acquire(this, this.headRequest, now);
    this.up = up;
    if (!up.connecting) this.upstreamReady();
    else if (this.pending.length > 0 || !this.bodyDone) this.client.pauseBody();
  }

  /** Set by the client side once the whole request body was read (or there is none). */
  bodyDone = true;

  // --- the request body, from the client -----------------------------------------------------

  /** Body bytes from the client; `b` may be kept (for a retry) and written later. */
  body(b: Buffer): void {
    if (this.done) return;
    if (this.held !== null) {
      if (this.heldBytes + b.length <= HOLD_MAX) {
        this.held.push(b);
        this.heldBytes += b.length;
      } else this.held = null;
    }
    const up = this.up;
    if (up === null || !this.sent) {
      this.pending.push(b);
      this.client.pauseBody();
      return;
    }
    this.bodyWritten = true;
    if (!up.write(b)) this.client.pauseBody();
  }

  /** The client's body broke its framing or passed maxBodySize (`status`: 400 or 413). */
  bodyRefused(status: number, max: number): void {
    if (this.done) return;
    this.dropUpstream();
    const tooLarge = status === 413;
    if (this.responseStarted) {
      this.done = true;
      this.failure = tooLarge ? 'body-too-large' : 'bad-request';
      this.client.destroy();
      this.finish();
      return;
    }
    this.close = true;
    this.fail(status, tooLarge ? 'body-too-large' : 'bad-request', `request body larger than ${max} bytes`);
  }

  /** The client sent no body byte for clientBodyTimeout. */
  bodyStalled(): void {
    if (this.done) return;
    this.stalled = true;
    this.ctx.host.clientTimedOut(this, 'body');
    if (this.responseStarted) return this.client.destroy();
    this.dropUpstream();
    this.close = true;
    this.fail(408, 'client-timeout');
  }

  /** The client took none of the answer for clientSendTimeout: its connection is being closed. */
  sendStalled(): void {
    this.stalled = true;
    if (!this.done) this.ctx.host.clientTimedOut(this, 'send');
  }

  /** The client's connection closed. */
  clientClosed(): void {
    if (this.done) return;
    this.done = true;
    this.failure = this.stalled ? 'client-timeout' : 'client-closed';
    this.dropUpstream();
    this.finish();
  }

  clientDrain(): void {
    const up = this.up;
    if (up !== null && up.socket.isPaused()) up.socket.resume();
  }

  // --- the target's side (UpstreamUser) --------------------------------------------------------

  upstreamReady(): void {
    const up = this.up!;
    this.sent = true;
    const pending = this.pending;
    let ok: boolean;
    if (pending.length === 0) ok = up.write(this.upHead);
    else {
      up.socket.cork();
      up.write(this.upHead);
      for (let i = 0; i < pending.length; i++) up.write(pending[i]!);
      up.socket.uncork();
      ok = !up.socket.writableNeedDrain;
      this.bodyWritten = true;
      pending.length = 0;
    }
    if (up.socket.writableLength > 0) this.requestBuf = null;
    if (ok && !this.bodyDone) this.client.resumeBody();
  }

  upstreamDrain(): void {
    if (!this.done && !this.bodyDone) this.client.resumeBody();
  }

  upstreamHead(h: ResponseHead, src: Buffer): void {
    if (this.done) return;
    const target = this.target!;
    target.waiting.delete(this);
    this.status = h.status;
    this.responseStarted = true;
    if (h.framing === Framing.untilClose) this.close = true;
    const a = this.additions;
    a.requestId = this.requestId;
    a.version = this.ctx.host.versionHeader ? target.spec.version : '';
    a.setCookie = this.setCookie;
    a.hsts = this.ctx.hsts;
    a.close = this.close;
    // A small body of known length goes out in the head's buffer (one write(2) for both).
    const room = h.framing === Framing.length && h.bodyLength <= JOIN_MAX ? h.bodyLength : 0;
    const head = downstreamResponseHead(h, src, a, room, (this.responseBuf ??= Buffer.allocUnsafe(SCRATCH)));
    this.responseHead = head;
    this.responseHeadLength = head.length - room;
  }

  upstreamBody(src: Buffer, start: number, end: number): void {
    if (this.done) return;
    const c = this.client;
    const head = this.responseHead;
    let ok = true;
    if (head !== null) {
      this.responseHead = null;
      const n = end - start;
      const len = this.responseHeadLength;
      if (len + n <= head.length) {
        // One buffer, one write(2): cheaper than a writev of two for a small body.
        const all = putSpan(head, len, src, start, end);
        ok = c.write(all === head.length ? head : head.subarray(0, all));
      } else {
        const joined = Buffer.allocUnsafe(len + n);
        head.copy(joined, 0, 0, len);
        src.copy(joined, len, start, end);
        ok = c.write(joined);
      }
      if (c.queued()) this.responseBuf = null;
    } else if (end > start) ok = c.write(copyOf(src, start, end));
    if (!ok) this.up?.socket.pause();
  }

  upstreamDone(): void {
    this.up = null;
    this.endAttempt();
    if (this.done) return;
    if (this.responseHead !== null) this.upstreamBody(this.responseHead, 0, 0);
    this.target!.recordSuccess();
    this.done = true;
    this.finish();
  }

  upstreamFailed(code: string, reused: boolean): void {
    this.up = null;
    this.endAttempt();
    if (this.done) return;
    const target = this.target!;
    const now = Date.now();
    // A keep-alive socket the target closed as it was taken: once more on a new one, uncounted.
    if (reused && !this.responseStarted && !this.staleRetried && RESET.has(code) && this.retryable(code)) {
      this.staleRetried = true;
      this.attemptOn(target, now);
      return;
    }
    const timeout = TIMEOUTS.has(code);
    target.recordFailure(now);
    this.failure = timeout ? 'upstream-timeout' : 'upstream-error';
    if (this.responseStarted) {
      // Bytes already reached the client: the only honest signal left is a cut connection.
      this.done = true;
      this.client.destroy();
      this.finish();
      return;
    }
    if (this.canRetry(code)) {
      target.stats.retries++;
      (this.tried ??= []).push(target);
      this.attempt(now);
      return;
    }
    this.fail(timeout ? 504 : 502, this.failure);
  }

  /** Waiter: the target stopped answering health checks. */
  abandon(_reason: string): boolean {
    if (this.done || this.attemptDone || this.responseStarted) return false;
    if (!this.canRetry(TARGET_DOWN)) return false;
    this.dropUpstream();
    this.upstreamFailed(TARGET_DOWN, false);
    return true;
  }

  // --- internals ---------------------------------------------------------------------------

  private retryable(code: string): boolean {
    // A body partly sent and not held cannot be sent again.
    if (this.bodyWritten && this.held === null) return false;
    if (NOT_SENT.has(code)) return true;
    const idempotent = IDEMPOTENT.has(this.req.method ?? '');
    if (code === TARGET_DOWN) return idempotent || !this.sent;
    if (idempotent) return true;
    return !this.sent && RESET.has(code);
  }

  private canRetry(code: string): boolean {
    if (this.attempts >= this.ctx.host.maxAttempts) return false;
    if (Date.now() - this.started > this.ctx.host.retryTimeoutMs) return false;
    return this.retryable(code);
  }

  private dropUpstream(): void {
    const up = this.up;
    if (up === null) return;
    this.up = null;
    up.destroy();
    this.endAttempt();
  }

  private endAttempt(): void {
    if (this.attemptDone) return;
    this.attemptDone = true;
    const t = this.target!;
    t.waiting.delete(this);
    t.end();
  }

  private finish(): void {
    this.ctx.host.finished(this);
    this.client.exchangeDone(this.close);
  }

  private fail(status: number, failure: ExchangeFailure, tooLargeText?: string): void {
    if (status === 502 && failure === 'upstream-timeout') status = 504;
    this.done = true;
    this.status = status;
    this.failure = failure;
    if (!this.responseStarted) {
      if (status === 413 || status === 400 || status === 408) this.close = true;
      const [reason, text] =
        status === 413
          ? ['Content Too Large', tooLargeText ?? 'request body too large']
          : status === 400
            ? ['Bad Request', 'bad request: malformed request body']
            : status === 408
              ? ['Request Timeout', 'the request body stopped coming (proxy.clientBodyTimeout)']
              : status === 503
                ? ['Service Unavailable', 'no target available']
                : status === 504
                  ? ['Gateway Timeout', 'upstream timed out']
                  : ['Bad Gateway', 'upstream failed'];
      const hsts = this.ctx.hsts === null ? '' : `strict-transport-security: ${this.ctx.hsts}\r\n`;
      this.client.write(ownAnswer(status, reason, text, this.requestId, hsts, this.close));
    }
    this.finish();
  }
}
