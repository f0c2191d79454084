// Traffic split between a stable and a canary set, decided per request before balancing:
// A/B rules first (a matching request goes to the canary), then a sticky bucket (0..9999)
// compared with the canary's share. The bucket comes from a header or cookie the user names,
// or from a cookie Baton sets itself, so a client keeps its side as the share grows: raising
// 10% to 50% only moves buckets 1000..4999 over, and nobody flips back.
import type { IncomingMessage } from 'node:http';
import { BlockList, isIPv6 } from 'node:net';
import type { MatchSpec, SplitSpec } from '../edge.js';
import { cookieValue } from './balancers/hash.js';
import { unmapped } from './headers.js';

export const BATON_COOKIE = 'baton_canary';
const BUCKETS = 10_000;
const COOKIE_MAX_AGE_S = 7 * 24 * 3600;

export interface LaneDecision {
  readonly canary: boolean;
  /** A Set-Cookie value when Baton gave the client a new bucket. */
  readonly setCookie: string | null;
}

type Matcher = (req: IncomingMessage) => boolean;

function valueMatcher(spec: {
  equals?: string;
  prefix?: string;
  regex?: string;
}): (v: string | undefined) => boolean {
  if (spec.equals !== undefined) return (v) => v === spec.equals;
  if (spec.prefix !== undefined) return (v) => v !== undefined && v.startsWith(spec.prefix!);
  if (spec.regex !== undefined) {
    const re = new RegExp(spec.regex);
    return (v) => v !== undefined && re.test(v);
  }
  return (v) => v !== undefined; // present
}

function compile(rule: MatchSpec): Matcher {
  if ('ip' in rule) {
    const list = new BlockList();
    const [addr = '', bits] = rule.ip.split('/');
    const type = isIPv6(addr) ? 'ipv6' : 'ipv4';
    if (bits === undefined) list.addAddress(addr, type);
    else list.addSubnet(addr, Number(bits), type);
    return (req) => {
      const a = unmapped(req.socket.remoteAddress ?? '');
      return list.check(a, isIPv6(a) ? 'ipv6' : 'ipv4');
    };
  }
  const test = valueMatcher(rule);
  if ('header' in rule) {
    const name = rule.header.toLowerCase();
    return (req) => {
      const v = req.headers[name];
      return test(Array.isArray(v) ? v[0] : v);
    };
  }
  const name = rule.cookie;
  return (req) => test(cookieValue(req.headers.cookie, name));
}

export class Split {
  private readonly matchers: Matcher[];
  private readonly threshold: number;

  constructor(readonly spec: SplitSpec) {
    this.matchers = spec.rules.map(compile);
    this.threshold = Math.round((spec.canaryPercent / 100) * BUCKETS);
  }

  lane(req: IncomingMessage): LaneDecision {
    for (const m of this.matchers) if (m(req)) return { canary: true, setCookie: null };
    const sticky = this.spec.sticky;
    if (sticky === 'baton') {
      const raw = cookieValue(req.headers.cookie, BATON_COOKIE);
      const known = raw !== undefined && /^\d{1,4}$/.test(raw) ? Number(raw) : -1;
      if (known >= 0) return { canary: known < this.threshold, setCookie: null };
      const bucket = Math.floor(Math.random() * BUCKETS);
      return {
        canary: bucket < this.threshold,
        setCookie: `${BATON_COOKIE}=${bucket}; Path=/; Max-Age=${COOKIE_MAX_AGE_S}; HttpOnly; SameSite=Lax`,
      };
    }
    const key =
      'header' in sticky
        ? (req.headers[sticky.header.toLowerCase()] as string | undefined)
        : cookieValue(req.headers.cookie, sticky.cookie);
    // No key: a one-off bucket (the client cannot be kept on one side without one).
    const bucket = key === undefined ? Math.floor(Math.random() * BUCKETS) : bucketOf(key);
    return { canary: bucket < this.threshold, setCookie: null };
  }
}

/** A stable bucket for a key: FNV-1a, mod 10000. */
export function bucketOf(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % BUCKETS;
}
