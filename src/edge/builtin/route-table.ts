// The immutable snapshot the proxy routes by. Every change (add, remove, weight, drain, switch)
// builds a new RouteTable and swaps one reference, so a request sees the old table or the new
// one, never half of a change.
import type { IncomingMessage } from 'node:http';
import type { BalanceConfig } from '../../config/schema.js';
import type { Balancer, RouteEntry } from './balancers/balancer.js';
import { ConsistentHash, parseHashKey } from './balancers/hash.js';
import { LeastConn } from './balancers/least-conn.js';
import { RoundRobin } from './balancers/round-robin.js';
import type { Split } from './split.js';
import type { Target } from './target.js';

export type { RouteEntry };

function balancerFor(entries: readonly RouteEntry[], balance: BalanceConfig): Balancer {
  return balance.algorithm === 'least-conn'
    ? new LeastConn(entries)
    : balance.algorithm === 'hash'
      ? new ConsistentHash(entries, parseHashKey(balance.hashKey ?? 'ip'))
      : new RoundRobin(entries);
}

export class RouteTable {
  readonly balancer: Balancer;
  /** With a split: one balancer per side, [stable, canary]. */
  private readonly lanes: readonly [Balancer, Balancer] | null;

  constructor(
    readonly generation: number,
    readonly entries: readonly RouteEntry[],
    readonly balance: BalanceConfig,
    readonly split: Split | null = null,
  ) {
    Object.freeze(entries);
    this.balancer = balancerFor(entries, balance);
    this.lanes = split
      ? [
          balancerFor(
            entries.filter((e) => !e.canary),
            balance,
          ),
          balancerFor(
            entries.filter((e) => e.canary),
            balance,
          ),
        ]
      : null;
  }

  /**
   * A target for the request, on its side of the split when there is one (the other side when
   * its own has nothing up); if every one is down, any untried one (it may have recovered).
   */
  pick(
    req: IncomingMessage,
    now: number,
    tried: readonly Target[] | null,
    canary: boolean | null = null,
  ): Target | undefined {
    const lanes = this.lanes;
    const t =
      lanes === null || canary === null
        ? this.balancer.pick(req, now, tried)
        : (lanes[canary ? 1 : 0].pick(req, now, tried) ?? lanes[canary ? 0 : 1].pick(req, now, tried));
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

  with(entries: readonly RouteEntry[], split: Split | null = this.split): RouteTable {
    return new RouteTable(this.generation + 1, entries, this.balance, split);
  }
}
