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

export class ProxyMetrics {
  readonly contentType = METRICS_CONTENT_TYPE;

  constructor(
    private readonly proxy: BuiltinProxy,
    private readonly service: string,
  ) {}

  async render(): Promise<string> {
    const now = Date.now();
    const views = new Map(this.proxy.view(now).map((v) => [v.id, v]));
    const targets = this.proxy
      .targets()
      .filter((t) => t.state.kind !== 'drained')
      .map((t) => ({
        t,
        view: views.get(t.spec.id),
        labels: labelsText({ service: this.service, target: t.spec.id, version: t.spec.version }),
      }));
    const w = new FamilyWriter();

    w.family('baton_requests_total', 'counter', 'Requests finished, by target, version and status class.');
    for (const { t, labels } of targets) {
      STATUS_CLASSES.forEach((cls, i) =>
        w.sample('baton_requests_total', `${labels},class="${cls}"`, t.stats.byClass[i]!),
      );
    }
    w.family('baton_request_duration_seconds', 'histogram', 'Time from request to the end of the response.');
    for (const { t, labels } of targets) {
      let cumulative = 0;
      LATENCY_BUCKETS.forEach((le, i) => {
        cumulative += t.stats.buckets[i]!;
        w.sample('baton_request_duration_seconds_bucket', `${labels},le="${le}"`, cumulative);
      });
      cumulative += t.stats.buckets[LATENCY_BUCKETS.length]!;
      w.sample('baton_request_duration_seconds_bucket', `${labels},le="+Inf"`, cumulative);
      w.sample('baton_request_duration_seconds_sum', labels, t.stats.latencySumSeconds);
      w.sample('baton_request_duration_seconds_count', labels, cumulative);
    }
    w.family(
      'baton_client_aborts_total',
      'counter',
      'Requests the client abandoned (closed, or stalled past clientBodyTimeout / clientSendTimeout) before the answer was complete; not in baton_requests_total.',
    );
    for (const { t, labels } of targets) w.sample('baton_client_aborts_total', labels, t.stats.clientAborts);
    w.family(
      'baton_retries_total',
      'counter',
      'Attempts that failed on a target and were retried on another.',
    );
    for (const { t, labels } of targets) w.sample('baton_retries_total', labels, t.stats.retries);
    w.family('baton_inflight_requests', 'gauge', 'Requests in flight to the target.');
    for (const { t, labels } of targets) w.sample('baton_inflight_requests', labels, t.inflight);
    w.family(
      'baton_target_up',
      'gauge',
      '1 when the target is in rotation and healthy (active and passive checks); 0 while it drains or is down.',
    );
    for (const { t, view, labels } of targets) {
      w.sample('baton_target_up', labels, view?.state === 'active' && t.isUp(now) ? 1 : 0);
    }
    w.family('baton_target_weight', 'gauge', 'Configured weight of the target (0 when out of rotation).');
    for (const { view, labels } of targets) {
      w.sample('baton_target_weight', labels, view?.state === 'active' ? view.weight : 0);
    }
    return w.text();
  }
}
