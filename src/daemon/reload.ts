// What a SIGHUP can apply to a running `baton up`, and what needs a restart (or, for the data
// plane's proxy settings, `baton upgrade`).
import type { BatonConfig } from '../config/schema.js';

/**
 * Keys a SIGHUP cannot apply: the listeners (HTTPS included), the edges and their connections,
 * the proxy built from them, and where state lives are set up once at start. Everything else
 * (app, strategy, hosts, ssh, targets, windows, hooks, notify, adminHosts) is read anew, and so
 * are the certificate files tls: names.
 */
export const RESTART_KEYS = [
  'service',
  'listen',
  'admin',
  'edge',
  'edges',
  'proxy',
  'balance',
  'healthCheck',
  'tls',
  'redirectHttp',
  'hsts',
  'stateDir',
] as const;

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** The keys of RESTART_KEYS that differ (`proxy.clientHeaderTimeout` for a section's key). */
export function restartNeeded(old: BatonConfig, next: BatonConfig): string[] {
  const changed: string[] = [];
  for (const key of RESTART_KEYS) {
    const a: unknown = key === 'stateDir' ? old.stateDirPath : old[key];
    const b: unknown = key === 'stateDir' ? next.stateDirPath : next[key];
    if (JSON.stringify(a) === JSON.stringify(b)) continue;
    // Sections are named by their changed keys; an address (listen, admin) as a whole.
    if (key === 'listen' || key === 'admin' || !isObject(a) || !isObject(b)) {
      changed.push(key);
      continue;
    }
    for (const sub of new Set([...Object.keys(a), ...Object.keys(b)]))
      if (JSON.stringify(a[sub]) !== JSON.stringify(b[sub])) changed.push(`${key}.${sub}`);
  }
  return changed;
}

/** `next`, with the running values of the keys a restart would be needed for. */
export function keepingRunning(old: BatonConfig, next: BatonConfig): BatonConfig {
  const kept: Record<string, unknown> = { stateDirPath: old.stateDirPath };
  for (const key of RESTART_KEYS) kept[key] = old[key];
  return Object.freeze({ ...next, ...kept });
}
