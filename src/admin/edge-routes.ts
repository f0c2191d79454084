// The edge API: a Baton whose config has `listen:` and neither `app:` nor `targets:` is an edge
// that another Baton drives from elsewhere (`edges: [{ type: builtin, admin: host:port }]`, see
// src/edge/remote.ts). These endpoints are the Edge interface over HTTP: the controller's
// route changes, drains and counters, applied to this machine's built-in proxy, whose health
// checks then run from here, where client traffic flows.
//
//   PUT  /v1/edge/routes  { routes, split }   the whole route table, swapped atomically
//   POST /v1/edge/drain   { ids, timeoutMs }  waits for targets already out of the routes
//   POST /v1/edge/stats   { ids }             summed counters for canary analysis
//   GET  /v1/edge/view                        what it serves
//   GET  /v1/edge/traffic                     counters by version since it started (deploy proofs)
import { z } from 'zod';
import type {
  EdgeDrainAnswer,
  EdgeDrainBody,
  EdgeRoutesAnswer,
  EdgeRoutesBody,
  EdgeStatsAnswer,
  EdgeStatsBody,
  EdgeTrafficAnswer,
  EdgeViewAnswer,
} from '../api/edge.js';
import { PATHS } from '../api/paths.js';
import { matchSchema, stickySchema } from '../config/schema.js';
import { BuiltinEdge } from '../edge/builtin/edge.js';
import type { BuiltinProxy } from '../edge/builtin/proxy.js';
import type { AdminServer } from './server.js';

const route = z.strictObject({
  host: z.string().min(1),
  port: z.number().int().min(1).max(65535),
  weight: z.number().min(0),
  backup: z.boolean().optional(),
  version: z.string().optional(),
  maxFails: z.number().int().min(0).optional(),
  failTimeoutMs: z.number().int().min(0).optional(),
  slowStartMs: z.number().int().min(0).optional(),
  canary: z.boolean().optional(),
});

// The rules and stickiness come from the controller's baton.yaml: the same schemas check them.
const split = z.strictObject({
  canaryPercent: z.number().min(0).max(100),
  rules: z.array(matchSchema),
  sticky: stickySchema,
});

export const edgeRoutesBody = z.strictObject({
  routes: z.array(route),
  split: split.nullable(),
}) satisfies z.ZodType<EdgeRoutesBody>;
const idsBody = z.strictObject({ ids: z.array(z.string().min(1)) }) satisfies z.ZodType<EdgeStatsBody>;
const drainBody = z.strictObject({
  ids: z.array(z.string().min(1)),
  timeoutMs: z.number().int().min(0).max(3_600_000),
}) satisfies z.ZodType<EdgeDrainBody>;

/** What the owner of the proxy does around a route change (the data plane persists it). */
export interface EdgeRoutesHooks {
  /** Throws to refuse the change (nothing applied). */
  readonly before?: () => void;
  /** The table now served. */
  readonly applied?: (table: EdgeRoutesBody) => void;
}

/** What the edge API drives: the proxy (BuiltinEdge), or a data plane's proxy and its workers. */
export type EdgeApiTarget = Pick<BuiltinEdge, 'apply' | 'drain' | 'stats' | 'traffic' | 'view'>;

export function registerEdgeRoutes(
  admin: AdminServer,
  proxy: BuiltinProxy,
  hooks: EdgeRoutesHooks = {},
  edge: EdgeApiTarget = new BuiltinEdge(proxy),
): void {
  admin.route<EdgeRoutesAnswer>('PUT', PATHS.edgeRoutes, async (r) => {
    const body = await r.body(edgeRoutesBody);
    hooks.before?.();
    await edge.apply(body.routes, body.split);
    hooks.applied?.(body);
    return { json: { generation: proxy.generation, routes: body.routes.length } };
  });
  admin.route<EdgeDrainAnswer>('POST', PATHS.edgeDrain, async (r) => {
    const { ids, timeoutMs } = await r.body(drainBody);
    return { json: { results: await edge.drain(ids, timeoutMs) } };
  });
  admin.route<EdgeStatsAnswer>('POST', PATHS.edgeStats, async (r) => {
    const { ids } = await r.body(idsBody);
    return { json: await edge.stats(ids) };
  });
  admin.route<EdgeTrafficAnswer>('GET', PATHS.edgeTraffic, async () => ({ json: await edge.traffic() }));
  admin.route<EdgeViewAnswer>('GET', PATHS.edgeView, async () => ({ json: { targets: await edge.view() } }));
}
