// The dashboard's live feed: one snapshot of the service (status, freeze and windows, traffic
// per version, the canary's steps and thresholds, the deploy's progress, history), built when
// something happens (a deploy event, a verdict, a state-changing request) and on a slow tick
// for the rates, and pushed to every page connected to GET /v1/events. Nothing is built while
// no page listens; builds never overlap (a change during one asks for one more). A page that
// does not read (over MAX_BUFFERED_BYTES waiting) is cut off; a stream whose session ended is
// ended at its next send.
import type { ServerResponse } from 'node:http';
import type { DashboardSnapshot, StepView, VersionTraffic } from '../api/dashboard.js';
import type { HistoryEntry, ProgressEvent } from '../api/deploy.js';
import type { FreezeView } from '../api/freeze.js';
import { PATHS } from '../api/paths.js';
import type { StatusInstance, StatusView } from '../api/status.js';
import type { BatonConfig } from '../config/schema.js';
import { formatDuration } from '../config/units.js';
import type { DeployExtension } from '../controller/events.js';
import { targetId, type Edge } from '../edge/edge.js';
import { environmentLinks } from './environments.js';

/** What the feed reads. */
export interface FeedHost {
  config(): BatonConfig;
  edge(): Edge;
  status(): Promise<StatusView>;
  freeze(): FreezeView | null;
  history(limit: number): HistoryEntry[];
  /** The running deploy's progress so far; null: none runs. */
  progress(): readonly ProgressEvent[] | null;
}

/** Between snapshots while a deploy runs (rates, in-flight), and while none does. */
export const TICK_DEPLOYING_MS = 1000;
export const TICK_IDLE_MS = 5000;
/** A comment line this often keeps proxies from closing a quiet stream. */
const KEEPALIVE_MS = 15_000;
const PROGRESS_LINES = 40;
/** A reader this far behind is cut off (its unread events would grow without bound). */
export const MAX_BUFFERED_BYTES = 1024 * 1024;
const HISTORY_LINES = 20;

interface Counted {
  readonly at: number;
  readonly requests: number;
  readonly errors: number | null;
}

/** Rates are taken over the last few seconds of samples, not between two close snapshots. */
const RATE_WINDOW_MS = 5000;
const MIN_RATE_SPAN_MS = 800;

export class DashboardFeed {
  /** Each page's stream, and whether it may still be sent to (its session lives). */
  private readonly clients = new Map<ServerResponse, () => boolean>();
  private last: DashboardSnapshot | null = null;
  private building: Promise<void> | null = null;
  private again = false;
  private timer: NodeJS.Timeout | null = null;
  private keepalive: NodeJS.Timeout | null = null;
  private readonly counted = new Map<string, Counted[]>();

  constructor(private readonly host: FeedHost) {}

  /** The controller extension that pushes on every deploy event and verdict. */
  extension(): DeployExtension {
    return {
      onEvent: (e) => {
        this.send('progress', e);
        this.changed();
      },
      onVerdict: () => this.changed(),
    };
  }

  /** Something changed: a new snapshot soon (coalesced). */
  changed(): void {
    if (this.clients.size === 0) return;
    if (this.building) {
      this.again = true;
      return;
    }
    this.building = this.build().finally(() => {
      this.building = null;
      if (this.again) {
        this.again = false;
        this.changed();
      }
    });
  }

