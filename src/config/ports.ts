// How many ports of app.ports a deploy needs at its peak (old and new running side by side),
// on this machine or on each host: a range smaller than that can never deploy, so the schema
// refuses it (the same check for `baton validate` and `baton up`).
import type { StrategyConfig } from './schema/strategy.js';

/** maxSurge as the rolling strategy resolves it (src/strategies/strategy.ts): rounded up. */
function surgeOf(value: number | string, total: number): number {
  if (typeof value === 'number') return value;
  return Math.ceil((Number(value.slice(0, -1)) / 100) * total);
}

/** Instances running at once at a deploy's peak, for `n` instances (on one host). */
export function peakInstances(strategy: StrategyConfig, n: number): { need: number; why: string } {
  switch (strategy.type) {
    case 'recreate':
      return { need: n, why: `recreate runs ${n} instance(s)` };
    case 'rolling': {
      let surge = surgeOf(strategy.maxSurge, n);
      // As the strategy: maxSurge and maxUnavailable both 0 would never move, so it surges 1.
      if (surge === 0 && surgeOf(strategy.maxUnavailable, n) === 0) surge = 1;
      return { need: n + surge, why: `rolling runs up to instances + maxSurge = ${n} + ${surge}` };
    }
    default:
      // blue-green starts the whole new set beside the old; canary and ab promote the same way.
      return { need: 2 * n, why: `${strategy.type} runs two sets of ${n} side by side` };
  }
}
