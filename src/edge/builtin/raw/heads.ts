// The raw engine's head rewriting, bytes in, bytes out: the request head for the target (the
// client's field lines copied as they are, hop-by-hop and forwarding ones dropped, the proxy's
// own forwarding fields appended) and the response head for the client. The same rules as
// headers.ts applies on the node:http path, read from the parser's FieldKind tags instead of
// comparing names. A head whose Connection names other fields never comes here (see client.ts).
import { STATUS_CODES } from 'node:http';
import { FieldKind as K } from '../http1/fields.js';
import { Framing, TargetForm, type RequestHead } from '../http1/request-head.js';
import type { ResponseHead } from '../http1/response-head.js';
import { SESSION_COOKIE, VERSION_HEADER, withoutSessionCookies } from '../headers.js';
import { latin1, putBytes, putLatin1, putSpan } from './bytes.js';
import { newRequestId } from '../request-id.js';

/** What the request head's rewrite learnt on the way, reused per connection. */
export interface ForwardInfo {
  requestId: string;
}

/** What is constant for a client connection. */
export interface PeerInfo {
  /** The client's address (IPv4-mapped IPv6 unmapped), as X-Forwarded-For and X-Real-IP. */
  readonly peer: string;
  /** Its forwarding fields are kept (proxy.trustedProxies). */
  readonly trusted: boolean;
  readonly proto: 'http' | 'https';
  readonly underscores: boolean;
  /** `x-forwarded-for: <peer>CRLF x-forwarded-proto: <proto>CRLF x-forwarded-host: `, as bytes. */
  readonly forwardedFor: Buffer;
  /** `CRLF x-real-ip: <peer>CRLF x-request-id: `, as bytes. */
  readonly realIpAndId: Buffer;
}

export function peerInfo(
  peer: string,
  trusted: boolean,
  proto: 'http' | 'https',
  underscores: boolean,
): PeerInfo {
  return {
    peer,
    trusted,
    proto,
    underscores,
    forwardedFor: latin1(`x-forwarded-for: ${peer}\r\nx-forwarded-proto: ${proto}\r\nx-forwarded-host: `),
    realIpAndId: latin1(`\r\nx-real-ip: ${peer}\r\nx-request-id: `),
  };
}

/** As undici sends it: the target keeps the connection for the next request. */
const HTTP11 = latin1(' HTTP/1.1\r\nconnection: keep-alive\r\n');
const UNDERSCORE = 95;
const CR = 13;
const LF = 10;

function hasUnderscore(src: Buffer, s: number, e: number): boolean {
  for (let p = s; p < e; p++) if (src[p] === UNDERSCORE) return true;
  return false;
}

/** x-request-id as it may be forwarded: 1-200 visible ASCII bytes. */
function validRequestId(src: Buffer, s: number, e: number): boolean {
  if (e - s < 1 || e - s > 200) return false;
  for (let p = s; p < e; p++) if (src[p]! < 0x21 || src[p]! > 0x7e) return false;
  return true;
}

/** Whether the field name at src[s, e) is Cookie, in any case. */
function isCookie(src: Buffer, s: number, e: number): boolean {
  if (e - s !== 6) return false;
  const name = 'cookie';
  for (let i = 0; i < 6; i++) if ((src[s + i]! | 0x20) !== name.charCodeAt(i)) return false;
  return true;
}

/**
 * Kept field lines that follow one another in src, each ending in CRLF right after its value,
 * are copied as one span when the run ends: src[run.s, run.e), e -1 for none. One for the
 * module: a head is rewritten synchronously, start to end.
 */
const run = { s: 0, e: -1 };

/** Copies the run so far to out at n, and ends it. */
function flushRun(out: Buffer, n: number, src: Buffer): number {
  n = putSpan(out, n, src, run.s, run.e);
  run.e = -1;
  return n;
}

/**
 * Keeps the field line from ns to its value's end ve: into the run when it is as sent (CRLF
 * right after the value), else the run, then the line without its trailing whitespace.
 */
function keepField(out: Buffer, n: number, src: Buffer, ns: number, ve: number): number {
  if (src[ve] === CR) {
    if (ns !== run.e) {
      n = putSpan(out, n, src, run.s, run.e);
      run.s = ns;
    }
    run.e = ve + 2;
    return n;
  }
  n = flushRun(out, n, src);
  n = putSpan(out, n, src, ns, ve);
  out[n++] = CR;
  out[n++] = LF;
  return n;
}

/** `scratch` if it has room for `need` bytes, else a new buffer. */
function room(scratch: Buffer | null, need: number): Buffer {
  return scratch !== null && scratch.length >= need ? scratch : Buffer.allocUnsafe(need);
}

/**
 * The request head to send upstream for the head `h` in `src`, written into `scratch` when it
 * fits; `info.requestId` is set to the client's valid X-Request-Id or a new one.
 */
