// Request and response header rewriting: hop-by-hop headers dropped (RFC 9110 7.6.1, plus any
// named in Connection), forwarding headers set, and client-supplied forwarding headers trusted
// only from configured proxies.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { BlockList, isIPv4, isIPv6 } from 'node:net';

/** Never forwarded in either direction. `expect` is answered by the proxy itself. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
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
}

/**
 * The headers to send upstream. `upgrade` keeps Connection/Upgrade for tunnelled requests.
 */
export function upstreamRequestHeaders(
  req: IncomingMessage,
  trusted: TrustedProxies,
  encrypted: boolean,
  upgrade = false,
): ForwardedRequestHeaders {
  const raw = req.rawHeaders;
  const named = connectionTokens(req.headers.connection);
  const peer = unmapped(req.socket.remoteAddress ?? '');
  const fromTrusted = trusted.has(peer);
  const out: string[] = [];
  let requestId = '';
  let xff = '';
  let proto = '';
  let fwdHost = '';
  let realIp = '';
  let forwarded = '';
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const value = raw[i + 1]!;
    const lower = name.toLowerCase();
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
    out.push(name, value);
  }
  if (requestId === '') requestId = randomUUID();
  out.push(
    'x-forwarded-for',
    xff ? `${xff}, ${peer}` : peer,
    'x-forwarded-proto',
    proto || (encrypted ? 'https' : 'http'),
    'x-forwarded-host',
    fwdHost || req.headers.host || '',
    'x-real-ip',
    realIp || peer,
    'x-request-id',
    requestId,
  );
  if (forwarded) out.push('forwarded', forwarded);
  return { headers: out, requestId };
}

export interface DownstreamHeaders {
  /** Flat [name, value, ...] list for ServerResponse.writeHead. */
  readonly headers: string[];
  /** Whether the body has a declared length (else it streams until the target ends it). */
  readonly fixedLength: boolean;
}

/** Response headers from undici's raw list, without hop-by-hop ones. */
export function downstreamResponseHeaders(raw: readonly Buffer[], requestId: string): DownstreamHeaders {
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
    if (HOP_BY_HOP.has(lower)) continue;
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
  return { headers: out, fixedLength };
}
