// The built-in proxy's families of /metrics in the Prometheus text format: per-target counters
// (kept as plain numbers on the hot path, read only here), in-flight requests, health and
// weight. Only targets in rotation or still draining are shown: once a target is drained (a
// retired instance) its series go, so a deploy adds no series for good and an alert on
// baton_target_up never fires for an instance that is gone. Process metrics are not here: the
// admin route adds them once (src/admin/metrics-route.ts), whichever process the proxy runs in.
import { FamilyWriter, labelsText, METRICS_CONTENT_TYPE } from '../../metrics/text.js';
import { LATENCY_BUCKETS, STATUS_CLASSES } from '../edge.js';
import type { BuiltinProxy } from './proxy.js';

/** The proxy's metric families, by name (the tests and examples/monitoring use them). */
export const PROXY_FAMILIES = [
  'baton_requests_total',
  'baton_request_duration_seconds',
  'baton_client_aborts_total',
  'baton_retries_total',
  'baton_inflight_requests',
  'baton_target_up',
  'baton_target_weight',
] as const;

/** One target's figures for /metrics; a data plane's workers each send theirs (summed). */
export interface TargetRow {
  readonly id: string;
  readonly version: string;
  readonly byClass: readonly number[];
  readonly buckets: readonly number[];
  readonly latencySumSeconds: number;
  readonly clientAborts: number;
  readonly retries: number;
  readonly inflight: number;
  /** In rotation and healthy. */
  readonly up: boolean;
  /** 0 when out of rotation. */
  readonly weight: number;
}

/** The rows of the targets in rotation or still draining (see the top of this file). */
export function targetRows(proxy: BuiltinProxy, now = Date.now()): TargetRow[] {
  const views = new Map(proxy.view(now).map((v) => [v.id, v]));
  return proxy
    .targets()
    .filter((t) => t.state.kind !== 'drained')
    .map((t) => {
      const view = views.get(t.spec.id);
      const active = view?.state === 'active';
      return {
        id: t.spec.id,
        version: t.spec.version,
        byClass: [...t.stats.byClass],
        buckets: [...t.stats.buckets],
        latencySumSeconds: t.stats.latencySumSeconds,
        clientAborts: t.stats.clientAborts,
        retries: t.stats.retries,
        inflight: t.inflight,
        up: active && t.isUp(now),
        weight: active ? (view?.weight ?? 0) : 0,
      };
    });
}

/**
 * `first`'s rows with the counters and in-flight counts of `others` (other processes serving the
 * same table) added; whether a target is up, and its weight, as `first` says.
 */
export function sumRows(first: readonly TargetRow[], others: readonly (readonly TargetRow[])[]): TargetRow[] {
  const add = (a: readonly number[], b: readonly number[]): number[] => a.map((v, i) => v + (b[i] ?? 0));
  return first.map((row) => {
    let r = row;
    for (const rows of others) {
      const o = rows.find((x) => x.id === row.id);
      if (!o) continue;
      r = {
        ...r,
        byClass: add(r.byClass, o.byClass),
        buckets: add(r.buckets, o.buckets),
        latencySumSeconds: r.latencySumSeconds + o.latencySumSeconds,
        clientAborts: r.clientAborts + o.clientAborts,
        retries: r.retries + o.retries,
        inflight: r.inflight + o.inflight,
      };
    }
    return r;
  });
}

export class ProxyMetrics {
  readonly contentType = METRICS_CONTENT_TYPE;

  constructor(
    private readonly proxy: BuiltinProxy,
    private readonly service: string,
    /** The rows of the other processes serving the same table (a data plane's workers). */
    private readonly others: () => Promise<readonly (readonly TargetRow[])[]> = () => Promise.resolve([]),
  ) {}

  async render(): Promise<string> {
    const rows = sumRows(targetRows(this.proxy), await this.others());
    const targets = rows.map((t) => ({
      t,
      labels: labelsText({ service: this.service, target: t.id, version: t.version }),
    }));
    const w = new FamilyWriter();

    w.family('baton_requests_total', 'counter', 'Requests finished, by target, version and status class.');
    for (const { t, labels } of targets) {
      STATUS_CLASSES.forEach((cls, i) =>
        w.sample('baton_requests_total', `${labels},class="${cls}"`, t.byClass[i]!),
      );
    }
    w.family('baton_request_duration_seconds', 'histogram', 'Time from request to the end of the response.');
    for (const { t, labels } of targets) {
      let cumulative = 0;
      LATENCY_BUCKETS.forEach((le, i) => {
        cumulative += t.buckets[i]!;
        w.sample('baton_request_duration_seconds_bucket', `${labels},le="${le}"`, cumulative);
      });
      cumulative += t.buckets[LATENCY_BUCKETS.length]!;
      w.sample('baton_request_duration_seconds_bucket', `${labels},le="+Inf"`, cumulative);
      w.sample('baton_request_duration_seconds_sum', labels, t.latencySumSeconds);
      w.sample('baton_request_duration_seconds_count', labels, cumulative);
    }
    w.family(
      'baton_client_aborts_total',
      'counter',
      'Requests the client abandoned (closed, or stalled past clientBodyTimeout / clientSendTimeout) before the answer was complete; not in baton_requests_total.',
    );
    for (const { t, labels } of targets) w.sample('baton_client_aborts_total', labels, t.clientAborts);
    w.family(
      'baton_retries_total',
      'counter',
      'Attempts that failed on a target and were retried on another.',
    );
    for (const { t, labels } of targets) w.sample('baton_retries_total', labels, t.retries);
    w.family('baton_inflight_requests', 'gauge', 'Requests in flight to the target.');
    for (const { t, labels } of targets) w.sample('baton_inflight_requests', labels, t.inflight);
    w.family(
      'baton_target_up',
      'gauge',
      '1 when the target is in rotation and healthy (active and passive checks); 0 while it drains or is down.',
    );
    for (const { t, labels } of targets) w.sample('baton_target_up', labels, t.up ? 1 : 0);
    w.family('baton_target_weight', 'gauge', 'Configured weight of the target (0 when out of rotation).');
    for (const { t, labels } of targets) w.sample('baton_target_weight', labels, t.weight);
    return w.text();
  }
}
