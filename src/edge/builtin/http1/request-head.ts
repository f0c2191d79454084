// A strict HTTP/1.1 request-head parser for proxying (RFC 9112 §2-§3, §5-§6): straight from the
// bytes, offsets instead of strings, framing decided once. It refuses what a proxy cannot pass on
// without two readers disagreeing on the message (duplicate Content-Length, CL with TE, bare CR or
// LF, obs-fold, ...), and what a target must not get (two Hosts, a target that is not a path).
// Every request llhttp refuses is refused here too (bench/fuzz-http.ts checks it against llhttp).
import { METHODS } from 'node:http';
import { isIPv6 } from 'node:net';
import * as fields from './fields.js';
import { HeadFields, MAX_LENGTH, type Refusal } from './fields.js';

// Local copies: an imported binding is read through the module record on every use.
const { CR, LF, SP, NEED_MORE, REFUSED } = fields;
const TOKEN = fields.TOKEN;

export interface HeadLimits {
  /** Bytes a head may take, start line and final CRLF included (431 beyond). */
  readonly maxHeadSize: number;
  /** Field lines a head may have (431 beyond). */
  readonly maxFields: number;
  /** Content-Length above this is refused with 413 before any body is read. */
  readonly maxBodySize: number;
}

export const DEFAULT_LIMITS: HeadLimits = { maxHeadSize: 16_384, maxFields: 200, maxBodySize: MAX_LENGTH };

/** Framing of a message body (RFC 9112 §6.3). */
export const Framing = { none: 0, length: 1, chunked: 2, untilClose: 3 } as const;
export type Framing = (typeof Framing)[keyof typeof Framing];

/** Request-target forms (RFC 9112 §3.2); authority-form (CONNECT) is refused. */
export const TargetForm = { origin: 0, absolute: 1, asterisk: 2 } as const;
export type TargetForm = (typeof TargetForm)[keyof typeof TargetForm];

/** `parseRequestHead` results besides a head's length: more bytes are needed / refused. */
export const HEAD_INCOMPLETE = 0;
export const HEAD_REFUSED = -1;

// Methods llhttp knows (anything else it refuses, so must we), by first byte, as bytes.
const METHOD_TABLE: { name: string; bytes: Buffer }[][] = Array.from({ length: 128 }, () => []);
for (const m of METHODS) METHOD_TABLE[m.charCodeAt(0)]!.push({ name: m, bytes: Buffer.from(m, 'latin1') });

function knownMethod(buf: Buffer, start: number, end: number): string | null {
  const c = buf[start]!;
  if (c >= 128) return null;
  const len = end - start;
  const candidates = METHOD_TABLE[c]!;
  for (let k = 0; k < candidates.length; k++) {
    const m = candidates[k]!;
    if (m.bytes.length !== len) continue;
    let i = 1;
    while (i < len && m.bytes[i] === buf[start + i]) i++;
    if (i === len) return m.name;
  }
  return null;
}

/** Bytes allowed in a request-target: visible ASCII but `#` (a fragment is never sent). */
const TARGET = new Uint8Array(256);
for (let c = 0x21; c <= 0x7e; c++) if (c !== 35) TARGET[c] = 1;

