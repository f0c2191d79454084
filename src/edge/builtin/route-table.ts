// The immutable snapshot the proxy routes by. Every change (add, remove, weight, drain, switch)
// builds a new RouteTable and swaps one reference, so a request sees the old table or the new
// one, never half of a change.
import type { IncomingMessage } from 'node:http';
import type { BalanceConfig } from '../../config/schema.js';
import type { Balancer, RouteEntry } from './balancers/balancer.js';
import { ConsistentHash, parseHashKey } from './balancers/hash.js';
import { LeastConn } from './balancers/least-conn.js';
import { RoundRobin } from './balancers/round-robin.js';
import type { Target } from './target.js';

export type { RouteEntry };

export class RouteTable {
  readonly balancer: Balancer;

  constructor(
    readonly generation: number,
    readonly entries: readonly RouteEntry[],
    readonly balance: BalanceConfig,
  ) {
    Object.freeze(entries);
    this.balancer =
      balance.algorithm === 'least-conn'
        ? new LeastConn(entries)
        : balance.algorithm === 'hash'
          ? new ConsistentHash(entries, parseHashKey(balance.hashKey ?? 'ip'))
          : new RoundRobin(entries);
  }

  /** A target for the request; if every one is down, any untried one (it may have recovered). */
  pick(req: IncomingMessage, now: number, tried: readonly Target[] | null): Target | undefined {
    const t = this.balancer.pick(req, now, tried);
    if (t !== undefined) return t;
    // nginx answers 502 "no live upstreams" here; trying a passively failed target instead
    // costs one attempt and saves the request when it is back.
    for (const e of this.entries) {
      if (e.weight > 0 && e.target.health !== 'unhealthy' && (tried === null || !tried.includes(e.target))) {
        return e.target;
      }
    }
    return undefined;
  }

  find(id: string): RouteEntry | undefined {
    return this.entries.find((e) => e.target.spec.id === id);
  }

  with(entries: readonly RouteEntry[]): RouteTable {
    return new RouteTable(this.generation + 1, entries, this.balance);
  }
}
