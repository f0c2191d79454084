// One client request through the proxy: pick a target, forward with undici's streaming
// dispatch, relay the response as it comes, and retry on another target when that is safe.
// This is the hot path: one object per request, no closures per chunk, no logging unless on.
// A client that stalls (stops sending its body, or stops reading the answer) is let go after
// clientBodyTimeout / clientSendTimeout; timers exist only while a body comes or a write waits.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { constants as h2constants, type Http2ServerResponse } from 'node:http2';
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { downstreamResponseHeaders, h2ResponseFields } from './headers.js';
import type { LaneDecision } from './split.js';
import type { Target, Waiter } from './target.js';

/** What the exchange needs from its proxy; kept narrow so the hot path stays obvious. */
export interface ExchangeHost {
  pickTarget(
    req: IncomingMessage,
    now: number,
    tried: readonly Target[] | null,
    canary: boolean | null,
  ): Target | undefined;
  /** The request's side of a canary split, or null when there is none. */
  laneFor(req: IncomingMessage): LaneDecision | null;
  readonly maxAttempts: number;
  readonly retryTimeoutMs: number;
  /** proxy.clientBodyTimeout and proxy.clientSendTimeout. */
  readonly clientBodyTimeoutMs: number;
  readonly clientSendTimeoutMs: number;
  /** proxy.versionHeader: name the answering target's version in each response. */
  readonly versionHeader: boolean;
  /** The client stalled past one of them; its connection is being closed (for the log). */
  clientTimedOut(ex: Exchange, what: 'body' | 'send'): void;
  finished(ex: Exchange): void;
}

/** What the proxy counts and logs of a finished request (an Exchange, or a declined upgrade). */
export interface FinishedRequest {
  readonly req: IncomingMessage;
  readonly target: Target | undefined;
  readonly status: number;
  readonly failure: ExchangeFailure | undefined;
  readonly started: number;
  readonly requestId: string;
  readonly attempts: number;
}

export const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

/** Errors where nothing reached the target: safe to retry any request. */
export const NOT_SENT = new Set([
  'ECONNREFUSED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EADDRNOTAVAIL',
  'ENOTFOUND',
  'EAI_AGAIN',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_CLOSED',
  'UND_ERR_DESTROYED',
]);

/** The socket failed under the request: a reset or close of a reused keep-alive connection. */
export const RESET = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET']);

export const TIMEOUTS = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT', 'ETIMEDOUT']);

/**
 * undici would not send the request as given (an invalid path or header, say): the request is at
 * fault, and nothing reached the target.
 */
const UNSENDABLE = new Set(['UND_ERR_INVALID_ARG', 'UND_ERR_NOT_SUPPORTED']);

/** The attempt was abandoned: its target stopped answering health checks (Target.abandonWaiting). */
export const TARGET_DOWN = 'BATON_E_TARGET_DOWN';

/**
 * Why an exchange ended without a target's full answer, for logs and the access log.
 * `client-closed` and `client-timeout` (clientBodyTimeout, clientSendTimeout) are the client's
 * doing: counted as client aborts, not as the target's errors.
 */
export type ExchangeFailure =
  | 'no-target'
  | 'upstream-error'
  | 'upstream-timeout'
  | 'client-closed'
  | 'client-timeout'
  | 'body-too-large'
  | 'bad-request';

/** The client gave up, or stalled until the proxy gave up on it: no answer of the target's. */
export function byClient(failure: ExchangeFailure | undefined): boolean {
  return failure === 'client-closed' || failure === 'client-timeout';
}

export class Exchange implements Dispatcher.DispatchHandler, Waiter, FinishedRequest {
  readonly started: number;
  target: Target | undefined = undefined;
  status = 0;
  failure: ExchangeFailure | undefined = undefined;
  error: Error | undefined = undefined;
  attempts = 0;
  private tried: Target[] | null = null;
  /** Side of a canary split (null: no split), and the bucket cookie to hand out. */
  private canary: boolean | null = null;
  private setCookie: string | null = null;
  private abortUpstream: ((err?: Error) => void) | null = null;
  private resumeUpstream: (() => void) | null = null;
  private responseStarted = false;
  private requestSent = false;
  private done = false;
  private attemptDone = false;
  /** Set when the target was abandoned before undici connected the request (see onConnect). */
  private abandoned: Error | null = null;
  /** Armed while the body comes in: fires when the client sent nothing for clientBodyTimeout. */
  private bodyTimer: NodeJS.Timeout | null = null;
  private bodyBytesRead = 0;
  /** Armed from the first write the client did not take at once (see watchSend). */
  private sendTimer: NodeJS.Timeout | null = null;
  private sendBacklog = 0;
  /** The proxy closed the connection because the client stalled. */
  private clientStalled = false;
  /** An HTTP/2 stream (h2/serve.ts): no reason phrase, no Connection header, its own buffer. */
  private readonly h2: boolean;

