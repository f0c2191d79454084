// The header-field part of an HTTP/1.1 head (RFC 9112 §5, RFC 9110 §5), shared by the request
// and response parsers: one field line at a time, straight from the bytes, with the few fields
// that decide framing (Content-Length, Transfer-Encoding, Connection, Upgrade) read on the way.
// Field names and values stay in the buffer as offsets; nothing here builds a string.

/** Why a head (or a chunked body) is refused; `REFUSAL_STATUS` maps each to the answer's status. */
export type Refusal =
  | 'bad-request-line'
  | 'bad-status-line'
  | 'bad-upgrade'
  | 'unknown-method'
  | 'bad-target'
  | 'bad-version'
  | 'unsupported-version'
  | 'head-too-large'
  | 'too-many-fields'
  | 'leading-empty-line'
  | 'bad-field-name'
  | 'space-before-colon'
  | 'bad-field-value'
  | 'bare-cr'
  | 'bare-lf'
  | 'obs-fold'
  | 'duplicate-content-length'
  | 'bad-content-length'
  | 'content-length-and-chunked'
  | 'body-too-large'
  | 'unknown-coding'
  | 'chunked-not-last'
  | 'bad-transfer-encoding'
  | 'te-http10'
  | 'missing-host'
  | 'duplicate-host'
  | 'bad-host'
  | 'connect'
  | 'bad-expect'
  | 'bad-chunk-size'
  | 'chunk-too-large'
  | 'bad-chunk-ext'
  | 'bad-chunk-end'
  | 'framing-trailer';

/** The status a client is answered for each refusal (a target's bad response is a 502 whatever). */
export const REFUSAL_STATUS: Readonly<Record<Refusal, number>> = {
  'bad-request-line': 400,
  'bad-status-line': 502,
  'bad-upgrade': 502,
  'unknown-method': 501,
  'bad-target': 400,
  'bad-version': 400,
  'unsupported-version': 505,
  'head-too-large': 431,
  'too-many-fields': 431,
  'leading-empty-line': 400,
  'bad-field-name': 400,
  'space-before-colon': 400,
  'bad-field-value': 400,
  'bare-cr': 400,
  'bare-lf': 400,
  'obs-fold': 400,
  'duplicate-content-length': 400,
  'bad-content-length': 400,
  'content-length-and-chunked': 400,
  'body-too-large': 413,
  // RFC 9112 §6.1: a coding the recipient cannot undo SHOULD be answered 501 (as nginx).
  'unknown-coding': 501,
  'chunked-not-last': 400,
  'bad-transfer-encoding': 400,
  'te-http10': 400,
  'missing-host': 400,
  'duplicate-host': 400,
  'bad-host': 400,
  // A reverse proxy tunnels to nowhere but its own targets (as nginx).
  connect: 405,
  'bad-expect': 417,
  'bad-chunk-size': 400,
  'chunk-too-large': 413,
  'bad-chunk-ext': 400,
  'bad-chunk-end': 400,
  'framing-trailer': 400,
};

export const CR = 13;
export const LF = 10;
export const SP = 32;
export const HTAB = 9;

/** tchar (RFC 9110 §5.6.2). */
export const TOKEN = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
  TOKEN[c.charCodeAt(0)] = 1;

/** field-vchar, SP and HTAB (RFC 9110 §5.5): what a field value may hold. obs-text is kept. */
export const VALUE = new Uint8Array(256);
VALUE[HTAB] = 1;
for (let c = 0x20; c <= 0xff; c++) if (c !== 0x7f) VALUE[c] = 1;

/** Largest Content-Length / chunk size taken: beyond it a number loses integer precision. */
export const MAX_LENGTH = Number.MAX_SAFE_INTEGER;

/** Whether buf[start, end) equals `lower` (ASCII lower case) ignoring letter case. */
export function equalsLower(buf: Buffer, start: number, end: number, lower: string): boolean {
  if (end - start !== lower.length) return false;
  for (let i = 0; i < lower.length; i++) {
    if ((buf[start + i]! | 0x20) !== lower.charCodeAt(i)) return false;
  }
  return true;
}

/**
 * The fields a proxy treats apart, known from the name as it is scanned (`HeadFields.kind(i)`),
 * so rewriting a head needs no string compare: framing fields, hop-by-hop ones (RFC 9110 §7.6.1)
 * and the forwarding ones the proxy sets itself.
 */