export function upstreamRequestHead(
  h: RequestHead,
  src: Buffer,
  peer: PeerInfo,
  info: ForwardInfo,
  scratch: Buffer | null,
): Buffer {
  let requestId = '';
  // Forwarding fields, from a trusted peer only (strings: a rare path).
  let xff = '';
  let proto = '';
  let fwdHost = '';
  let realIp = '';
  let forwarded = '';
  if (peer.trusted) {
    for (let i = 0; i < h.count; i++) {
      const k = h.kind(i);
      if (k < K.xForwardedFor || k > K.forwarded) continue;
      const v = h.value(src, i);
      if (k === K.xForwardedFor) xff = xff ? `${xff}, ${v}` : v;
      else if (k === K.xForwardedProto) proto = v;
      else if (k === K.xForwardedHost) fwdHost = v;
      else if (k === K.xRealIp) realIp = v;
      else forwarded = forwarded ? `${forwarded}, ${v}` : v;
    }
  }
  const extra = xff.length + proto.length + fwdHost.length + realIp.length + forwarded.length;
  const out = room(scratch, 2 * (h.end - h.start) + 4 * peer.peer.length + extra + 420);
  let n = 0;
  const absolute = h.targetForm === TargetForm.absolute;
  // The method and target as sent (a method's bytes are its name: methods are case-sensitive).
  if (!absolute) n = putSpan(out, 0, src, h.targetStart - h.method.length - 1, h.targetEnd);
  else {
    n = putLatin1(out, 0, h.method);
    out[n++] = 32;
    if (h.pathStart === h.targetEnd) out[n++] = 47;
    else {
      if (src[h.pathStart] !== 47) out[n++] = 47;
      n = putSpan(out, n, src, h.pathStart, h.targetEnd);
    }
  }
  n = putBytes(out, n, HTTP11);
  // Where the Host value lies (X-Forwarded-Host), in src.
  let hostS = absolute ? h.authorityStart : 0;
  let hostE = absolute ? h.authorityEnd : 0;
  run.e = -1;
  for (let i = 0; i < h.count; i++) {
    const k = h.kind(i);
    const ns = h.nameStart(i);
    if (k === K.other) {
      if (!peer.underscores && hasUnderscore(src, ns, h.nameEnd(i))) continue;
      // The dashboard's session cookies stay with Baton (as on the node path, headers.ts).
      if (isCookie(src, ns, h.nameEnd(i))) {
        const at = src.indexOf(SESSION_COOKIE, h.valueStart(i));
        if (at !== -1 && at < h.valueEnd(i)) {
          const kept = withoutSessionCookies(h.value(src, i));
          n = flushRun(out, n, src);
          if (kept !== '') n += out.write(`cookie: ${kept}\r\n`, n, 'latin1');
          continue;
        }
      }
    } else if (k === K.host) {
      if (absolute) {
        n = flushRun(out, n, src);
        n = putSpan(out, n, src, ns, h.nameEnd(i));
        out[n++] = 58;
        out[n++] = 32;
        n = putSpan(out, n, src, hostS, hostE);
        out[n++] = CR;
        out[n++] = LF;
        continue;
      }
      hostS = h.valueStart(i);
      hostE = h.valueEnd(i);
    } else if (k === K.xRequestId) {
      if (requestId === '' && validRequestId(src, h.valueStart(i), h.valueEnd(i))) {
        requestId = h.value(src, i);
      }
      continue;
    } else if (k !== K.contentLength && k !== K.transferEncoding) continue;
    n = keepField(out, n, src, ns, h.valueEnd(i));
  }
  n = flushRun(out, n, src);
  // An absolute-form request without a Host line (RFC 9112 §3.2.2: the authority is the host).
  if (absolute && h.hostField < 0) {
    n = putLatin1(out, n, 'host: ');
    n = putSpan(out, n, src, hostS, hostE);
    out[n++] = CR;
    out[n++] = LF;
  }
  if (requestId === '') requestId = newRequestId();
  info.requestId = requestId;
  if (xff === '' && proto === '') n = putBytes(out, n, peer.forwardedFor);
  else {
    n = putLatin1(out, n, 'x-forwarded-for: ');
    if (xff !== '') n = putLatin1(out, n, `${xff}, `);
    n = putLatin1(out, n, peer.peer);
    n = putLatin1(out, n, '\r\nx-forwarded-proto: ');
    n = putLatin1(out, n, proto || peer.proto);
    n = putLatin1(out, n, '\r\nx-forwarded-host: ');
  }
  if (fwdHost !== '') n = putLatin1(out, n, fwdHost);
  else n = putSpan(out, n, src, hostS, hostE);
  if (realIp === '') n = putBytes(out, n, peer.realIpAndId);
  else {
    n = putLatin1(out, n, '\r\nx-real-ip: ');
    n = putLatin1(out, n, realIp);
    n = putLatin1(out, n, '\r\nx-request-id: ');
  }
  n = putLatin1(out, n, requestId);
  if (forwarded !== '') n = putLatin1(out, n, `\r\nforwarded: ${forwarded}`);
  out[n++] = CR;
  out[n++] = LF;
  out[n++] = CR;
  out[n++] = LF;
  return out.subarray(0, n);
}