  constructor(
    private readonly host: ExchangeHost,
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    readonly headers: string[],
    readonly requestId: string,
    /** The request body to stream upstream, or null when it has none. */
    private readonly body: Readable | null,
    now: number,
  ) {
    this.started = now;
    this.h2 = req.httpVersionMajor === 2;
    res.on('close', this.onClientClose);
    // An h2 stream reset by the client: node:http2's response does not always tell (a HEAD's).
    if (this.h2) (res as unknown as Http2ServerResponse).stream.once('close', this.onClientClose);
    const lane = host.laneFor(req);
    if (lane !== null) {
      this.canary = lane.canary;
      this.setCookie = lane.setCookie;
    }
    if (body !== null && !req.complete) {
      this.bodyBytesRead = req.socket.bytesRead;
      this.bodyTimer = setTimeout(this.onBodyIdle, host.clientBodyTimeoutMs).unref();
      req.once('end', this.stopBodyTimer);
    }
  }

  /** Dispatches to the next target; answers 502/503 itself when none is left. */
  start(now: number): void {
    const target = this.host.pickTarget(this.req, now, this.tried, this.canary);
    if (target === undefined) {
      this.fail(
        this.attempts === 0 ? 503 : 502,
        this.attempts === 0 ? 'no-target' : (this.failure ?? 'upstream-error'),
      );
      return;
    }
    this.target = target;
    this.attempts++;
    this.attemptDone = false;
    this.requestSent = false;
    this.abandoned = null;
    target.begin();
    target.waiting.add(this);
    target.pool.dispatch(
      {
        path: this.req.url ?? '/',
        method: this.req.method as Dispatcher.HttpMethod,
        headers: this.headers,
        body: this.body,
        // Only when the client closes; timeouts come from the pool's options.
        reset: false,
      },
      this,
    );
  }

  // --- undici's handler protocol ---------------------------------------------------------

  onConnect(abort: (err?: Error) => void): void {
    this.abortUpstream = abort;
    if (this.done) abort(new Error('client closed'));
    else if (this.abandoned) abort(this.abandoned);
  }

  abandon(reason: string): boolean {
    if (this.done || this.attemptDone || this.responseStarted) return false;
    // A request that may have run there (written, not idempotent) keeps waiting for its answer:
    // a target slow to answer health checks may still answer it.
    if (!this.canRetry(TARGET_DOWN)) return false;
    const err = Object.assign(new Error(reason), { code: TARGET_DOWN });
    if (this.abortUpstream) this.abortUpstream(err);
    else this.abandoned = err;
    return true;
  }

  onRequestSent(): void {
    this.requestSent = true;
  }

  onBodySent(): void {
    this.requestSent = true;
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean {
    if (statusCode < 200) return true; // 1xx from the target: the proxy answered Expect itself.
    if (this.done) return false;
    this.status = statusCode;
    this.responseStarted = true;
    this.resumeUpstream = resume;
    const res = this.res;
    const version = this.host.versionHeader ? this.target!.spec.version : '';
    const head = downstreamResponseHeaders(rawHeaders, this.requestId, version);
    if (this.setCookie !== null) head.headers.push('set-cookie', this.setCookie);
    // node:http2 takes some fields once only (HTTP/1.1 clients take the first of them).
    const fields = this.h2 ? h2ResponseFields(head.headers) : head.headers;
    try {
      res.writeHead(statusCode, this.h2 ? undefined : statusText || undefined, fields);
    } catch (err) {
      // What the client's protocol cannot carry (node:http2: a status over 599): nothing was
      // sent; the target's fields are taken back for the proxy's own 502.
      for (let i = 0; i < fields.length; i += 2) res.removeHeader(fields[i]!);
      this.responseStarted = false;
      this.error = err as Error;
      this.fail(502, 'upstream-error');
      this.abortUpstream?.(this.error);
      return false;
    }
    // A body of unknown length (SSE, long poll, chunked stream) must not wait for its first
    // chunk to show its head; a fixed-length one goes out with its first chunk, in one packet.
    if (!head.fixedLength && this.req.method !== 'HEAD') res.flushHeaders();
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.done) return false;
    if (this.res.write(chunk)) return true;
    this.res.once('drain', this.onClientDrain);
    this.watchSend();
    return false;
  }