/** RFC 3986 reg-name bytes besides pct-encoded: unreserved and sub-delims. */
const REG_NAME = new Uint8Array(256);
for (const c of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=")
  REG_NAME[c.charCodeAt(0)] = 1;

function isHex(c: number): boolean {
  return (c >= 48 && c <= 57) || ((c | 0x20) >= 97 && (c | 0x20) <= 102);
}

/**
 * `uri-host [":" port]` (RFC 9110 §7.2) in buf[s, e): an IPv6 literal in brackets or a non-empty
 * reg-name / IPv4 address, then an optional numeric port. No userinfo, path or second authority.
 */
export function validAuthorityBytes(buf: Buffer, s: number, e: number): boolean {
  let i = s;
  if (i >= e) return false;
  if (buf[i] === 91) {
    const close = buf.indexOf(93, i);
    if (close < 0 || close >= e || !isIPv6(buf.toString('latin1', i + 1, close))) return false;
    i = close + 1;
  } else {
    for (; i < e; i++) {
      const c = buf[i]!;
      if (c === 58) break;
      if (c === 37) {
        if (i + 2 >= e || !isHex(buf[i + 1]!) || !isHex(buf[i + 2]!)) return false;
        i += 2;
      } else if (REG_NAME[c] !== 1) return false;
    }
    if (i === s) return false;
  }
  if (i === e) return true;
  if (buf[i] !== 58) return false;
  for (i++; i < e; i++) {
    const c = buf[i]!;
    if (c < 48 || c > 57) return false;
  }
  return true;
}

/**
 * One request head, reused across requests: `reset(start)`, then `parse` until it is complete or
 * refused. Offsets are into the buffer given to `parse`, which must hold the whole head from
 * `start` (a caller joins reads until it does).
 */
export class RequestHead extends HeadFields {
  /** Where the head starts, and where to resume scanning (the first line not yet complete). */
  start = 0;
  resumeAt = 0;
  private startLineDone = false;
  /** Offset after the final CRLF, once complete. */
  end = 0;
  /** One of node:http's METHODS, interned. */
  method = '';
  targetStart = 0;
  targetEnd = 0;
  targetForm: TargetForm = TargetForm.origin;
  /** Absolute form: the authority (Host for the target) and where the path starts (targetEnd: none). */
  authorityStart = 0;
  authorityEnd = 0;
  pathStart = 0;
  /** 0 for HTTP/1.0, 1 for HTTP/1.1. */
  versionMinor = 1;
  framing: Framing = Framing.none;
  /** The body's length when framing is `length`. */
  bodyLength = 0;
  keepAlive = true;
  /** Asks to switch protocols (Connection: upgrade plus Upgrade); the tunnel opens after a 101 only. */
  upgrade = false;

  /** Starts a new head at `start` (after a previous one, or on a new connection). */
  reset(start: number): void {
    this.resetFields();
    this.start = start;
    this.resumeAt = start;
    this.startLineDone = false;
    this.end = 0;
    this.method = '';
    this.framing = Framing.none;
    this.bodyLength = 0;
    this.keepAlive = true;
    this.upgrade = false;
  }

  /**
   * The head's bytes so far were moved to start at `start` in another buffer (a caller joining
   * reads copies the partial head to the front of a bigger one): every offset follows, and the
   * next `parse` on that buffer resumes where the last one stopped.
   */
  rebase(start: number): void {
    const delta = start - this.start;
    this.rebaseFields(delta);
    this.start += delta;
    this.resumeAt += delta;
    this.targetStart += delta;
    this.targetEnd += delta;
    this.authorityStart += delta;
    this.authorityEnd += delta;
    this.pathStart += delta;
    if (this.end > 0) this.end += delta;
  }

  /** The request target as sent (allocates). */
  target(buf: Buffer): string {
    return buf.toString('latin1', this.targetStart, this.targetEnd);
  }

  /** Parses the start line at p; returns the offset after it, NEED_MORE or REFUSED. */
  private startLine(buf: Buffer, p: number, end: number): number {
    const ms = p;
    while (p < end && TOKEN[buf[p]!] === 1) p++;
    if (p >= end) return NEED_MORE;
    if (buf[p] !== SP || p === ms) return this.refuse('bad-request-line');
    const method = knownMethod(buf, ms, p);
    if (method === null) return this.refuse('unknown-method');
    this.method = method;
    const ts = ++p;
    while (p < end && TARGET[buf[p]!] === 1) p++;
    if (p >= end) return NEED_MORE;
    if (buf[p] !== SP || p === ts) {
      const c = buf[p]!;
      return this.refuse(p > ts && c > SP && c !== 0x7f ? 'bad-target' : 'bad-request-line');
    }
    this.targetStart = ts;
    this.targetEnd = p++;
    // "HTTP/1.1" CRLF
    if (end - p < 10) {
      for (let i = 0; i < end - p; i++) if (buf[p + i] === LF) return this.refuse('bad-request-line');
      return NEED_MORE;
    }
    if (buf[p + 8] !== CR || buf[p + 9] !== LF) {
      return this.refuse(buf[p + 8] === LF ? 'bare-lf' : 'bad-request-line');
    }
    if (
      buf[p] !== 72 ||
      buf[p + 1] !== 84 ||
      buf[p + 2] !== 84 ||
      buf[p + 3] !== 80 ||
      buf[p + 4] !== 47 ||
      buf[p + 6] !== 46
    ) {
      return this.refuse('bad-version');
    }
    const major = buf[p + 5]! - 48;
    const minor = buf[p + 7]! - 48;
    if (major < 0 || major > 9 || minor < 0 || minor > 9) return this.refuse('bad-version');
    if (major !== 1 || minor > 1) return this.refuse('unsupported-version');
    this.versionMinor = minor;
    const r = this.targetRefusal(buf);
    return r === null ? p + 10 : this.refuse(r);
  }

  private targetRefusal(buf: Buffer): Refusal | null {
    const s = this.targetStart;
    const e = this.targetEnd;
    const c = buf[s]!;
    if (this.method === 'CONNECT') return 'connect';
    if (c === 47) {
      this.targetForm = TargetForm.origin;
      return null;
    }
    if (c === 42 && e - s === 1) {
      this.targetForm = TargetForm.asterisk;
      return this.method === 'OPTIONS' ? null : 'bad-target';
    }
    // absolute-form: http(s)://authority[path-abempty][?query]
    let p = s;
    if (e - p < 7 || (buf[p++]! | 0x20) !== 104 || (buf[p++]! | 0x20) !== 116) return 'bad-target';
    if ((buf[p++]! | 0x20) !== 116 || (buf[p++]! | 0x20) !== 112) return 'bad-target';
    if ((buf[p]! | 0x20) === 115) p++;
    if (buf[p] !== 58 || buf[p + 1] !== 47 || buf[p + 2] !== 47) return 'bad-target';
    const as = (p += 3);
    while (p < e && buf[p] !== 47 && buf[p] !== 63) p++;
    if (!validAuthorityBytes(buf, as, p)) return 'bad-target';
    this.targetForm = TargetForm.absolute;
    this.authorityStart = as;
    this.authorityEnd = p;
    this.pathStart = p;
    return null;
  }

  /** Decides framing and refuses what the fields together make ambiguous; at the final CRLF. */
  private finish(limits: HeadLimits): number {
    const http10 = this.versionMinor === 0;
    if (this.hostField < 0 && !http10) return this.refuse('missing-host');
    const coding = this.codingRefusal(http10);
    if (coding !== null) return this.refuse(coding);
    // RFC 9110 §10.1.1: Expect in an HTTP/1.0 request is ignored (node:http does the same).
    if (http10) this.expectContinue = false;
    else if (this.expectOther) return this.refuse('bad-expect');
    if (this.chunked) this.framing = Framing.chunked;
    else if (this.contentLength >= 0) {
      if (this.contentLength > limits.maxBodySize) return this.refuse('body-too-large');
      this.framing = this.contentLength > 0 ? Framing.length : Framing.none;
      this.bodyLength = this.contentLength;
    }
    this.keepAlive = http10 ? this.connectionKeepAlive && !this.connectionClose : !this.connectionClose;
    this.upgrade = this.hasUpgrade && this.connectionUpgrade;
    return this.end;
  }

  /** Host (after the whole head, as it may come before or after nothing but fields). */
  private hostRefusal(buf: Buffer): Refusal | null {
    if (this.hostField < 0) return null;
    return validAuthorityBytes(buf, this.valueStart(this.hostField), this.valueEnd(this.hostField))
      ? null
      : 'bad-host';
  }

  /**
   * Parses the head in buf[head.resumeAt, end) (call `head.reset(start)` first). Returns the head's
   * length once complete, HEAD_INCOMPLETE when it needs more bytes (call again with the same
   * buffer grown: complete lines are not scanned again), or HEAD_REFUSED (`head.refusal` says why).
   */
  parse(buf: Buffer, end: number, limits: HeadLimits = DEFAULT_LIMITS): number {
    const r = this.scan(buf, end, limits);
    if (r === REFUSED) return HEAD_REFUSED;
    if (r === NEED_MORE) {
      if (end - this.start > limits.maxHeadSize) {
        this.refusal = 'head-too-large';
        return HEAD_REFUSED;
      }
      return HEAD_INCOMPLETE;
    }
    if (this.end - this.start > limits.maxHeadSize) {
      this.refusal = 'head-too-large';
      return HEAD_REFUSED;
    }
    return this.end - this.start;
  }

  private scan(buf: Buffer, end: number, limits: HeadLimits): number {
    let p = this.resumeAt;
    if (!this.startLineDone) {
      // RFC 9112 §2.2: one empty line before a request may be ignored; not more.
      if (p === this.start && p < end && buf[p] === CR) {
        if (p + 1 >= end) return NEED_MORE;
        if (buf[p + 1] !== LF) return this.refuse('bare-cr');
        p += 2;
        if (p >= end) return NEED_MORE;
        if (buf[p] === CR || buf[p] === LF) return this.refuse('leading-empty-line');
      } else if (p < end && buf[p] === LF) return this.refuse('bare-lf');
      const r = this.startLine(buf, p, end);
      if (r < 0) {
        if (r === NEED_MORE && end - this.start > limits.maxHeadSize) return this.refuse('head-too-large');
        return r;
      }
      this.startLineDone = true;
      this.resumeAt = p = r;
    }
    for (;;) {
      const r = this.scanLine(buf, p, end, limits.maxFields);
      if (r === NEED_MORE || r === REFUSED) return r;
      if (r < 0) {
        this.end = -(r + 3);
        const host = this.hostRefusal(buf);
        if (host !== null) return this.refuse(host);
        return this.finish(limits);
      }
      this.resumeAt = p = r;
      if (p - this.start > limits.maxHeadSize) return this.refuse('head-too-large');
    }
  }
}

/** Convenience for one-shot callers (tests, the fuzz harness): a fresh head parsed at `start`. */
export function parseRequestHead(
  buf: Buffer,
  start = 0,
  end = buf.length,
  limits: HeadLimits = DEFAULT_LIMITS,
): { result: number; head: RequestHead } {
  const head = new RequestHead();
  head.reset(start);
  return { result: head.parse(buf, end, limits), head };
}
