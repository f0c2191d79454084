// Small helpers the edge tests share: a route to a test backend, and requests through an edge
// on new connections (so no keep-alive pins them to an old nginx worker).
import { request } from 'undici';
import type { EdgeOptions, RouteSpec } from '../../src/edge/edge.js';
import { silentLogger } from '../../src/log.js';
import type { Backend } from './index.js';

export const routeTo = (b: Backend, extra: Partial<RouteSpec> = {}): RouteSpec => ({
  host: '127.0.0.1',
  port: b.port,
  weight: 1,
  version: b.name,
  ...extra,
});

/** What an edge is built with in tests: round-robin, no health checks of its own. */
export const edgeOptions = (service = 'web'): EdgeOptions => ({
  service,
  balance: { algorithm: 'round-robin' },
  health: null,
  baseDir: process.cwd(),
  log: silentLogger(),
  stateDir: process.cwd(),
  ssh: { options: [], connectTimeoutMs: 5000 },
});

export const idOf = (b: Backend): string => `127.0.0.1:${b.port}`;

/** One request on a new connection: its status and body. */
export async function fresh(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: string }> {
  const res = await request(url, { headers: { ...headers, connection: 'close' }, reset: true });
  return { status: res.statusCode, body: await res.body.text() };
}

/** `n` sequential requests, each on a new connection: the bodies of 200s (else the status), counted. */
export async function answers(
  url: string,
  n: number,
  headers: Record<string, string> = {},
): Promise<Map<string, number>> {
  const seen = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const { status, body } = await fresh(url, headers);
    const key = status === 200 ? body : `${status}`;
    seen.set(key, (seen.get(key) ?? 0) + 1);
  }
  return seen;
}