export const FieldKind = {
  other: 0,
  host: 1,
  contentLength: 2,
  transferEncoding: 3,
  connection: 4,
  upgrade: 5,
  expect: 6,
  keepAlive: 7,
  proxyConnection: 8,
  te: 9,
  trailer: 10,
  proxyAuthenticate: 11,
  proxyAuthorization: 12,
  xForwardedFor: 13,
  xForwardedProto: 14,
  xForwardedHost: 15,
  xRealIp: 16,
  forwarded: 17,
  xRequestId: 18,
} as const;
export type FieldKind = (typeof FieldKind)[keyof typeof FieldKind];

const K = FieldKind;

/** Names by length, each with its kind: one length compare, then at most two byte compares. */
const NAMES_BY_LENGTH: [name: string, kind: FieldKind][][] = [];
for (const [name, kind] of [
  ['te', K.te],
  ['host', K.host],
  ['expect', K.expect],
  ['upgrade', K.upgrade],
  ['trailer', K.trailer],
  ['forwarded', K.forwarded],
  ['x-real-ip', K.xRealIp],
  ['connection', K.connection],
  ['keep-alive', K.keepAlive],
  ['x-request-id', K.xRequestId],
  ['content-length', K.contentLength],
  ['x-forwarded-for', K.xForwardedFor],
  ['proxy-connection', K.proxyConnection],
  ['x-forwarded-host', K.xForwardedHost],
  ['transfer-encoding', K.transferEncoding],
  ['x-forwarded-proto', K.xForwardedProto],
  ['proxy-authenticate', K.proxyAuthenticate],
  ['proxy-authorization', K.proxyAuthorization],
] as const) {
  (NAMES_BY_LENGTH[name.length] ??= []).push([name, kind]);
}

function fieldKind(buf: Buffer, s: number, e: number): FieldKind {
  const names = NAMES_BY_LENGTH[e - s];
  if (names === undefined) return K.other;
  for (let k = 0; k < names.length; k++) {
    const [name, kind] = names[k]!;
    if (equalsLower(buf, s, e, name)) return kind;
  }
  return K.other;
}

function trailingTab(buf: Buffer, from: number, to: number): boolean {
  for (let p = from; p < to; p++) if (buf[p] === HTAB) return true;
  return false;
}

/** Result of `scanLine`: more bytes are needed for the line. */
export const NEED_MORE = -1;
/** Result of `scanLine`: refused, see `refusal`. */
export const REFUSED = -2;

/**
 * The field section of a head being parsed: spans, counts and the framing fields, reused from one
 * head to the next (`resetFields`) so parsing allocates nothing once warm.
 */
export class HeadFields {
  /** [nameStart, nameEnd, valueStart, valueEnd] per field line, in order, offsets into the buffer. */
  spans = new Int32Array(4 * 32);
  /** FieldKind per field line. */
  kinds = new Uint8Array(32);
  count = 0;
  refusal: Refusal | null = null;
  /** Index of the (first) Host field, -1 when none. */
  hostField = -1;
  hosts = 0;
  /** -1 when there is no Content-Length. */
  contentLength = -1;
  transferEncoding = false;
  /** The last transfer coding is chunked, and it appears once. */
  chunked = false;
  chunkedNotLast = false;
  chunkedTwice = false;
  unknownCoding = false;
  connectionClose = false;
  connectionKeepAlive = false;
  connectionUpgrade = false;
  /** Connection names other fields (hop-by-hop too: the proxy drops them). */
  connectionOther = false;
  hasUpgrade = false;
  expectContinue = false;
  expectOther = false;

  protected resetFields(): void {
    this.count = 0;
    this.refusal = null;
    this.hostField = -1;
    this.hosts = 0;
    this.contentLength = -1;
    this.transferEncoding = false;
    this.chunked = false;
    this.chunkedNotLast = false;
    this.chunkedTwice = false;
    this.unknownCoding = false;
    this.connectionClose = false;
    this.connectionKeepAlive = false;
    this.connectionUpgrade = false;
    this.connectionOther = false;
    this.hasUpgrade = false;
    this.expectContinue = false;
    this.expectOther = false;
  }

  /** Moves every field offset by `delta` (the head's bytes were copied elsewhere). */
  protected rebaseFields(delta: number): void {
    const s = this.spans;
    for (let i = 0; i < 4 * this.count; i++) s[i] = s[i]! + delta;
  }

