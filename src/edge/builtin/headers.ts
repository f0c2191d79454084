// Request and response header rewriting: hop-by-hop headers dropped (RFC 9110 7.6.1, plus any
// named in Connection), forwarding headers set, and client-supplied forwarding headers trusted
// only from configured proxies. The same pass checks what llhttp lets through but a target must
// not see (RFC 9112 §3.2, §6.1): one valid Host, a request target that names a path, chunked as
// the only transfer coding.
import type { IncomingMessage } from 'node:http';
import { BlockList, isIPv4, isIPv6 } from 'node:net';
import { newRequestId } from './request-id.js';

/** Never forwarded in either direction. `expect` is answered by the proxy itself. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  // RFC 9113 §3.2.1 (h2c's upgrade header): connection-specific, and refused by HTTP/2.
  'http2-settings',
  'proxy-authenticate',
  'proxy-authorization',
]);

/** Replaced by the proxy's own values unless the peer is a trusted proxy. */
const FORWARDING = new Set([
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'x-real-ip',
  'forwarded',
]);

const REQUEST_ID = /^[\x21-\x7e]{1,200}$/;

/** A request the proxy answers itself instead of forwarding. */
export interface ProxyAnswer {
  readonly status: number;
  readonly statusText: string;
  /** The plain-text body ('' for none). */
  readonly body: string;
  readonly headers: Readonly<Record<string, string>>;
}

/**
 * `close`: the connection cannot carry another request (the body is never read, and its framing
 * may be unknown).
 */
function answer(status: number, statusText: string, reason: string, close = true): ProxyAnswer {
  const body = reason && `${reason} (baton)\n`;
  const headers: Record<string, string> = { 'content-length': String(body.length) };
  if (body) headers['content-type'] = 'text/plain; charset=utf-8';
  if (close) headers.connection = 'close';
  return { status, statusText, body, headers };
}

// One object each, made once: answering allocates nothing.
const DUPLICATE_HOST = answer(400, 'Bad Request', 'more than one Host header');
const BAD_HOST = answer(400, 'Bad Request', 'the Host header is not a valid host[:port]');
const BAD_TARGET = answer(400, 'Bad Request', 'the request target is neither a path nor an http(s) URL');
const TE_HTTP10 = answer(400, 'Bad Request', 'Transfer-Encoding in an HTTP/1.0 request');
const BAD_CHUNKED = answer(400, 'Bad Request', 'Transfer-Encoding must be chunked, once');
// As nginx: a coding we cannot undo leaves the body's end unknown (RFC 9112 §6.1: SHOULD 501).
const UNKNOWN_CODING = answer(501, 'Not Implemented', 'only the chunked transfer coding is supported');
/**
 * `OPTIONS *` asks about the server itself (RFC 9110 §9.3.7) and has no path to forward (undici
 * and most apps cannot send or route `*`): the proxy is that server, so it answers.
 */
const OPTIONS_ASTERISK = answer(200, 'OK', '', false);
const NO_AUTHORITY = answer(400, 'Bad Request', 'an HTTP/2 request needs :authority or a Host header');
/** CONNECT asks for a tunnel to any authority: a reverse proxy serves its own targets only (as nginx). */
export const CONNECT_REFUSED = answer(405, 'Method Not Allowed', 'CONNECT is not supported');

