// The static `targets:` of a plain load balancer as routes, and where clients connect.
import type { ListenAddress } from '../config/address.js';
import type { BatonConfig, TargetConfig } from '../config/schema.js';
import type { RouteSpec } from '../edge/edge.js';

export function routesFromConfig(targets: readonly TargetConfig[] | undefined): RouteSpec[] {
  return (targets ?? []).map((t) => ({
    host: t.address.host,
    port: t.address.port,
    weight: t.weight,
    backup: t.backup,
    version: t.version ?? '',
    maxFails: t.maxFails,
    failTimeoutMs: t.failTimeout,
    ...(t.slowStart !== undefined ? { slowStartMs: t.slowStart } : {}),
  }));
}

/**
 * Where clients send requests (GET /v1/health): the first edge's `url:`, else the built-in proxy's
 * bound address, a wildcard one reached on loopback; null when nginx / HAProxy have no `url:`.
 */
export function clientUrl(config: BatonConfig, a: ListenAddress | undefined): string | null {
  const configured = (config.edges ?? [config.edge]).find((e) => e.url !== undefined)?.url;
  if (configured !== undefined) return configured;
  if (a?.kind !== 'tcp') return null;
  const host = a.host === '0.0.0.0' ? '127.0.0.1' : a.host === '::' ? '::1' : a.host;
  return `${config.tls ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${a.port}/`;
}