  /** Refuses with `why`; returns REFUSED for a `return this.refuse(...)`. */
  protected refuse(why: Refusal): number {
    this.refusal = why;
    return REFUSED;
  }

  /** What field i is to a proxy (FieldKind). */
  kind(i: number): FieldKind {
    return this.kinds[i] as FieldKind;
  }

  nameStart(i: number): number {
    return this.spans[4 * i]!;
  }
  nameEnd(i: number): number {
    return this.spans[4 * i + 1]!;
  }
  valueStart(i: number): number {
    return this.spans[4 * i + 2]!;
  }
  valueEnd(i: number): number {
    return this.spans[4 * i + 3]!;
  }

  /** Whether field i's name is `lower` (given in lower case), in any letter case. */
  nameIs(buf: Buffer, i: number, lower: string): boolean {
    return equalsLower(buf, this.spans[4 * i]!, this.spans[4 * i + 1]!, lower);
  }

  /** Field i's name as sent (allocates: for the slow paths and tests). */
  name(buf: Buffer, i: number): string {
    return buf.toString('latin1', this.spans[4 * i], this.spans[4 * i + 1]);
  }

  /** Field i's value without the surrounding whitespace (allocates). */
  value(buf: Buffer, i: number): string {
    return buf.toString('latin1', this.spans[4 * i + 2], this.spans[4 * i + 3]);
  }

  /**
   * Scans one field line at `p` (RFC 9112 §5: `field-name ":" OWS field-value OWS CRLF`), or the
   * empty line ending the section. Returns the offset after its CRLF, NEED_MORE or REFUSED; an
   * empty line returns `-(offset after it) - 3` so the caller can tell it apart cheaply.
   */
  protected scanLine(buf: Buffer, p: number, end: number, maxFields: number): number {
    if (p >= end) return NEED_MORE;
    let c = buf[p]!;
    if (c === CR) {
      if (p + 1 >= end) return NEED_MORE;
      return buf[p + 1] === LF ? -(p + 2) - 3 : this.refuse('bare-cr');
    }
    if (c === LF) return this.refuse('bare-lf');
    // RFC 9112 §5.2: obs-fold is refused (a line that starts with whitespace).
    if (c === SP || c === HTAB) return this.refuse('obs-fold');
    const ns = p;
    while (TOKEN[c] === 1) {
      if (++p >= end) return NEED_MORE;
      c = buf[p]!;
    }
    if (c !== 58) {
      if (p === ns) return this.refuse('bad-field-name');
      if (c !== SP && c !== HTAB) return this.refuse('bad-field-name');
      // RFC 9112 §5.1: no whitespace between name and colon, answered 400 (else: a name with a space).
      while (++p < end && ((c = buf[p]!) === SP || c === HTAB));
      if (p >= end) return NEED_MORE;
      return this.refuse(c === 58 ? 'space-before-colon' : 'bad-field-name');
    }
    if (p === ns) return this.refuse('bad-field-name');
    const ne = p++;
    while (p < end && ((c = buf[p]!) === SP || c === HTAB)) p++;
    const vs = p;
    while (p < end && VALUE[buf[p]!] === 1) p++;
    if (p >= end) return NEED_MORE;
    c = buf[p]!;
    if (c !== CR) return this.refuse(c === LF ? 'bare-lf' : 'bad-field-value');
    if (p + 1 >= end) return NEED_MORE;
    if (buf[p + 1] !== LF) return this.refuse('bare-cr');
    let ve = p;
    while (ve > vs && ((c = buf[ve - 1]!) === SP || c === HTAB)) ve--;
    if (this.count >= maxFields) return this.refuse('too-many-fields');
    const r = this.field(buf, ns, ne, vs, ve, p);
    return r === REFUSED ? r : p + 2;
  }

