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
import type { RouteSpec } from '../edge/edge.js';
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

/** A change of the targets API, as the other processes serving the same table make it too. */
export type TargetOp =
  | { readonly kind: 'add'; readonly spec: RouteSpec }
  | { readonly kind: 'weight'; readonly targetId: string; readonly weight: number }
  | { readonly kind: 'undrain'; readonly targetId: string }
  | { readonly kind: 'drain' | 'remove'; readonly targetId: string; readonly timeoutMs: number };

export function registerProxyRoutes(
  admin: AdminServer,
  proxy: BuiltinProxy,
  /** null: /metrics is registered by the caller, with this proxy as one of its sources. */
  metrics: ProxyMetrics | null,
  drainTimeoutMs: number,
  /** The same change on the other processes serving this table (a data plane's workers). */
  others: (op: TargetOp) => Promise<unknown> = () => Promise.resolve(),
): void {
  admin.route<TargetsAnswer>('GET', PATHS.targets, () => ({
    json: { generation: proxy.generation, targets: proxy.view() },
  }));

  admin.route<TargetView | undefined>('POST', PATHS.targets, async (r) => {
    const t = await r.body(targetSchema);
    const spec: RouteSpec = {
      host: t.address.host,
      port: t.address.port,
      weight: t.weight,
      backup: t.backup,
      ...(t.version !== undefined ? { version: t.version } : {}),
      maxFails: t.maxFails,
      failTimeoutMs: t.failTimeout,
      ...(t.slowStart !== undefined ? { slowStartMs: t.slowStart } : {}),
    };
    const target = proxy.addTarget(spec);
    await others({ kind: 'add', spec });
    return { status: 201, json: proxy.view().find((v) => v.id === target.spec.id) };
  });

  admin.route<TargetView | undefined>('PATCH', PATHS.target, async (r) => {
    const { weight } = await r.body(weightBody);
    proxy.setWeight(r.params.id!, weight);
    await others({ kind: 'weight', targetId: r.params.id!, weight });
    return { json: proxy.view().find((v) => v.id === r.params.id) };
  });

  admin.route<DrainResult>('POST', PATHS.targetDrain, async (r) => {
    const timeoutMs = timeoutParam(r.url, drainTimeoutMs);
    const [result] = await Promise.all([
      proxy.drain(r.params.id!, timeoutMs),
      others({ kind: 'drain', targetId: r.params.id!, timeoutMs }),
    ]);
    if (!result.drained) {
      throw new BatonError(
        'BATON_E_DRAIN_TIMEOUT',
        `target ${result.id} is out of rotation but still had ${result.inflightLeft} request(s) in flight after ${result.waitedMs}ms`,
        { details: result },
      );
    }
    return { json: result };
  });

  admin.route<TargetView | undefined>('POST', PATHS.targetUndrain, async (r) => {
    proxy.undrain(r.params.id!);
    await others({ kind: 'undrain', targetId: r.params.id! });
    return { json: proxy.view().find((v) => v.id === r.params.id) };
  });

  admin.route<DrainResult>('DELETE', PATHS.target, async (r) => {
    const timeoutMs = timeoutParam(r.url, drainTimeoutMs);
    const [result] = await Promise.all([
      proxy.remove(r.params.id!, timeoutMs),
      others({ kind: 'remove', targetId: r.params.id!, timeoutMs }),
    ]);
    return { json: result };
  });

  if (metrics) registerMetricsRoute(admin, [() => metrics.render()]);
}
