// How a route table picks a target for a request. Each implementation is built once per table
// snapshot from its entries; its own mutable state (round-robin counters) lives and dies with it.
import type { IncomingMessage } from 'node:http';
import type { Target } from '../target.js';

export interface RouteEntry {
  readonly target: Target;
  readonly weight: number;
  /** Used only when no primary entry is up (nginx's `backup`). */
  readonly backup: boolean;
  /** In the canary set of a split (see split.ts); false for everything else. */
  readonly canary: boolean;
}

export interface Balancer {
  /**
   * A target for `req`, skipping those in `tried` (earlier attempts of the same request);
   * undefined when none is left.
   */
  pick(req: IncomingMessage, now: number, tried: readonly Target[] | null): Target | undefined;
}

/** Whether an entry may take this request: weight, health, not already tried. */
export function eligible(e: RouteEntry, now: number, tried: readonly Target[] | null): boolean {
  return e.weight > 0 && e.target.isUp(now) && (tried === null || !tried.includes(e.target));
}

/**
 * Entries split into primaries and backups; the balancers run over one group at a time so a
 * backup is never chosen while a primary is up.
 */
export function groups(entries: readonly RouteEntry[]): RouteEntry[][] {
  const primary = entries.filter((e) => !e.backup);
  const backup = entries.filter((e) => e.backup);
  return backup.length ? [primary, backup] : [primary];
}
