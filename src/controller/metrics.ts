// The controller's families of /metrics, kept by an extension of the deploys (controller.use):
// deploys by strategy and result and their durations, counted from the whole history at the
// first scrape (so a restart of the controller does not lose the deploys before it), the live
// version, the canary's share, and the canary analysis' verdicts (from this process's start:
// verdicts are not in history). Every strategy x result and every verdict is there from the
// start at 0, so that increase() sees the first failure too.
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { VerdictView } from '../api/status.js';
import { STRATEGY_TYPES } from '../config/schema.js';
import type { DeployExtension } from './events.js';
import type { DeployResult, HistoryEntry } from './state.js';
import type { ServingView } from './views.js';

/** What the metrics read from the controller (src/controller/controller.ts). */
export interface DeployMetricsHost {
  /** The last `limit` deploys (the counters' starting point). */
  history(limit: number): readonly HistoryEntry[];
  /** Read at each scrape. */
  serving(): ServingView;
}

/** The families this file gives, by name (the tests and examples/monitoring use them). */
export const DEPLOY_FAMILIES = [
  'baton_deploys_total',
  'baton_deploy_duration_seconds',
  'baton_live_info',
  'baton_canary_weight',
  'baton_analysis_verdicts_total',
] as const;

const RESULTS: readonly DeployResult[] = ['succeeded', 'failed', 'rolled-back'];
const VERDICTS: readonly VerdictView['result'][] = ['pass', 'fail', 'inconclusive'];
/** Seconds: a deploy takes from a few seconds (a small app) to many minutes (a long canary). */
const DURATION_BUCKETS = [1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600];

export class DeployMetrics implements DeployExtension {
  private readonly registry = new Registry();
  private readonly deploys: Counter<'service' | 'strategy' | 'result'>;
  private readonly durations: Histogram<'service' | 'strategy' | 'result'>;
  private readonly verdicts: Counter<'service' | 'verdict'>;
  private seeded = false;

  constructor(
    private readonly service: string,
    private readonly host: DeployMetricsHost,
  ) {
    const registers = [this.registry];
    this.deploys = new Counter({
      name: 'baton_deploys_total',
      help: 'Deploys (rollbacks included) that ended, by strategy and result (succeeded, failed, rolled-back); counted from the history.',
      labelNames: ['service', 'strategy', 'result'],
      registers,
    });
    for (const strategy of STRATEGY_TYPES)
      for (const result of RESULTS) this.deploys.inc({ service, strategy, result }, 0);
    this.durations = new Histogram({
      name: 'baton_deploy_duration_seconds',
      help: 'How long deploys took, from start to result, by strategy and result; counted from the history.',
      labelNames: ['service', 'strategy', 'result'],
      buckets: DURATION_BUCKETS,
      registers,
    });
    new Gauge({
      name: 'baton_live_info',
      help: 'The live version (during a canary, the stable one until promotion): 1, with the version as a label.',
      labelNames: ['service', 'version'],
      registers,
      collect(): void {
        this.reset();
        const version = host.serving().version;
        if (version !== null) this.set({ service, version }, 1);
      },
    });
    new Gauge({
      name: 'baton_canary_weight',
      help: "The share of traffic (percent) the running canary's new version gets; 0 when no canary runs.",
      labelNames: ['service'],
      registers,
      collect(): void {
        this.set({ service }, host.serving().canaryPercent);
      },
    });
    this.verdicts = new Counter({
      name: 'baton_analysis_verdicts_total',
      help: "Verdicts of canary analysis (pass, fail, inconclusive) since this Baton's start.",
      labelNames: ['service', 'verdict'],
      registers,
    });
    for (const verdict of VERDICTS) this.verdicts.inc({ service, verdict }, 0);
  }

  async render(): Promise<string> {
    this.seed();
    return this.registry.metrics();
  }

  async afterEnd(_d: unknown, entry: HistoryEntry): Promise<void> {
    // The entry is in history already: a first count from history includes it.
    if (this.seed()) return;
    this.count(entry);
  }

  onVerdict(v: VerdictView): void {
    this.verdicts.inc({ service: this.service, verdict: v.result });
  }

  /** Counts the history once (false when done before). */
  private seed(): boolean {
    if (this.seeded) return false;
    this.seeded = true;
    for (const entry of this.host.history(Number.MAX_SAFE_INTEGER)) this.count(entry);
    return true;
  }

  private count(entry: HistoryEntry): void {
    const labels = { service: this.service, strategy: entry.strategy, result: entry.result };
    this.deploys.inc(labels);
    this.durations.observe(labels, entry.durationMs / 1000);
  }
}