  onComplete(): void {
    this.endAttempt();
    if (this.done) return;
    this.target!.recordSuccess();
    this.done = true;
    this.res.end();
    this.endRequestStream();
    // The end of the answer still waits for the client: it must take it within the timeout too.
    if (this.sendTimer !== null || this.backlog() > 0) this.watchSend();
    this.finish();
  }

  onError(err: Error): void {
    this.endAttempt();
    if (this.done) return;
    const target = this.target!;
    const code = (err as NodeJS.ErrnoException).code ?? '';
    this.error = err;
    if (code === 'BATON_E_BODY_TOO_LARGE') {
      // The client's fault (its chunked body passed maxBodySize), not the target's: no passive
      // health strike, no retry. 413 while no response byte went out, else a cut connection.
      if (!this.responseStarted) {
        this.fail(413, 'body-too-large');
        return;
      }
      this.failure = 'body-too-large';
      this.done = true;
      this.res.destroy(err);
      this.finish();
      return;
    }
    if (UNSENDABLE.has(code) && !this.requestSent) {
      // Not the target's failure (no passive-health strike, nor a request in its stats), and
      // no other target would take it either: 400, as if the proxy had refused it itself.
      this.target = undefined;
      this.fail(400, 'bad-request');
      return;
    }
    const timeout = TIMEOUTS.has(code);
    target.recordFailure(Date.now());
    this.failure = timeout ? 'upstream-timeout' : 'upstream-error';
    if (this.responseStarted) {
      // Bytes already reached the client: the only honest signal left is a cut connection.
      this.done = true;
      this.res.destroy(err);
      this.finish();
      return;
    }
    if (this.canRetry(code)) {
      target.stats.retries++;
      (this.tried ??= []).push(target);
      this.start(Date.now());
      return;
    }
    this.fail(timeout ? 504 : 502, this.failure);
  }

  // --- internals ---------------------------------------------------------------------------

  private canRetry(code: string): boolean {
    if (this.attempts >= this.host.maxAttempts) return false;
    if (Date.now() - this.started > this.host.retryTimeoutMs) return false;
    const body = this.body;
    // A body stream that undici has started reading cannot be replayed.
    if (body !== null && (body.readableDidRead || body.destroyed)) return false;
    if (NOT_SENT.has(code)) return true;
    if (code === TARGET_DOWN) return IDEMPOTENT.has(this.req.method ?? '') || !this.requestSent;
    if (IDEMPOTENT.has(this.req.method ?? '')) return true;
    // Not idempotent: only when the socket failed before undici had written the request (a
    // reused keep-alive socket the target had just closed); once written, it may have run.
    return !this.requestSent && RESET.has(code);
  }

  private finish(): void {
    this.stopBodyTimer();
    this.host.finished(this);
  }

  private readonly stopBodyTimer = (): void => {
    if (this.bodyTimer === null) return;
    clearTimeout(this.bodyTimer);
    this.bodyTimer = null;
  };

  /**
   * nginx's client_body_timeout: the client sent no body byte for clientBodyTimeout. Time the
   * proxy holds unread body bytes (the target is slow to take them) is not the client's stall.
   */
  private readonly onBodyIdle = (): void => {
    const req = this.req;
    if (this.done || req.complete) return;
    const read = req.socket.bytesRead;
    if (read !== this.bodyBytesRead || req.readableLength > 0) {
      this.bodyBytesRead = read;
      this.bodyTimer!.refresh();
      return;
    }
    this.bodyTimer = null;
    this.clientStalled = true;
    this.host.clientTimedOut(this, 'body');
    if (this.responseStarted) {
      this.cutClient(); // counted as a client timeout by onClientClose
      return;
    }
    this.fail(408, 'client-timeout');
    this.abortUpstream?.(new Error('the client stopped sending the request body'));
  };

  /**
   * A write the client did not take at once: from now on one of the writes waiting for it must
   * complete within clientSendTimeout (nginx's send_timeout, measured per write rather than per
   * byte: Node tells no partial progress). One timer per exchange, re-armed at each stall.
   */
  private watchSend(): void {
    this.sendBacklog = this.backlog();
    if (this.sendTimer === null) {
      this.sendTimer = setTimeout(this.onSendIdle, this.host.clientSendTimeoutMs).unref();
    } else this.sendTimer.refresh();
  }

