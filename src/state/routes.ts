// The proxy's routing (targets, weights, drained ones) persisted in stateDir, so a restarted
// proxy comes back routing as it was. A config whose `targets` changed since the state was
// written wins over the state: the operator edited the file on purpose.
import { createHash } from 'node:crypto';
import path from 'node:path';
import { z } from 'zod';
import type { RouteSpec } from '../edge/builtin/proxy.js';
import { BatonError } from '../errors.js';
import { readJson, writeFileAtomic } from './atomic.js';

const routeSchema = z.object({
  host: z.string(),
  port: z.number().int(),
  weight: z.number(),
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
  const file = routeStatePath(stateDir);
  let raw: unknown;
  try {
    raw = readJson(file);
  } catch (err) {
    throw new BatonError(
      'BATON_E_STATE',
      `state file ${file} is not valid JSON; move it aside to start fresh`,
      {
        cause: err,
      },
    );
  }
  if (raw === undefined) return undefined;
  const parsed = stateSchema.safeParse(raw);
  if (!parsed.success) {
    throw new BatonError(
      'BATON_E_STATE',
      `state file ${file} has an unknown shape; move it aside to start fresh`,
    );
  }
  return parsed.data;
}

export function saveRouteState(stateDir: string, state: Omit<RouteState, 'format' | 'savedAt'>): void {
  const full: RouteState = { format: 1, savedAt: new Date().toISOString(), ...state };
  writeFileAtomic(routeStatePath(stateDir), `${JSON.stringify(full, null, 2)}\n`);
}
