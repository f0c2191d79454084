// The proxy's routing (targets, weights, drained ones) persisted in stateDir, so a restarted
// proxy comes back routing as it was. A config whose `targets` changed since the state was
// written wins over the state: the operator edited the file on purpose.
import { createHash } from 'node:crypto';
import path from 'node:path';
import { z } from 'zod';
import type { RouteSpec } from '../edge/edge.js';
import { writeFileAtomic } from './atomic.js';
import { readStateFile } from './read.js';

const routeSchema = z.object({
  host: z.string(),
  port: z.number().int().min(1).max(65535),
  weight: z.number().min(0),
  backup: z.boolean().optional(),
  version: z.string().optional(),
  maxFails: z.number().optional(),
  failTimeoutMs: z.number().optional(),
  slowStartMs: z.number().optional(),
});

const stateSchema = z.object({
  format: z.literal(1),
  seed: z.string(),
  savedAt: z.string(),
  routes: z.array(routeSchema),
  drained: z.array(routeSchema),
});

export type RouteState = z.infer<typeof stateSchema>;

export function routeStatePath(stateDir: string): string {
  return path.join(stateDir, 'routes.json');
}

/** A fingerprint of the configured targets, to tell whether the config changed since. */
export function seedOf(routes: readonly RouteSpec[]): string {
  return createHash('sha256').update(JSON.stringify(routes)).digest('hex').slice(0, 16);
}

export function loadRouteState(stateDir: string): RouteState | undefined {
  return readStateFile(
    routeStatePath(stateDir),
    stateSchema,
    "fix it, or move it aside: the proxy then routes from the config's targets",
  );
}

export function saveRouteState(stateDir: string, state: Omit<RouteState, 'format' | 'savedAt'>): void {
  const full: RouteState = { format: 1, savedAt: new Date().toISOString(), ...state };
  writeFileAtomic(routeStatePath(stateDir), `${JSON.stringify(full, null, 2)}\n`);
}
