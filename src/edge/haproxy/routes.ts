// Routes as HAProxy's runtime API takes them: IP addresses (a host name is looked up) and
// server weights in 0..256 that keep the routes' ratios or give the canary its share.
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { messageOf } from '../../errors.js';
import { EdgeError, targetId, type RouteSpec, type SplitSpec } from '../edge.js';
import { splitWeights } from '../split-weights.js';

/** HAProxy weights are 0..256; an equal weight of 10 leaves room for ratios. */
const MAX_WEIGHT = 256;
const BASE_WEIGHT = 10;

/** A route as this edge places it. */
export interface Wanted {
  readonly id: string;
  /** `addr:port` as HAProxy will have it. */
  readonly key: string;
  readonly addr: string;
  readonly port: number;
  readonly weight: number;
  readonly backup: boolean;
  readonly version: string;
}

/** The routes as slots should hold them: resolved addresses and HAProxy weights. */
export async function wantedOf(routes: readonly RouteSpec[], split: SplitSpec | null): Promise<Wanted[]> {
  const weights = haproxyWeights(routes, split);
  const wanted: Wanted[] = [];
  for (const [i, r] of routes.entries()) {
    const weight = weights[i];
    // The empty side of a 0% / 100% split is out, as if not listed.
    if (weight === null || weight === undefined) continue;
    const addr = await resolve(r.host);
    const key = targetId({ host: addr, port: r.port });
    if (wanted.some((w) => w.key === key)) throw new EdgeError(`target ${targetId(r)} is listed twice`);
    wanted.push({
      id: targetId(r),
      key,
      addr,
      port: r.port,
      weight,
      backup: r.backup ?? false,
      version: r.version ?? '',
    });
  }
  return wanted;
}

/**
 * HAProxy weights (0..256) per route, null for the empty side of a split. Without a split the
 * routes' own weights keep their ratios; with one, primaries split by canaryPercent and backups
 * keep the base weight.
 */
export function haproxyWeights(routes: readonly RouteSpec[], split: SplitSpec | null): (number | null)[] {
  const max = Math.max(1, ...routes.map((r) => r.weight));
  const factor = Math.min(BASE_WEIGHT, MAX_WEIGHT / max);
  const scaled = (r: RouteSpec): number => (r.weight === 0 ? 0 : Math.max(1, Math.round(r.weight * factor)));
  if (!split) return routes.map(scaled);
  const primaries = routes.filter((r) => !r.backup);
  const canaries = primaries.filter((r) => r.canary).length;
  const w = splitWeights(primaries.length - canaries, canaries, split.canaryPercent, MAX_WEIGHT);
  return routes.map((r) => (r.backup ? BASE_WEIGHT : r.canary ? w.canary : w.stable));
}

/** HAProxy's runtime API takes IP addresses: a host name is looked up (IPv4 first). */
async function resolve(host: string): Promise<string> {
  if (isIP(host)) return host;
  try {
    const all = await lookup(host, { all: true });
    return (all.find((a) => a.family === 4) ?? all[0])!.address;
  } catch (err) {
    throw new EdgeError(
      `cannot resolve ${host} for HAProxy (its runtime API takes IP addresses): ${messageOf(err)}`,
      {
        cause: err,
      },
    );
  }
}