  /** Records field line `ns..cr`; refuses at once what makes the head ambiguous. */
  private field(buf: Buffer, ns: number, ne: number, vs: number, ve: number, cr: number): number {
    const i = this.count++;
    if (this.kinds.length < this.count) {
      const spans = new Int32Array(this.spans.length * 2);
      spans.set(this.spans);
      this.spans = spans;
      const kinds = new Uint8Array(this.kinds.length * 2);
      kinds.set(this.kinds);
      this.kinds = kinds;
    }
    const s = this.spans;
    s[4 * i] = ns;
    s[4 * i + 1] = ne;
    s[4 * i + 2] = vs;
    s[4 * i + 3] = ve;
    const kind = fieldKind(buf, ns, ne);
    this.kinds[i] = kind;
    switch (kind) {
      case K.host:
        if (++this.hosts > 1) return this.refuse('duplicate-host');
        this.hostField = i;
        return 0;
      case K.contentLength:
        // RFC 9112 §6.3: a list or a repeat is refused, even of equal values (as llhttp).
        if (this.contentLength >= 0) return this.refuse('duplicate-content-length');
        // llhttp takes trailing SP but not HTAB after the framing fields' values: neither do we.
        if (trailingTab(buf, ve, cr)) return this.refuse('bad-content-length');
        return this.readContentLength(buf, vs, ve);
      case K.transferEncoding:
        this.transferEncoding = true;
        if (trailingTab(buf, ve, cr)) return this.refuse('bad-transfer-encoding');
        return this.readCodings(buf, vs, ve);
      case K.connection:
        this.readConnection(buf, vs, cr);
        return 0;
      case K.upgrade:
        this.hasUpgrade = true;
        return 0;
      case K.expect:
        if (equalsLower(buf, vs, ve, '100-continue')) this.expectContinue = true;
        else this.expectOther = true;
        return 0;
      default:
        return 0;
    }
  }

  private readContentLength(buf: Buffer, vs: number, ve: number): number {
    if (vs === ve) return this.refuse('bad-content-length');
    let n = 0;
    for (let p = vs; p < ve; p++) {
      const d = buf[p]! - 48;
      if (d < 0 || d > 9) return this.refuse('bad-content-length');
      n = n * 10 + d;
      if (n > MAX_LENGTH) return this.refuse('bad-content-length');
    }
    this.contentLength = n;
    return 0;
  }

  /** One Transfer-Encoding line: a list of codings; chunked must come once, and last. */
  private readCodings(buf: Buffer, vs: number, ve: number): number {
    let p = vs;
    for (;;) {
      while (p < ve && (buf[p] === SP || buf[p] === HTAB)) p++;
      const s = p;
      while (p < ve && buf[p] !== 44) p++;
      let e = p;
      while (e > s && (buf[e - 1] === SP || buf[e - 1] === HTAB)) e--;
      // An empty list element leaves the framing in doubt: refused rather than skipped.
      if (e === s) return this.refuse('bad-transfer-encoding');
      if (equalsLower(buf, s, e, 'chunked')) {
        if (this.chunked || this.chunkedNotLast) this.chunkedTwice = true;
        this.chunked = true;
      } else {
        if (this.chunked) this.chunkedNotLast = true;
        else this.unknownCoding = true;
        this.chunked = false;
      }
      if (p >= ve) return 0;
      p++;
    }
  }

  /**
   * Connection's tokens, up to the line's CR: as llhttp, a token followed by HTAB is no known
   * token ("close\t" does not close), so the two never disagree on keep-alive or upgrade.
   */
  private readConnection(buf: Buffer, vs: number, ve: number): void {
    let p = vs;
    for (;;) {
      while (p < ve && (buf[p] === SP || buf[p] === HTAB)) p++;
      const s = p;
      while (p < ve && buf[p] !== 44) p++;
      let e = p;
      while (e > s && buf[e - 1] === SP) e--;
      if (equalsLower(buf, s, e, 'close')) this.connectionClose = true;
      else if (equalsLower(buf, s, e, 'keep-alive')) this.connectionKeepAlive = true;
      else if (equalsLower(buf, s, e, 'upgrade')) this.connectionUpgrade = true;
      else if (e > s) this.connectionOther = true;
      if (p >= ve) return;
      p++;
    }
  }

  /**
   * The framing refusal shared by requests and responses (RFC 9112 §6.1, §6.3), or null: CL with
   * TE, TE on HTTP/1.0, chunked not last or twice, a coding other than chunked.
   */
  protected codingRefusal(http10: boolean): Refusal | null {
    if (!this.transferEncoding) return null;
    if (this.contentLength >= 0) return 'content-length-and-chunked';
    if (http10) return 'te-http10';
    if (this.chunkedNotLast) return 'chunked-not-last';
    if (this.unknownCoding) return 'unknown-coding';
    if (this.chunkedTwice || !this.chunked) return 'bad-transfer-encoding';
    return null;
  }
}