// RFC 3986 reg-name characters besides pct-encoded: unreserved and sub-delims (IPv4 is a subset).
const REG_NAME = new Uint8Array(128);
for (const c of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=")
  REG_NAME[c.charCodeAt(0)] = 1;
const IPV_FUTURE = /^v[0-9a-f]+\.[\w.~!$&'()*+,;=:-]+$/i;

function isHex(c: number): boolean {
  return (c >= 48 && c <= 57) || ((c | 0x20) >= 97 && (c | 0x20) <= 102);
}

/**
 * `uri-host [":" port]` (RFC 9110 §7.2): an IP literal in brackets, or a non-empty reg-name /
 * IPv4 address. Nothing a target could read as a path, userinfo or a second authority.
 */
export function validAuthority(s: string): boolean {
  const n = s.length;
  let i = 0;
  if (n === 0) return false;
  if (s.charCodeAt(0) === 91) {
    const close = s.indexOf(']');
    if (close < 0) return false;
    const literal = s.slice(1, close);
    if (!isIPv6(literal) && !IPV_FUTURE.test(literal)) return false;
    i = close + 1;
  } else {
    for (; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c === 58) break;
      if (c === 37) {
        if (i + 2 >= n || !isHex(s.charCodeAt(i + 1)) || !isHex(s.charCodeAt(i + 2))) return false;
        i += 2;
      } else if (c > 127 || REG_NAME[c] === 0) return false;
    }
    if (i === 0) return false;
  }
  if (i === n) return true;
  if (s.charCodeAt(i) !== 58) return false;
  for (i++; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

/**
 * An absolute-form target (RFC 9112 §3.2.2), as a forward proxy would get it: rewrites `req.url`
 * to origin-form and returns the URI's authority, which replaces Host; null when it is not a
 * valid http(s) URL.
 */
function absoluteForm(req: IncomingMessage, url: string): string | null {
  const sep = url.indexOf('://');
  if (sep !== 4 && sep !== 5) return null;
  const scheme = url.slice(0, sep).toLowerCase();
  if (scheme !== 'http' && scheme !== 'https') return null;
  let end = sep + 3;
  while (end < url.length && url.charCodeAt(end) !== 47 && url.charCodeAt(end) !== 63) end++;
  const authority = url.slice(sep + 3, end);
  if (!validAuthority(authority)) return null;
  req.url = end === url.length ? '/' : url.charCodeAt(end) === 47 ? url.slice(end) : `/${url.slice(end)}`;
  // Balancing and split rules read Host from here.
  req.headers.host = authority;
  return authority;
}

/** Why a Transfer-Encoding value (all its lines joined) is refused; null for chunked alone. */
function transferCodingRefusal(req: IncomingMessage, value: string): ProxyAnswer | null {
  // RFC 9112 §6.1: an HTTP/1.0 message with Transfer-Encoding has faulty framing.
  if (req.httpVersionMajor === 1 && req.httpVersionMinor === 0) return TE_HTTP10;
  if (value === 'chunked') return null;
  let chunked = 0;
  for (const t of value.split(',')) {
    const coding = t.trim().toLowerCase();
    if (coding === 'chunked') chunked++;
    else if (coding !== '') return UNKNOWN_CODING;
  }
  return chunked === 1 ? null : BAD_CHUNKED;
}

export class TrustedProxies {
  private readonly list = new BlockList();
  readonly empty: boolean;

  constructor(cidrs: readonly string[]) {
    this.empty = cidrs.length === 0;
    for (const c of cidrs) {
      const [addr = '', bits] = c.split('/');
      const type = isIPv6(addr) ? 'ipv6' : 'ipv4';
      if (bits === undefined) this.list.addAddress(addr, type);
      else this.list.addSubnet(addr, Number(bits), type);
    }
  }

  has(address: string): boolean {
    if (this.empty) return false;
    const plain = unmapped(address);
    return this.list.check(plain, isIPv4(plain) ? 'ipv4' : 'ipv6');
  }
}

export function unmapped(address: string): string {
  return address.startsWith('::ffff:') && isIPv4(address.slice(7)) ? address.slice(7) : address;
}

/** Names listed in a Connection header, lower-cased (they are hop-by-hop too). */
function connectionTokens(value: string | undefined): Set<string> | null {
  if (!value) return null;
  const set = new Set<string>();
  for (const t of value.split(',')) {
    const name = t.trim().toLowerCase();
    if (name && name !== 'close' && name !== 'keep-alive' && name !== 'upgrade') set.add(name);
  }
  return set.size ? set : null;
}

export interface ForwardedRequestHeaders {
  /** Flat [name, value, ...] list for undici. */
  readonly headers: string[];
  readonly requestId: string;
  /** Not null: do not forward the request; answer this instead. */
  readonly answer: ProxyAnswer | null;
}

/**
 * The headers to send upstream. `upgrade` keeps Connection/Upgrade for tunnelled requests;
 * header names with `_` are dropped unless `underscores` (nginx's `underscores_in_headers`).
 * An absolute-form target is rewritten to origin-form in `req` (url and Host) on the way.
 */
/**
 * An HTTP/2 request's fields as the HTTP/1.1 lines the target gets (RFC 9113 §8.3.1, §8.2.3):
 * pseudo-header fields out, :authority as Host (a Host field naming anything else stays, and is
 * refused as a second Host), the cookie crumbs joined into one line with "; ". node:http2 has
 * refused connection-specific fields and uppercase names already.
 */
function h2Fields(req: IncomingMessage): string[] {
  const raw = req.rawHeaders;
  const authority = req.headers[':authority'];
  const out: string[] = [];
  if (typeof authority === 'string') {
    out.push('host', authority);
    // Balancing and split rules read Host from here, as for HTTP/1.1.
    req.headers.host = authority;
  }
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.charCodeAt(0) === 58 || name === 'cookie') continue;
    if (
      name === 'host' &&
      typeof authority === 'string' &&
      raw[i + 1]!.toLowerCase() === authority.toLowerCase()
    )
      continue;
    out.push(name, raw[i + 1]!);
  }
  const cookie = req.headers.cookie;
  if (cookie !== undefined) out.push('cookie', cookie);
  return out;
}

export function upstreamRequestHeaders(
  req: IncomingMessage,
  trusted: TrustedProxies,
  encrypted: boolean,
  upgrade = false,
  underscores = false,
): ForwardedRequestHeaders {
  const h2 = req.httpVersionMajor === 2;
  const raw = h2 ? h2Fields(req) : req.rawHeaders;
  const named = connectionTokens(req.headers.connection);
  const peer = unmapped(req.socket.remoteAddress ?? '');
  const fromTrusted = trusted.has(peer);
  const out: string[] = [];
  // The first reason found to answer at the proxy instead of forwarding.
  let refused: ProxyAnswer | null = null;
  let asterisk = false;
  // Origin-form is the rule; anything else is rare and checked apart.
  const url = req.url ?? '';
  let authority: string | null = null;
  if (url.charCodeAt(0) !== 47) {
    if (url === '*' && req.method === 'OPTIONS') asterisk = true;
    else if ((authority = absoluteForm(req, url)) === null) refused = BAD_TARGET;
  }
  let hosts = 0;
  let host = '';
  let requestId = '';
  let xff = '';
  let proto = '';
  let fwdHost = '';
  let realIp = '';
  let forwarded = '';
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const value = raw[i + 1]!;
    // CGI/WSGI apps read X_Real_IP as X-Real-IP: such names would pass as forwarding headers.
    if (!underscores && name.includes('_')) continue;
    const lower = name.toLowerCase();
    if (lower === 'host') {
      // RFC 9112 §3.2: 400 for a second Host or an invalid one, whatever the target form.
      if (++hosts > 1) refused ??= DUPLICATE_HOST;
      else if (!validAuthority(value)) refused ??= BAD_HOST;
      host = authority ?? value;
      out.push(name, host);
      continue;
    }
    if (HOP_BY_HOP.has(lower) || lower === 'expect' || (named !== null && named.has(lower))) {
      if (upgrade && (lower === 'upgrade' || lower === 'connection')) out.push(name, value);
      continue;
    }
    if (FORWARDING.has(lower)) {
      if (!fromTrusted) continue;
      if (lower === 'x-forwarded-for') xff = xff ? `${xff}, ${value}` : value;
      else if (lower === 'x-forwarded-proto') proto = value;
      else if (lower === 'x-forwarded-host') fwdHost = value;
      else if (lower === 'x-real-ip') realIp = value;
      else forwarded = forwarded ? `${forwarded}, ${value}` : value;
      continue;
    }
    if (lower === 'x-request-id') {
      if (REQUEST_ID.test(value) && requestId === '') requestId = value;
      continue;
    }
    if (lower === 'cookie' && value.includes(SESSION_COOKIE)) {
      const kept = withoutSessionCookies(value);
      if (kept !== '') out.push(name, kept);
      continue;
    }
    out.push(name, value);
  }
  // Node joins every Transfer-Encoding line into this one value.
  const codings = req.headers['transfer-encoding'];
  if (codings !== undefined) refused ??= transferCodingRefusal(req, codings);
  // An HTTP/1.0 request in absolute-form may have no Host line at all.
  if (authority !== null && hosts === 0) out.push('host', (host = authority));
  else if (h2 && hosts === 0) refused ??= NO_AUTHORITY;
  if (requestId === '') requestId = newRequestId();
  out.push(
    'x-forwarded-for',
    xff ? `${xff}, ${peer}` : peer,
    'x-forwarded-proto',
    proto || (encrypted ? 'https' : 'http'),
    'x-forwarded-host',
    fwdHost || host,
    'x-real-ip',
    realIp || peer,
    'x-request-id',
    requestId,
  );
  if (forwarded) out.push('forwarded', forwarded);
  return { headers: out, requestId, answer: refused ?? (asterisk ? OPTIONS_ASTERISK : null) };
}