  /**
   * Bytes written and not yet taken by the client: the connection's (HTTP/1.1), or the stream's
   * (HTTP/2: a stream the client's flow control holds back leaves the connection idle). No
   * socket yet (queued behind the answer before it): Infinity, the first check takes the measure.
   */
  private backlog(): number {
    if (this.h2) return (this.res as unknown as Http2ServerResponse).stream.writableLength;
    return this.res.socket?.writableLength ?? Infinity;
  }

  private readonly onSendIdle = (): void => {
    const socket = this.res.socket;
    // Gone, or not this response's turn yet (the one before it watches the connection). For
    // HTTP/2, node:http2's socket stands for the stream (`destroyed` is the stream's).
    if (socket === null || socket.destroyed) return;
    const left = this.backlog();
    if (left === 0) return; // all taken: the next stall arms the timer again
    if (left < this.sendBacklog) {
      // A write completed since the last look: slow, but the client reads.
      this.sendBacklog = left;
      this.sendTimer!.refresh();
      return;
    }
    this.clientStalled = true;
    this.host.clientTimedOut(this, 'send');
    this.cutClient(); // res 'close': the upstream request is aborted, counted as a client timeout
  };

  /**
   * Lets a stalled client go: its connection closes (HTTP/1.1), or its stream is reset with
   * CANCEL (HTTP/2: a stream destroyed without an error would wait for its unsent data).
   */
  private cutClient(): void {
    if (this.h2) (this.res as unknown as Http2ServerResponse).stream.close(h2constants.NGHTTP2_CANCEL);
    else this.res.socket?.destroy();
  }

  private endAttempt(): void {
    if (this.attemptDone) return;
    this.attemptDone = true;
    this.abortUpstream = null;
    this.target!.waiting.delete(this);
    this.target!.end();
  }

  private fail(status: number, failure: ExchangeFailure): void {
    // Every target tried and the last attempt timed out: a gateway timeout, as nginx answers.
    if (status === 502 && failure === 'upstream-timeout') status = 504;
    this.done = true;
    this.status = status;
    this.failure = failure;
    const res = this.res;
    if (!res.headersSent && !res.destroyed) {
      const tooLarge = status === 413;
      const what = tooLarge
        ? (this.error?.message ?? 'request body too large')
        : status === 400
          ? `bad request: ${this.error?.message ?? 'not sendable'}`
          : status === 408
            ? 'the request body stopped coming (proxy.clientBodyTimeout)'
            : status === 503
              ? 'no target available'
              : status === 504
                ? 'upstream timed out'
                : 'upstream failed';
      const body = `${what} (baton, request ${this.requestId})\n`;
      try {
        res.writeHead(status, tooLarge && !this.h2 ? 'Content Too Large' : undefined, {
          'content-type': 'text/plain; charset=utf-8',
          'content-length': Buffer.byteLength(body),
          'x-request-id': this.requestId,
          // The rest of the body is unread: the connection cannot carry another request (an
          // HTTP/2 stream is ended below).
          ...((tooLarge || status === 400 || status === 408) && !this.h2 ? { connection: 'close' } : {}),
        });
        res.end(body);
        this.endRequestStream();
      } catch {
        res.destroy();
      }
    }
    this.finish();
  }

  /**
   * HTTP/2: an answer sent while the client still sends its body (refused, timed out, or the
   * target answered first) ends the stream once the answer is out, with RST_STREAM NO_ERROR
   * (RFC 9113 §8.1), so the stream does not hold a slot while the client's upload stalls.
   */
  private endRequestStream(): void {
    if (!this.h2 || this.req.complete) return;
    const stream = (this.res as unknown as Http2ServerResponse).stream;
    // The stream's own 'finish' (the response's comes only once the stream has closed).
    const close = (): void => {
      if (!stream.closed && !stream.destroyed) stream.close(h2constants.NGHTTP2_NO_ERROR);
    };
    if (stream.writableFinished) close();
    else stream.once('finish', close);
  }

  private readonly onClientDrain = (): void => {
    this.resumeUpstream?.();
  };

  private readonly onClientClose = (): void => {
    if (this.sendTimer !== null) clearTimeout(this.sendTimer);
    if (this.done) return;
    // The client went away before the answer was complete (nginx logs this as 499).
    this.done = true;
    this.failure = this.clientStalled ? 'client-timeout' : 'client-closed';
    this.abortUpstream?.(new Error('client closed the connection'));
    this.finish();
  };
}
