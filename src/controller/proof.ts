// A deploy's proof (src/api/proof.ts): the edge's counters snapshotted when a deploy (or
// rollback) starts and again when it ends, the difference by version, and a sample every
// PROOF_SAMPLE_MS in between for the share per version over time. The edge keeps cumulative counters by
// version (the built-in proxy: TrafficCounters, no per-request allocation; over the data
// plane's socket: GET /v1/edge/traffic; HAProxy: `show stat`), so nothing here sees a request.
//
// Never throws and never holds the deploy up: an edge that cannot answer gives a proof whose
// numbers are null, with the reason in `note`.
import type { ProgressEvent } from '../api/deploy.js';
import type { DeployProof, ProofCounts, ProofMark, ProofSample, ProofVersion } from '../api/proof.js';
import type { VerdictView } from '../api/status.js';
import type { Edge, TrafficSnapshot, VersionTraffic } from '../edge/edge.js';
import {
  noTraffic,
  noTrafficNote,
  percentileMs,
  restarted,
  trafficDiff,
  trafficTotal,
  TRAFFIC_FIELDS,
} from '../edge/traffic.js';
import { messageOf } from '../errors.js';

/** One sample of requests per version every PROOF_SAMPLE_MS while a deploy runs (a 1s deploy shows its switch). */
export const PROOF_SAMPLE_MS = 250;
/** At most this many samples: past it, neighbours are merged (the interval doubles). */
export const PROOF_MAX_SAMPLES = 600;

export class ProofRecorder {
  private first: TrafficSnapshot | null = null;
  private last: TrafficSnapshot | null = null;
  private firstAt = 0;
  private readonly samples: ProofSample[] = [];
  private intervalMs = PROOF_SAMPLE_MS;
  private timer: NodeJS.Timeout | null = null;
  private sampling: Promise<void> | null = null;
  private failure: string | null = null;
  private stopped = false;

  private constructor(
    private readonly edge: Edge,
    private readonly alive: () => boolean,
  ) {}

  /**
   * Takes the first snapshot (awaited: requests are counted from here) and samples until
   * finish(), or until `alive` says the deploy is gone (it ended without finish: an internal error).
   */
  static async start(edge: Edge, alive: () => boolean): Promise<ProofRecorder> {
    const r = new ProofRecorder(edge, alive);
    r.first = await r.read();
    // The edge's own time of its snapshot: what it counted is exactly what finished before it.
    r.firstAt = r.first?.at ?? Date.now();
    r.last = r.first;
    r.schedule();
    return r;
  }

