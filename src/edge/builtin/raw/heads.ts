// The raw engine's head rewriting, bytes in, bytes out: the request head for the target (the
// client's field lines copied as they are, hop-by-hop and forwarding ones dropped, the proxy's
// own forwarding fields appended) and the response head for the client. The same rules as
// headers.ts applies on the node:http path, read from the parser's FieldKind tags instead of
// comparing names. A head whose Connection names other fields never comes here (see client.ts).
import { randomUUID } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import { FieldKind as K } from '../http1/fields.js';
import { Framing, TargetForm, type RequestHead } from '../http1/request-head.js';
import type { ResponseHead } from '../http1/response-head.js';
import { SESSION_COOKIE, VERSION_HEADER, withoutSessionCookies } from '../headers.js';

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
}

/** As undici sends it: the target keeps the connection for the next request. */
const HTTP11 = ' HTTP/1.1\r\nconnection: keep-alive\r\n';
const UNDERSCORE = 95;

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
 * The request head to send upstream for the head `h` in `src`; `info.requestId` is set to the
 * client's valid X-Request-Id or a new one.
 */
export function upstreamRequestHead(h: RequestHead, src: Buffer, peer: PeerInfo, info: ForwardInfo): Buffer {
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
  const out = Buffer.allocUnsafe(2 * (h.end - h.start) + 4 * peer.peer.length + extra + 420);
  let n = out.write(h.method, 0, 'latin1');
  out[n++] = 32;
  const absolute = h.targetForm === TargetForm.absolute;
  if (!absolute) n += src.copy(out, n, h.targetStart, h.targetEnd);
  else if (h.pathStart === h.targetEnd) out[n++] = 47;
  else {
    if (src[h.pathStart] !== 47) out[n++] = 47;
    n += src.copy(out, n, h.pathStart, h.targetEnd);
  }
  n += out.write(HTTP11, n, 'latin1');
  // Where the Host value lies (X-Forwarded-Host), in src.
  let hostS = absolute ? h.authorityStart : 0;
  let hostE = absolute ? h.authorityEnd : 0;
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
          if (kept !== '') n += out.write(`cookie: ${kept}\r\n`, n, 'latin1');
          continue;
        }
      }
    } else if (k === K.host) {
      if (absolute) {
        n += src.copy(out, n, ns, h.nameEnd(i));
        out[n++] = 58;
        out[n++] = 32;
        n += src.copy(out, n, hostS, hostE);
        out[n++] = 13;
        out[n++] = 10;
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
    n += src.copy(out, n, ns, h.valueEnd(i));
    out[n++] = 13;
    out[n++] = 10;
  }
  // An absolute-form request without a Host line (RFC 9112 §3.2.2: the authority is the host).
  if (absolute && h.hostField < 0) {
    n += out.write('host: ', n, 'latin1');
    n += src.copy(out, n, hostS, hostE);
    n += out.write('\r\n', n, 'latin1');
  }
  if (requestId === '') requestId = randomUUID();
  info.requestId = requestId;
  n += out.write('x-forwarded-for: ', n, 'latin1');
  if (xff !== '') n += out.write(`${xff}, `, n, 'latin1');
  n += out.write(peer.peer, n, 'latin1');
  n += out.write('\r\nx-forwarded-proto: ', n, 'latin1');
  n += out.write(proto || peer.proto, n, 'latin1');
  n += out.write('\r\nx-forwarded-host: ', n, 'latin1');
  if (fwdHost !== '') n += out.write(fwdHost, n, 'latin1');
  else n += src.copy(out, n, hostS, hostE);
  n += out.write('\r\nx-real-ip: ', n, 'latin1');
  n += out.write(realIp || peer.peer, n, 'latin1');
  n += out.write('\r\nx-request-id: ', n, 'latin1');
  n += out.write(requestId, n, 'latin1');
  if (forwarded !== '') n += out.write(`\r\nforwarded: ${forwarded}`, n, 'latin1');
  n += out.write('\r\n\r\n', n, 'latin1');
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

/** The response head for the client from the target's head `h` in `src`. */
export function downstreamResponseHead(h: ResponseHead, src: Buffer, a: ResponseAdditions): Buffer {
  const named = h.connectionOther ? connectionNamed(h, src) : null;
  const extra =
    a.requestId.length + a.version.length + (a.setCookie?.length ?? 0) + (a.hsts?.length ?? 0) + 200;
  const out = Buffer.allocUnsafe(h.end - h.start + extra + 64);
  let n = out.write('HTTP/1.1 ', 0, 'latin1');
  n += out.write(String(h.status), n, 'latin1');
  out[n++] = 32;
  if (h.reasonEnd > h.reasonStart) n += src.copy(out, n, h.reasonStart, h.reasonEnd);
  else n += out.write(STATUS_CODES[h.status] ?? '', n, 'latin1');
  out[n++] = 13;
  out[n++] = 10;
  let hasRequestId = false;
  const version = a.version;
  for (let i = 0; i < h.count; i++) {
    const k = h.kind(i);
    if (DROPPED_RESPONSE[k] === 1) continue;
    if (k === K.xRequestId) hasRequestId = true;
    else if (version !== '' && h.nameIs(src, i, VERSION_HEADER)) continue;
    if (named !== null && named.has(h.name(src, i).toLowerCase())) continue;
    n += src.copy(out, n, h.nameStart(i), h.valueEnd(i));
    out[n++] = 13;
    out[n++] = 10;
  }
  if (h.framing === Framing.chunked) n += out.write('transfer-encoding: chunked\r\n', n, 'latin1');
  if (!hasRequestId) n += out.write(`x-request-id: ${a.requestId}\r\n`, n, 'latin1');
  if (version !== '') n += out.write(`${VERSION_HEADER}: ${version}\r\n`, n, 'latin1');
  if (a.setCookie !== null) n += out.write(`set-cookie: ${a.setCookie}\r\n`, n, 'latin1');
  if (a.hsts !== null) n += out.write(`strict-transport-security: ${a.hsts}\r\n`, n, 'latin1');
  if (a.close) n += out.write('connection: close\r\n', n, 'latin1');
  out[n++] = 13;
  out[n++] = 10;
  return out.subarray(0, n);
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
