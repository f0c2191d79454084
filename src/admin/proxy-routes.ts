// Admin endpoints of the built-in proxy: targets (list, add, weight, drain, undrain, remove)
// and, when given its ProxyMetrics, a /metrics of the proxy's families alone (the data plane's,
// which the controller's /metrics takes in: src/admin/metrics-route.ts).
import { z } from 'zod';
import { PATHS } from '../api/paths.js';
import type { DrainResult, TargetsAnswer, TargetView, WeightBody } from '../api/targets.js';
import { targetSchema } from '../config/schema.js';
import { parseDuration } from '../config/units.js';
import type { ProxyMetrics } from '../edge/builtin/metrics.js';
import type { BuiltinProxy } from '../edge/builtin/proxy.js';
import { BatonError } from '../errors.js';
import { registerMetricsRoute } from './metrics-route.js';
import type { AdminServer } from './server.js';

const weightBody = z.strictObject({
  weight: z.number().int().min(0).max(1_000_000),
}) satisfies z.ZodType<WeightBody>;

function timeoutParam(url: URL, fallback: number): number {
  const t = url.searchParams.get('timeout');
  if (t === null) return fallback;
  const ms = parseDuration(t);
  if (ms === undefined)
    throw new BatonError('BATON_E_BAD_REQUEST', `timeout "${t}" is not a duration (e.g. 30s)`);
  return ms;
}

export function registerProxyRoutes(
  admin: AdminServer,
  proxy: BuiltinProxy,
  /** null: /metrics is registered by the caller, with this proxy as one of its sources. */
  metrics: ProxyMetrics | null,
  drainTimeoutMs: number,
): void {
  admin.route<TargetsAnswer>('GET', PATHS.targets, () => ({
    json: { generation: proxy.generation, targets: proxy.view() },
  }));

  admin.route<TargetView | undefined>('POST', PATHS.targets, async (r) => {
    const t = await r.body(targetSchema);
    const target = proxy.addTarget({
      host: t.address.host,
      port: t.address.port,
      weight: t.weight,
      backup: t.backup,
      ...(t.version !== undefined ? { version: t.version } : {}),
      maxFails: t.maxFails,
      failTimeoutMs: t.failTimeout,
      ...(t.slowStart !== undefined ? { slowStartMs: t.slowStart } : {}),
    });
    return { status: 201, json: proxy.view().find((v) => v.id === target.spec.id) };
  });

  admin.route<TargetView | undefined>('PATCH', PATHS.target, async (r) => {
    const { weight } = await r.body(weightBody);
    proxy.setWeight(r.params.id!, weight);
    return { json: proxy.view().find((v) => v.id === r.params.id) };
  });

  admin.route<DrainResult>('POST', PATHS.targetDrain, async (r) => {
    const result = await proxy.drain(r.params.id!, timeoutParam(r.url, drainTimeoutMs));
    if (!result.drained) {
      throw new BatonError(
        'BATON_E_DRAIN_TIMEOUT',
        `target ${result.id} is out of rotation but still had ${result.inflightLeft} request(s) in flight after ${result.waitedMs}ms`,
        { details: result },
      );
    }
    return { json: result };
  });

  admin.route<TargetView | undefined>('POST', PATHS.targetUndrain, (r) => {
    proxy.undrain(r.params.id!);
    return { json: proxy.view().find((v) => v.id === r.params.id) };
  });

  admin.route<DrainResult>('DELETE', PATHS.target, async (r) => {
    const result = await proxy.remove(r.params.id!, timeoutParam(r.url, drainTimeoutMs));
    return { json: result };
  });

  if (metrics) registerMetricsRoute(admin, [() => metrics.render()]);
}