  /**
   * Streams to `res` until it closes: the last snapshot at once, then every new one; `alive`
   * is asked before each send (false: the stream is ended).
   */
  async attach(res: ServerResponse, alive: () => boolean = () => true): Promise<void> {
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no',
    });
    res.write('retry: 2000\n\n');
    this.clients.set(res, alive);
    this.keepalive ??= setInterval(() => {
      for (const [c, ok] of this.clients) write(c, ok, ': keepalive\n\n');
    }, KEEPALIVE_MS).unref();
    if (this.last) write(res, alive, event('snapshot', this.last));
    this.changed();
    await new Promise<void>((resolve) => res.once('close', resolve));
    this.clients.delete(res);
    if (this.clients.size === 0) this.stop();
  }

  close(): void {
    for (const c of this.clients.keys()) c.end();
    this.clients.clear();
    this.stop();
  }

  private stop(): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.keepalive) clearInterval(this.keepalive);
    this.timer = this.keepalive = null;
  }

  private send(name: string, data: unknown): void {
    if (this.clients.size === 0) return;
    const text = event(name, data);
    for (const [c, ok] of this.clients) write(c, ok, text);
  }

  private async build(): Promise<void> {
    try {
      const snapshot = await this.snapshot();
      this.last = snapshot;
      this.send('snapshot', snapshot);
    } catch (err) {
      this.send('problem', { message: err instanceof Error ? err.message : String(err) });
    }
    if (this.timer) clearTimeout(this.timer);
    if (this.clients.size === 0) return;
    const ms = this.last?.status.deployment ? TICK_DEPLOYING_MS : TICK_IDLE_MS;
    this.timer = setTimeout(() => this.changed(), ms).unref();
  }

  private async snapshot(): Promise<DashboardSnapshot> {
    const { host } = this;
    const config = host.config();
    const edge = host.edge();
    const status = await host.status();
    const running = status.deployment;
    const canary = running?.canary ?? null;
    const finishing =
      running !== null && ['promoting', 'draining', 'stopping', 'finishing'].includes(running.step);
    const steps = stepsOf(config, canary ? (canary.step?.index ?? (finishing ? Infinity : 0)) : null);
    const analysis =
      config.strategy.type === 'canary' || config.strategy.type === 'ab'
        ? config.strategy.analysis
        : undefined;
    return {
      at: new Date().toISOString(),
      service: config.service,
      environment: { name: config.environment, all: environmentLinks(config) },
      edge: { kind: edge.kind, describe: edge.describe },
      status,
      freeze: host.freeze(),
      traffic: await this.traffic(edge, status),
      steps,
      analysis: analysis
        ? {
            successRate: analysis.successRate,
            latencyP99Ms: analysis.latencyP99 ?? null,
            minRequests: analysis.minRequests,
            failureLimit: analysis.failureLimit,
            intervalMs: analysis.interval,
          }
        : null,
      progress: (host.progress() ?? []).slice(-PROGRESS_LINES),
      history: host.history(HISTORY_LINES).map(withoutSeries),
      report: { command: 'baton report {id}', url: PATHS.historyReport.replace(':id', '{id}') },
    };
  }

  /** Per version: instances, in flight, requests and errors, and their rates since last time. */
  private async traffic(edge: Edge, status: StatusView): Promise<VersionTraffic[]> {
    const byVersion = new Map<string, StatusInstance[]>();
    for (const i of status.live?.instances ?? []) {
      const list = byVersion.get(i.version) ?? [];
      list.push(i);
      byVersion.set(i.version, list);
    }
    const now = Date.now();
    const out: VersionTraffic[] = [];
    for (const [version, instances] of byVersion) {
      const ids = instances.map((i) => targetId(i));
      const stats = edge.can.statusCounters ? await edge.stats(ids).catch(() => null) : null;
      const requests = stats
        ? stats.byClass.reduce((a, b) => a + b, 0)
        : instances.reduce((a, i) => a + i.requests, 0);
      const errors = stats ? stats.byClass[4]! + stats.byClass[5]! : null;
      // Counters restart when instances are replaced: no rate across that.
      const kept = (this.counted.get(version) ?? []).filter(
        (c) => now - c.at <= RATE_WINDOW_MS && c.requests <= requests && (c.errors ?? 0) <= (errors ?? 0),
      );
      const base = kept[0];
      const dt = base ? (now - base.at) / 1000 : 0;
      const rate = base && dt >= MIN_RATE_SPAN_MS / 1000 ? (requests - base.requests) / dt : null;
      const errorRate =
        rate !== null && errors !== null && base?.errors != null ? (errors - base.errors) / dt : null;
      kept.push({ at: now, requests, errors });
      this.counted.set(version, kept);
      out.push({
        version,
        instances: instances.length,
        inflight: instances.reduce((a, i) => a + i.inflight, 0),
        requests,
        errors,
        rate,
        errorRate,
      });
    }
    for (const v of this.counted.keys()) if (!byVersion.has(v)) this.counted.delete(v);
    return out;
  }
}

/** The page shows a proof's counts; its time series (the report's) would weigh on every push. */
function withoutSeries(h: HistoryEntry): HistoryEntry {
  if (!h.proof) return h;
  return { ...h, proof: { ...h.proof, series: { ...h.proof.series, samples: [] }, marks: [] } };
}

const event = (name: string, data: unknown): string => `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`;

function write(res: ServerResponse, alive: () => boolean, text: string): void {
  if (res.destroyed || res.writableEnded) return;
  if (!alive()) res.end();
  else if (res.writableLength > MAX_BUFFERED_BYTES) res.destroy();
  else res.write(text);
}

/** The canary's configured steps; `at`: the running step (1-based; 0 before, Infinity after), null: none runs. */
function stepsOf(config: BatonConfig, at: number | null): StepView[] {
  const s = config.strategy;
  if (s.type !== 'canary') return [];
  return s.steps.map((step, i) => {
    const index = i + 1;
    const text =
      'setWeight' in step
        ? `setWeight ${step.setWeight}%`
        : 'pause' in step
          ? typeof step.pause === 'number'
            ? `pause ${formatDuration(step.pause)}`
            : step.pause.duration !== undefined
              ? `pause ${formatDuration(step.pause.duration)}`
              : 'pause until promote'
          : `header route (${step.setHeaderRoute.length} rule${step.setHeaderRoute.length === 1 ? '' : 's'})`;
    const state: StepView['state'] =
      at === null ? 'pending' : index < at ? 'done' : index === at ? 'current' : 'pending';
    return { index, text, state };
  });
}