/**
 * The dashboard's session cookies (src/dashboard/sessions.ts): browsers send a host's cookies
 * to all its ports, the app's too; the app never sees them.
 */
/** The dashboard's session cookies (src/dashboard/sessions.ts): never forwarded to an app. */
export const SESSION_COOKIE = 'baton_session';

/** A Cookie header's value without its baton_session* pairs (the others kept, in order). */
export function withoutSessionCookies(value: string): string {
  return value
    .split(';')
    .filter((pair) => !pair.trimStart().startsWith(SESSION_COOKIE))
    .map((pair) => pair.trim())
    .filter((pair) => pair !== '')
    .join('; ');
}

export interface DownstreamHeaders {
  /** Flat [name, value, ...] list for ServerResponse.writeHead. */
  readonly headers: string[];
  /** Whether the body has a declared length (else it streams until the target ends it). */
  readonly fixedLength: boolean;
}

/**
 * The response header naming the version of the target that answered, set by the proxy with
 * `proxy.versionHeader: true` (`baton load` reads it first, then the app's own `x-version`).
 */
export const VERSION_HEADER = 'x-baton-version';

/**
 * Response headers from undici's raw list, without hop-by-hop ones. A non-empty `version` is
 * sent as VERSION_HEADER, in place of any the target sent: the proxy knows which one answered.
 */
