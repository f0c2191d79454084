// /metrics in the Prometheus text format: the proxy's per-target counters (kept as plain
// numbers on the hot path, read only here) and prom-client's process metrics.
import { Registry, collectDefaultMetrics } from 'prom-client';
import { LATENCY_BUCKETS, STATUS_CLASSES } from '../edge.js';
import type { BuiltinProxy } from './proxy.js';

export class ProxyMetrics {
  private readonly registry = new Registry();

  constructor(
    private readonly proxy: BuiltinProxy,
    private readonly service: string,
  ) {
    collectDefaultMetrics({ register: this.registry, prefix: 'baton_process_' });
  }

  readonly contentType = 'text/plain; version=0.0.4; charset=utf-8';

  async render(): Promise<string> {
    const now = Date.now();
    const esc = (v: string): string => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
    const lines: string[] = [];
    const head = (name: string, type: string, help: string): void => {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    };
    const views = new Map(this.proxy.view(now).map((v) => [v.id, v]));
    const targets = this.proxy.targets();
    const labels = (id: string, version: string): string =>
      `service="${esc(this.service)}",target="${esc(id)}",version="${esc(version)}"`;

    head('baton_requests_total', 'counter', 'Requests finished, by target, version and status class.');
    for (const t of targets) {
      STATUS_CLASSES.forEach((cls, i) => {
        lines.push(
          `baton_requests_total{${labels(t.spec.id, t.spec.version)},class="${cls}"} ${t.stats.byClass[i]}`,
        );
      });
    }
    head('baton_request_duration_seconds', 'histogram', 'Time from request to the end of the response.');
    for (const t of targets) {
      const l = labels(t.spec.id, t.spec.version);
      let cumulative = 0;
      LATENCY_BUCKETS.forEach((le, i) => {
        cumulative += t.stats.buckets[i]!;
        lines.push(`baton_request_duration_seconds_bucket{${l},le="${le}"} ${cumulative}`);
      });
      cumulative += t.stats.buckets[LATENCY_BUCKETS.length]!;
      lines.push(`baton_request_duration_seconds_bucket{${l},le="+Inf"} ${cumulative}`);
      lines.push(`baton_request_duration_seconds_sum{${l}} ${t.stats.latencySumSeconds}`);
      lines.push(`baton_request_duration_seconds_count{${l}} ${cumulative}`);
    }
    head(
      'baton_client_aborts_total',
      'counter',
      'Requests the client abandoned (closed, or stalled past clientBodyTimeout / clientSendTimeout) before the answer was complete; not in baton_requests_total.',
    );
    for (const t of targets)
      lines.push(`baton_client_aborts_total{${labels(t.spec.id, t.spec.version)}} ${t.stats.clientAborts}`);
    head('baton_retries_total', 'counter', 'Attempts that failed on a target and were retried on another.');
    for (const t of targets)
      lines.push(`baton_retries_total{${labels(t.spec.id, t.spec.version)}} ${t.stats.retries}`);
    head('baton_inflight_requests', 'gauge', 'Requests in flight to the target.');
    for (const t of targets)
      lines.push(`baton_inflight_requests{${labels(t.spec.id, t.spec.version)}} ${t.inflight}`);
    head(
      'baton_target_up',
      'gauge',
      '1 when the target is in rotation and healthy (active and passive checks).',
    );
    for (const t of targets) {
      const up = views.get(t.spec.id)?.state === 'active' && t.isUp(now) ? 1 : 0;
      lines.push(`baton_target_up{${labels(t.spec.id, t.spec.version)}} ${up}`);
    }
    head('baton_target_weight', 'gauge', 'Configured weight of the target (0 when out of rotation).');
    for (const t of targets) {
      const v = views.get(t.spec.id);
      lines.push(
        `baton_target_weight{${labels(t.spec.id, t.spec.version)}} ${v?.state === 'active' ? v.weight : 0}`,
      );
    }
    return `${lines.join('\n')}\n${await this.registry.metrics()}`;
  }
}