  /** Stops sampling, takes the last snapshot and returns the difference. */
  async finish(
    events: readonly ProgressEvent[],
    verdicts: readonly VerdictView[],
    result: string,
  ): Promise<DeployProof> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.sampling;
    const end = await this.read();
    const endAt = end?.at ?? Date.now();
    if (end !== null) this.sample(end, endAt);
    const marks = this.marks(events, verdicts, endAt, result);
    const base = {
      edge: this.edge.kind,
      startedAt: new Date(this.firstAt).toISOString(),
      endedAt: new Date(endAt).toISOString(),
      series: { intervalMs: this.intervalMs, samples: this.samples },
      marks,
    };
    if (end === null || this.first === null) {
      return {
        ...base,
        ...nullCounts(),
        failed: null,
        versions: [],
        unknown: [...TRAFFIC_FIELDS],
        note: `the edge's counters could not be read: ${this.failure ?? 'unknown error'}`,
      };
    }
    const unknown = new Set(end.unknown);
    const diff = trafficDiff(end, this.first);
    const versions = diff.map((v) => ({ version: v.version, ...counts(v, unknown) }));
    const total = counts(trafficTotal(diff), unknown);
    return {
      ...base,
      ...total,
      failed:
        total.status5xx === null || total.proxyErrors === null ? null : total.status5xx + total.proxyErrors,
      versions: versions.sort((a, b) => (b.requests ?? 0) - (a.requests ?? 0)),
      unknown: TRAFFIC_FIELDS.filter((f) => unknown.has(f)),
      note: restarted(end, this.first)
        ? `the edge's counters restarted at ${new Date(end.since!).toISOString()} (a process of it was replaced): its counts are from then, those of its other processes (if any) since they started${end.note ? `; ${end.note}` : ''}`
        : (end.note ?? null),
    };
  }

  private async read(): Promise<TrafficSnapshot | null> {
    if (!this.edge.traffic) return noTraffic(noTrafficNote(this.edge.kind, this.edge.describe));
    try {
      return await this.edge.traffic();
    } catch (err) {
      this.failure = messageOf(err);
      return null;
    }
  }

  private schedule(): void {
    if (this.stopped || !this.alive()) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.sampling = this.read().then((s) => {
        if (s !== null && !this.stopped) this.sample(s, s.at);
        this.sampling = null;
        this.schedule();
      });
    }, PROOF_SAMPLE_MS);
    this.timer.unref();
  }

  private sample(s: TrafficSnapshot, at: number): void {
    if (this.last === null) return;
    const requests: Record<string, number> = {};
    let failed = 0;
    for (const v of trafficDiff(s, this.last)) {
      requests[v.version] = v.requests;
      failed += v.status5xx + v.proxyErrors;
    }
    this.samples.push({ t: at - this.firstAt, requests, failed });
    this.last = s;
    if (this.samples.length > PROOF_MAX_SAMPLES) this.halve();
  }

  /** Merges neighbouring samples: the series keeps its length bounded on a long deploy. */
  private halve(): void {
    const merged: ProofSample[] = [];
    for (let i = 0; i < this.samples.length; i += 2) {
      const a = this.samples[i]!;
      const b = this.samples[i + 1];
      if (!b) {
        merged.push(a);
        continue;
      }
      const requests: Record<string, number> = { ...a.requests };
      for (const [k, n] of Object.entries(b.requests)) requests[k] = (requests[k] ?? 0) + n;
      merged.push({ t: b.t, requests, failed: a.failed + b.failed });
    }
    this.samples.splice(0, this.samples.length, ...merged);
    this.intervalMs *= 2;
  }

  private marks(
    events: readonly ProgressEvent[],
    verdicts: readonly VerdictView[],
    endAt: number,
    result: string,
  ): ProofMark[] {
    const mark = (at: number, kind: ProofMark['kind'], label: string, message: string): ProofMark => ({
      t: Math.max(0, at - this.firstAt),
      at: new Date(at).toISOString(),
      kind,
      label,
      message,
    });
    const marks = [
      ...events
        .filter((e) => e.kind === 'start' || e.kind === 'step')
        .map((e) =>
          mark(Date.parse(e.time), e.kind === 'start' ? 'start' : 'step', e.step ?? 'start', e.message),
        ),
      ...verdicts.map((v) => mark(Date.parse(v.at), 'verdict', v.result, v.reason)),
      mark(endAt, 'done', result, `deploy ${result}`),
    ];
    return marks.sort((a, b) => a.t - b.t);
  }
}

/** The proof of a deploy nothing counted (its controller stopped meanwhile): null numbers, and why. */
export function uncountedProof(edge: string, startedAt: string, note: string): DeployProof {
  return {
    edge,
    startedAt,
    endedAt: new Date().toISOString(),
    series: { intervalMs: PROOF_SAMPLE_MS, samples: [] },
    marks: [],
    ...nullCounts(),
    failed: null,
    versions: [],
    unknown: [...TRAFFIC_FIELDS],
    note,
  };
}

function nullCounts(): ProofCounts {
  return { requests: null, status5xx: null, proxyErrors: null, clientAborts: null, p50Ms: null, p99Ms: null };
}

function counts(v: VersionTraffic, unknown: ReadonlySet<string>): Omit<ProofVersion, 'version'> {
  const known = (f: string, n: number | null): number | null => (unknown.has(f) ? null : n);
  const noLatency = v.buckets.length === 0;
  return {
    requests: known('requests', v.requests),
    status5xx: known('status5xx', v.status5xx),
    proxyErrors: known('proxyErrors', v.proxyErrors),
    clientAborts: known('clientAborts', v.clientAborts),
    p50Ms: noLatency ? null : known('p50Ms', percentileMs(v.buckets, 50)),
    p99Ms: noLatency ? null : known('p99Ms', percentileMs(v.buckets, 99)),
  };
}