/**
 * Fields node:http2 takes once only (its kSingleValueHeaders, the response's among them): for
 * an h2 client the first of each is kept, as HTTP/1.1 clients read them.
 */
const SINGLE_VALUE = new Set([
  'access-control-allow-credentials',
  'access-control-max-age',
  'access-control-request-method',
  'age',
  'authorization',
  'content-encoding',
  'content-language',
  'content-length',
  'content-location',
  'content-md5',
  'content-range',
  'content-type',
  'date',
  'dnt',
  'etag',
  'expires',
  'from',
  'host',
  'if-match',
  'if-modified-since',
  'if-none-match',
  'if-range',
  'if-unmodified-since',
  'last-modified',
  'location',
  'max-forwards',
  'proxy-authorization',
  'range',
  'referer',
  'retry-after',
  'tk',
  'upgrade-insecure-requests',
  'user-agent',
  'x-content-type-options',
]);

/** A response's fields for an h2 stream: names in lower case, a single-value field once. */
export function h2ResponseFields(fields: readonly string[]): string[] {
  const out: string[] = [];
  let seen: Set<string> | null = null;
  for (let i = 0; i < fields.length; i += 2) {
    const name = fields[i]!.toLowerCase();
    if (SINGLE_VALUE.has(name)) {
      if ((seen ??= new Set()).has(name)) continue;
      seen.add(name);
    }
    out.push(name, fields[i + 1]!);
  }
  return out;
}

export function downstreamResponseHeaders(
  raw: readonly Buffer[],
  requestId: string,
  version = '',
): DownstreamHeaders {
  const out: string[] = [];
  let named: Set<string> | null = null;
  let hasRequestId = false;
  let fixedLength = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toString('latin1');
    const lower = name.toLowerCase();
    if (lower === 'connection') {
      named = connectionTokens(raw[i + 1]!.toString('latin1'));
      continue;
    }
    if (HOP_BY_HOP.has(lower) || (version !== '' && lower === VERSION_HEADER)) continue;
    if (lower === 'x-request-id') hasRequestId = true;
    else if (lower === 'content-length') fixedLength = true;
    out.push(name, raw[i + 1]!.toString('latin1'));
  }
  if (named !== null) {
    for (let i = out.length - 2; i >= 0; i -= 2) {
      if (named.has(out[i]!.toLowerCase())) out.splice(i, 2);
    }
  }
  if (!hasRequestId) out.push('x-request-id', requestId);
  if (version !== '') out.push(VERSION_HEADER, version);
  return { headers: out, fixedLength };
}
