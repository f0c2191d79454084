// Least connections, weight-aware (nginx's least_conn): the target with the fewest in-flight
// requests per unit of weight; ties go round-robin so equal targets share the load.
import type { IncomingMessage } from 'node:http';
import type { Target } from '../target.js';
import { eligible, groups, type Balancer, type RouteEntry } from './balancer.js';

export class LeastConn implements Balancer {
  private readonly groups: RouteEntry[][];
  private turn = 0;

  constructor(entries: readonly RouteEntry[]) {
    this.groups = groups(entries);
  }

  pick(_req: IncomingMessage, now: number, tried: readonly Target[] | null): Target | undefined {
    const start = this.turn++;
    for (const group of this.groups) {
      let best: Target | undefined;
      let bestScore = Infinity;
      const n = group.length;
      for (let k = 0; k < n; k++) {
        const e = group[(start + k) % n]!;
        if (!eligible(e, now, tried)) continue;
        const score = (e.target.inflight + 1) / e.target.effectiveWeight(e.weight, now);
        if (score < bestScore) {
          bestScore = score;
          best = e.target;
        }
      }
      if (best) return best;
    }
    return undefined;
  }
}
