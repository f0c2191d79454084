// A strict HTTP/1.1 response-head parser for the upstream side of the proxy (RFC 9112 §4-§6):
// the status line, the fields as offsets, and the body's framing, which depends on the request
// (a response to HEAD has no body) and the status (1xx, 204 and 304 have none). A target's head
// whose framing two readers could disagree on is refused (the proxy answers 502).
import * as fields from './fields.js';
import { HeadFields } from './fields.js';
import { DEFAULT_LIMITS, Framing, HEAD_INCOMPLETE, HEAD_REFUSED, type HeadLimits } from './request-head.js';

// Local copies: an imported binding is read through the module record on every use.
const { CR, LF, SP, NEED_MORE, REFUSED } = fields;
const VALUE = fields.VALUE;

export class ResponseHead extends HeadFields {
  start = 0;
  resumeAt = 0;
  private statusLineDone = false;
  end = 0;
  versionMinor = 1;
  status = 0;
  /** The reason phrase, possibly empty. */
  reasonStart = 0;
  reasonEnd = 0;
  framing: Framing = Framing.none;
  bodyLength = 0;
  /** The connection can carry another request after this response. */
  keepAlive = true;
  /** A 101 with Connection: upgrade and Upgrade: the connection is the tunnel from here on. */
  upgrade = false;
  /** A 1xx other than 101: another head follows on the same connection. */
  interim = false;

  /** Starts a new head at `start`. */
  reset(start: number): void {
    this.resetFields();
    this.start = start;
    this.resumeAt = start;
    this.statusLineDone = false;
    this.end = 0;
    this.status = 0;
    this.framing = Framing.none;
    this.bodyLength = 0;
    this.keepAlive = true;
    this.upgrade = false;
    this.interim = false;
  }

  /** As RequestHead.rebase: the partial head now starts at `start` in another buffer. */
  rebase(start: number): void {
    const delta = start - this.start;
    this.rebaseFields(delta);
    this.start += delta;
    this.resumeAt += delta;
    this.reasonStart += delta;
    this.reasonEnd += delta;
    if (this.end > 0) this.end += delta;
  }

  reason(buf: Buffer): string {
    return buf.toString('latin1', this.reasonStart, this.reasonEnd);
  }

  /** `HTTP/1.x SP 3DIGIT [SP reason-phrase] CRLF`; the SP before an empty reason may be left out. */
  private statusLine(buf: Buffer, p: number, end: number): number {
    if (end - p < 14) {
      for (let i = p; i < end; i++) if (buf[i] === LF) return this.refuse('bare-lf');
      return NEED_MORE;
    }
    if (
      buf[p] !== 72 ||
      buf[p + 1] !== 84 ||
      buf[p + 2] !== 84 ||
      buf[p + 3] !== 80 ||
      buf[p + 4] !== 47 ||
      buf[p + 5] !== 49 ||
      buf[p + 6] !== 46 ||
      (buf[p + 7] !== 48 && buf[p + 7] !== 49) ||
      buf[p + 8] !== SP
    ) {
      return this.refuse('bad-status-line');
    }
    this.versionMinor = buf[p + 7]! - 48;
    let status = 0;
    for (let i = p + 9; i < p + 12; i++) {
      const d = buf[i]! - 48;
      if (d < 0 || d > 9) return this.refuse('bad-status-line');
      status = status * 10 + d;
    }
    if (status < 100 || status > 599) return this.refuse('bad-status-line');
    this.status = status;
    p += 12;
    let c = buf[p]!;
    if (c === SP) {
      this.reasonStart = ++p;
      while (p < end && VALUE[buf[p]!] === 1) p++;
      if (p >= end) return NEED_MORE;
      this.reasonEnd = p;
      c = buf[p]!;
    } else {
      this.reasonStart = this.reasonEnd = p;
    }
    if (c !== CR) return this.refuse(c === LF ? 'bare-lf' : 'bad-status-line');
    if (p + 1 >= end) return NEED_MORE;
    return buf[p + 1] === LF ? p + 2 : this.refuse('bare-cr');
  }

  private finish(headRequest: boolean, limits: HeadLimits): number {
    const http10 = this.versionMinor === 0;
    const coding = this.codingRefusal(http10);
    if (coding !== null) return this.refuse(coding);
    const s = this.status;
    this.upgrade = s === 101 && this.hasUpgrade && this.connectionUpgrade;
    // A 101 that names no protocol switches to nothing (llhttp then waits for another head).
    if (s === 101 && !this.upgrade) return this.refuse('bad-upgrade');
    this.interim = s < 200 && s !== 101;
    const persistent = http10 ? this.connectionKeepAlive && !this.connectionClose : !this.connectionClose;
    if (headRequest || s < 200 || s === 204 || s === 304) {
      this.framing = Framing.none;
    } else if (this.chunked) {
      this.framing = Framing.chunked;
    } else if (this.contentLength >= 0) {
      if (this.contentLength > limits.maxBodySize) return this.refuse('body-too-large');
      this.framing = this.contentLength > 0 ? Framing.length : Framing.none;
      this.bodyLength = this.contentLength;
    } else {
      // RFC 9112 §6.3 rule 8: the body ends when the target closes the connection.
      this.framing = Framing.untilClose;
    }
    // As llhttp: a response that would be read until close had it not answered HEAD leaves the
    // connection in doubt too (its target may not know the request was HEAD): not reused.
    const noBody = s < 200 || s === 204 || s === 304;
    this.keepAlive = persistent && (noBody || this.chunked || this.contentLength >= 0);
    return this.end;
  }

  /**
   * Parses the head in buf[head.resumeAt, end) (after `head.reset(start)`); `headRequest`: the
   * request was HEAD. Returns the head's length, HEAD_INCOMPLETE or HEAD_REFUSED (see `refusal`).
   */
  parse(buf: Buffer, end: number, headRequest: boolean, limits: HeadLimits = DEFAULT_LIMITS): number {
    const r = this.scan(buf, end, headRequest, limits);
    if (r === REFUSED) return HEAD_REFUSED;
    if (r === NEED_MORE || this.end - this.start > limits.maxHeadSize) {
      if (end - this.start <= limits.maxHeadSize) return HEAD_INCOMPLETE;
      this.refusal = 'head-too-large';
      return HEAD_REFUSED;
    }
    return this.end - this.start;
  }

  private scan(buf: Buffer, end: number, headRequest: boolean, limits: HeadLimits): number {
    let p = this.resumeAt;
    if (!this.statusLineDone) {
      const r = this.statusLine(buf, p, end);
      if (r < 0) return r;
      this.statusLineDone = true;
      this.resumeAt = p = r;
    }
    for (;;) {
      const r = this.scanLine(buf, p, end, limits.maxFields);
      if (r === NEED_MORE || r === REFUSED) return r;
      if (r < 0) {
        this.end = -(r + 3);
        return this.finish(headRequest, limits);
      }
      this.resumeAt = p = r;
      if (p - this.start > limits.maxHeadSize) return this.refuse('head-too-large');
    }
  }
}

/** A fresh response head parsed at `start` (tests, the fuzz harness). */
export function parseResponseHead(
  buf: Buffer,
  headRequest: boolean,
  start = 0,
  end = buf.length,
  limits: HeadLimits = DEFAULT_LIMITS,
): { result: number; head: ResponseHead } {
  const head = new ResponseHead();
  head.reset(start);
  return { result: head.parse(buf, end, headRequest, limits), head };
}
