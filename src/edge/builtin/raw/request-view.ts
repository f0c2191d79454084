// What the routing code (route table, balancers, split rules) and the access log read of a request,
// for a request the raw engine parsed itself: the few IncomingMessage members they use, built from
// the parsed head only when asked for (round-robin without a split never builds the header map).
// One per client connection, re-pointed at each request's head.
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { TargetForm, type RequestHead } from '../http1/request-head.js';
import { putSpan } from './bytes.js';

/** The largest copy buffer a view keeps between requests. */
const KEEP_MAX = 16 * 1024;

export class RequestView {
  method = '';
  private src: Buffer = Buffer.alloc(0);
  private cachedUrl: string | null = null;
  private cachedHeaders: Record<string, string> | null = null;

  constructor(
    readonly socket: Socket,
    private readonly head: RequestHead,
  ) {}

  /**
   * Points at a new request's head (its bytes in `src`); `copy`: src is a read buffer that the
   * next read overwrites, so the head's bytes are copied (at the same offsets) into the view's own.
   */
  reset(src: Buffer, copy: boolean): void {
    if (copy) src = this.own(src);
    this.src = src;
    this.method = this.head.method;
    this.cachedUrl = null;
    this.cachedHeaders = null;
  }

  private kept: Buffer | null = null;

  private own(src: Buffer): Buffer {
    const h = this.head;
    const end = h.end;
    let b = this.kept;
    if (b === null || b.length < end) {
      b = Buffer.allocUnsafe(Math.max(end, 1024));
      // Kept for the next requests unless large (a head far into a read of pipelined requests).
      if (end <= KEEP_MAX) this.kept = b;
    }
    putSpan(b, h.start, src, h.start, end);
    return b;
  }

  /** The path as forwarded (origin-form; an absolute-form target's path part). */
  get url(): string {
    if (this.cachedUrl !== null) return this.cachedUrl;
    const h = this.head;
    if (h.targetForm !== TargetForm.absolute) return (this.cachedUrl = h.target(this.src));
    const path = this.src.toString('latin1', h.pathStart, h.targetEnd);
    return (this.cachedUrl = path === '' ? '/' : path.charCodeAt(0) === 47 ? path : `/${path}`);
  }

  /** Lower-case names as node:http has them; repeats joined (cookie with `; `). */
  get headers(): Record<string, string> {
    if (this.cachedHeaders !== null) return this.cachedHeaders;
    const h = this.head;
    const src = this.src;
    const out: Record<string, string> = {};
    for (let i = 0; i < h.count; i++) {
      const name = h.name(src, i).toLowerCase();
      const value = h.value(src, i);
      const prev = out[name];
      out[name] = prev === undefined ? value : `${prev}${name === 'cookie' ? '; ' : ', '}${value}`;
    }
    if (h.targetForm === TargetForm.absolute)
      out.host = src.toString('latin1', h.authorityStart, h.authorityEnd);
    return (this.cachedHeaders = out);
  }

  /** This view where the routing code takes an IncomingMessage (it reads only the members above). */
  asMessage(): IncomingMessage {
    return this as unknown as IncomingMessage;
  }
}
