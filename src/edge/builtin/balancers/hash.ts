// Consistent hashing on the client IP, a header or a cookie (nginx's `hash ... consistent`):
// a ring of virtual nodes, more for heavier targets, so adding or removing one target moves
// only its share of keys. A request without the key falls back to round-robin.
import type { IncomingMessage } from 'node:http';
import type { Target } from '../target.js';
import { eligible, type Balancer, type RouteEntry } from './balancer.js';
import { RoundRobin } from './round-robin.js';

const POINTS_PER_AVERAGE_WEIGHT = 160;

export type HashKey = { kind: 'ip' } | { kind: 'header'; name: string } | { kind: 'cookie'; name: string };

export function parseHashKey(text: string): HashKey {
  if (text === 'ip') return { kind: 'ip' };
  const [kind, name = ''] = text.split(':', 2);
  return kind === 'cookie' ? { kind: 'cookie', name } : { kind: 'header', name: name.toLowerCase() };
}

export class ConsistentHash implements Balancer {
  private readonly points: Uint32Array;
  private readonly owners: RouteEntry[];
  private readonly fallback: RoundRobin;

  constructor(
    entries: readonly RouteEntry[],
    private readonly key: HashKey,
  ) {
    this.fallback = new RoundRobin(entries);
    const weighted = entries.filter((e) => e.weight > 0 && !e.backup);
    const avg = weighted.reduce((s, e) => s + e.weight, 0) / (weighted.length || 1);
    const ring: { point: number; entry: RouteEntry }[] = [];
    for (const e of weighted) {
      const n = Math.max(1, Math.round((POINTS_PER_AVERAGE_WEIGHT * e.weight) / avg));
      for (let i = 0; i < n; i++) ring.push({ point: fnv1a(`${e.target.spec.id}-${i}`), entry: e });
    }
    ring.sort((a, b) => a.point - b.point);
    this.points = Uint32Array.from(ring, (r) => r.point);
    this.owners = ring.map((r) => r.entry);
  }

  pick(req: IncomingMessage, now: number, tried: readonly Target[] | null): Target | undefined {
    const value = keyOf(req, this.key);
    if (value === undefined || this.points.length === 0) return this.fallback.pick(req, now, tried);
    const h = fnv1a(value);
    // First point clockwise from the hash; walk on past targets that are down or tried.
    let lo = 0;
    let hi = this.points.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.points[mid]! < h) lo = mid + 1;
      else hi = mid;
    }
    for (let k = 0; k < this.owners.length; k++) {
      const e = this.owners[(lo + k) % this.owners.length]!;
      if (eligible(e, now, tried)) return e.target;
    }
    return this.fallback.pick(req, now, tried);
  }
}

function keyOf(req: IncomingMessage, key: HashKey): string | undefined {
  switch (key.kind) {
    case 'ip':
      return req.socket.remoteAddress;
    case 'header': {
      const v = req.headers[key.name];
      return Array.isArray(v) ? v[0] : v || undefined;
    }
    case 'cookie':
      return cookieValue(req.headers.cookie, key.name);
  }
}

export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** 32-bit FNV-1a with a final avalanche, good enough to spread ring points. */
function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  return h >>> 0;
}
