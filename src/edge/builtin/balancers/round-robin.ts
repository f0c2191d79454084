// Smooth weighted round-robin, nginx's algorithm (ngx_http_upstream_get_peer): each pick adds
// every peer's weight to its running score, takes the highest, and subtracts the total from it.
// Weights 5,1,1 give a,a,b,a,c,a,a, not a,a,a,a,a,b,c.
import type { IncomingMessage } from 'node:http';
import type { Target } from '../target.js';
import { eligible, groups, type Balancer, type RouteEntry } from './balancer.js';

export class RoundRobin implements Balancer {
  private readonly groups: RouteEntry[][];
  private readonly current: Float64Array[];

  constructor(entries: readonly RouteEntry[]) {
    this.groups = groups(entries);
    this.current = this.groups.map((g) => new Float64Array(g.length));
  }

  pick(_req: IncomingMessage, now: number, tried: readonly Target[] | null): Target | undefined {
    for (let g = 0; g < this.groups.length; g++) {
      const picked = this.pickIn(this.groups[g]!, this.current[g]!, now, tried);
      if (picked) return picked;
    }
    return undefined;
  }

  private pickIn(
    group: RouteEntry[],
    current: Float64Array,
    now: number,
    tried: readonly Target[] | null,
  ): Target | undefined {
    let best = -1;
    let total = 0;
    for (let i = 0; i < group.length; i++) {
      const e = group[i]!;
      if (!eligible(e, now, tried)) continue;
      const w = e.target.effectiveWeight(e.weight, now);
      current[i]! += w;
      total += w;
      if (best < 0 || current[i]! > current[best]!) best = i;
    }
    if (best < 0) return undefined;
    current[best]! -= total;
    return group[best]!.target;
  }
}