/** What the proxy adds to a response head. */
export interface ResponseAdditions {
  readonly requestId: string;
  /** The answering target's version for VERSION_HEADER, '' for none (proxy.versionHeader off). */
  readonly version: string;
  readonly setCookie: string | null;
  readonly hsts: string | null;
  /** The client's connection ends after this answer. */
  readonly close: boolean;
}

/** Field names the target's Connection header lists (hop-by-hop too); a rare path. */
function connectionNamed(h: ResponseHead, src: Buffer): Set<string> {
  const named = new Set<string>();
  for (let i = 0; i < h.count; i++) {
    if (h.kind(i) !== K.connection) continue;
    for (const t of h.value(src, i).split(',')) {
      const name = t.trim().toLowerCase();
      if (name !== '') named.add(name);
    }
  }
  return named;
}

const DROPPED_RESPONSE = new Uint8Array(32);
for (const k of [
  K.connection,
  K.keepAlive,
  K.proxyConnection,
  K.te,
  K.trailer,
  K.transferEncoding,
  K.upgrade,
  K.proxyAuthenticate,
  K.proxyAuthorization,
])
  DROPPED_RESPONSE[k] = 1;

/** `HTTP/1.1 <status> ` by status, made on first use. */
const STATUS_PREFIX: (Buffer | undefined)[] = [];
const CHUNKED = latin1('transfer-encoding: chunked\r\n');
const REQUEST_ID = latin1('x-request-id: ');
const VERSION = latin1(`${VERSION_HEADER}: `);
const SET_COOKIE = latin1('set-cookie: ');
const HSTS = latin1('strict-transport-security: ');
const CLOSE = latin1('connection: close\r\n');

/**
 * The response head for the client from the target's head `h` in `src`, with `bodyRoom` bytes
 * free after it (for a small body to go out in the same write): the head is the first
 * `length - bodyRoom` bytes. Written into `scratch` when it fits.
 */
export function downstreamResponseHead(
  h: ResponseHead,
  src: Buffer,
  a: ResponseAdditions,
  bodyRoom: number,
  scratch: Buffer | null,
): Buffer {
  const named = h.connectionOther ? connectionNamed(h, src) : null;
  const extra =
    a.requestId.length + a.version.length + (a.setCookie?.length ?? 0) + (a.hsts?.length ?? 0) + 200;
  const out = room(scratch, h.end - h.start + extra + 64 + bodyRoom);
  const status = h.status;
  let n = putBytes(out, 0, (STATUS_PREFIX[status] ??= latin1(`HTTP/1.1 ${status} `)));
  if (h.reasonEnd > h.reasonStart) n = putSpan(out, n, src, h.reasonStart, h.reasonEnd);
  else n = putLatin1(out, n, STATUS_CODES[status] ?? '');
  out[n++] = CR;
  out[n++] = LF;
  let hasRequestId = false;
  const version = a.version;
  run.e = -1;
  for (let i = 0; i < h.count; i++) {
    const k = h.kind(i);
    if (DROPPED_RESPONSE[k] === 1) continue;
    if (k === K.xRequestId) hasRequestId = true;
    else if (version !== '' && h.nameIs(src, i, VERSION_HEADER)) continue;
    if (named !== null && named.has(h.name(src, i).toLowerCase())) continue;
    n = keepField(out, n, src, h.nameStart(i), h.valueEnd(i));
  }
  n = flushRun(out, n, src);
  if (h.framing === Framing.chunked) n = putBytes(out, n, CHUNKED);
  if (!hasRequestId) n = putLine(out, putBytes(out, n, REQUEST_ID), a.requestId);
  if (version !== '') n = putLine(out, putBytes(out, n, VERSION), version);
  if (a.setCookie !== null) n = putLine(out, putBytes(out, n, SET_COOKIE), a.setCookie);
  if (a.hsts !== null) n = putLine(out, putBytes(out, n, HSTS), a.hsts);
  if (a.close) n = putBytes(out, n, CLOSE);
  out[n++] = CR;
  out[n++] = LF;
  return out.subarray(0, n + bodyRoom);
}

/** `value` and CRLF at n. */
function putLine(out: Buffer, n: number, value: string): number {
  n = putLatin1(out, n, value);
  out[n++] = CR;
  out[n++] = LF;
  return n;
}

/** An answer of the proxy's own (502, 503, 504, 408, 413, 400), with a text body. */
export function ownAnswer(
  status: number,
  reason: string,
  text: string,
  requestId: string,
  extra: string,
  close: boolean,
): Buffer {
  const body = requestId === '' ? `${text} (baton)\n` : `${text} (baton, request ${requestId})\n`;
  return Buffer.from(
    `HTTP/1.1 ${status} ${reason}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` +
      (requestId === '' ? '' : `x-request-id: ${requestId}\r\n`) +
      extra +
      (close ? 'connection: close\r\n' : '') +
      `\r\n${body}`,
    'latin1',
  );
}
