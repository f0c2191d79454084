// Canary analysis from the proxy's own counters (no Prometheus needed): every `interval` it
// compares what the canary answered since the last check with the thresholds (success rate,
// p99) and, with `baseline`, with what stable answered over the same interval. Too few canary
// requests is inconclusive and said so; `failureLimit` failed checks abort the canary.
// Requests the client abandoned are no answers of the canary's: shown, never judged.
import type { VerdictView as Verdict } from '../api/status.js';
import type { AnalysisConfig } from '../config/schema.js';
import { LATENCY_BUCKETS, type StatsSnapshot } from '../edge/edge.js';
import { runCheck } from './checks.js';

/** One analysis check's outcome, as status and progress show it (a wire type). */
export type { VerdictView as Verdict } from '../api/status.js';

interface Window {
  readonly requests: number;
  readonly good: number;
  readonly p99Ms: number | null;
  readonly clientAborts: number | null;
}

function delta(now: StatsSnapshot, before: StatsSnapshot): Window {
  const cls = now.byClass.map((v, i) => v - (before.byClass[i] ?? 0));
  const requests = cls.reduce((a, b) => a + b, 0);
  const bad = (cls[4] ?? 0) + (cls[5] ?? 0);
  const buckets = now.buckets.map((v, i) => v - (before.buckets[i] ?? 0));
  const clientAborts = now.clientAborts === undefined ? null : now.clientAborts - (before.clientAborts ?? 0);
  return { requests, good: requests - bad, p99Ms: p99Of(buckets, requests), clientAborts };
}

/** Upper bound (ms) of the bucket holding the 99th percentile; Infinity past the last one. */
function p99Of(buckets: readonly number[], n: number): number | null {
  // No histogram (HAProxy counts answers by class but keeps no latencies): no p99.
  if (n === 0 || buckets.every((b) => b === 0)) return null;
  const rank = Math.ceil(0.99 * n);
  let seen = 0;
  for (let i = 0; i < buckets.length; i++) {
    seen += buckets[i]!;
    if (seen >= rank) return i < LATENCY_BUCKETS.length ? LATENCY_BUCKETS[i]! * 1000 : Infinity;
  }
  return Infinity;
}

const pct = (w: Window): number => (w.requests ? (100 * w.good) / w.requests : 100);
const fmt = (n: number): string => (Number.isFinite(n) ? `${Math.round(n * 100) / 100}` : '>10000');

/** The edge's counters of a set of targets; null when the edge keeps none (nginx). */
type StatsSource = () => Promise<StatsSnapshot | null>;

export class Analysis {
  readonly verdicts: Verdict[] = [];
  failures = 0;
  private canaryBefore: StatsSnapshot | null = null;
  private stableBefore: StatsSnapshot | null = null;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly cfg: AnalysisConfig,
    private readonly canary: StatsSource,
    private readonly stable: StatsSource,
    private readonly onVerdict: (v: Verdict) => void,
    /** Called once when failures reach failureLimit, with the reason. */
    private readonly onLimit: (reason: string) => void,
    /** Values for {version}, {previousVersion}, {service} in extra checks. */
    private readonly vars: Record<string, string> = {},
  ) {}

  /** Takes the counters' starting point, then checks every `interval`. */
  async start(): Promise<void> {
    this.canaryBefore = await this.canary();
    this.stableBefore = await this.stable();
    this.timer = setInterval(() => void this.check(), this.cfg.interval);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** One check over the interval since the last one. */
  async check(): Promise<Verdict> {
    const c = await this.canary();
    const s = await this.stable();
    let verdict: Verdict;
    if (c && this.canaryBefore) {
      // Stable without counters (none of its targets known to the edge yet): the canary is
      // judged on its own thresholds; only the baseline comparison waits.
      const sw = s && this.stableBefore ? delta(s, this.stableBefore) : null;
      verdict = this.judge(delta(c, this.canaryBefore), sw);
    } else {
      verdict = {
        at: new Date().toISOString(),
        result: 'inconclusive',
        requests: 0,
        successRate: null,
        p99Ms: null,
        clientAborts: null,
        reason: 'this edge keeps no per-instance counters: only the extra checks judge the canary',
      };
    }
    this.canaryBefore = c;
    this.stableBefore = s;
    const extra = this.cfg.checks ?? [];
    if (extra.length) {
      const timeout = Math.max(500, this.cfg.interval - 100);
      const failed = (await Promise.all(extra.map((x) => runCheck(x, this.vars, timeout)))).filter(
        (f): f is string => f !== null,
      );
      if (failed.length) {
        const own = verdict.result === 'fail' ? `${verdict.reason}; ` : '';
        verdict = { ...verdict, result: 'fail', reason: `${own}${failed.join('; ')}` };
      } else if (!c) {
        verdict = { ...verdict, result: 'pass', reason: `${extra.length} extra check(s) passed` };
      }
    }
    if (!this.timer) return verdict; // stopped while the checks ran
    this.verdicts.push(verdict);
    this.onVerdict(verdict);
    if (verdict.result === 'fail' && ++this.failures === this.cfg.failureLimit) {
      this.stop();
      this.onLimit(
        `canary analysis failed ${this.failures} time(s) (failureLimit ${this.cfg.failureLimit}); last: ${verdict.reason}`,
      );
    }
    return verdict;
  }

  private judge(cw: Window, sw: Window | null): Verdict {
    const base = {
      at: new Date().toISOString(),
      requests: cw.requests,
      successRate: cw.requests ? pct(cw) : null,
      p99Ms: cw.p99Ms,
      clientAborts: cw.clientAborts,
    };
    const aborts = cw.clientAborts ? `; ${cw.clientAborts} abandoned by their client, not counted` : '';
    if (cw.requests < this.cfg.minRequests) {
      return {
        ...base,
        result: 'inconclusive',
        reason: `${cw.requests} canary request(s) in the interval, fewer than minRequests ${this.cfg.minRequests}${aborts}`,
      };
    }
    const problems: string[] = [];
    const rate = pct(cw);
    if (rate < this.cfg.successRate) {
      problems.push(
        `success rate ${fmt(rate)}% < ${this.cfg.successRate}% (${cw.requests - cw.good} of ${cw.requests} failed)`,
      );
    }
    const limit = this.cfg.latencyP99;
    if (limit !== undefined && cw.p99Ms !== null && cw.p99Ms > limit) {
      problems.push(`p99 ${fmt(cw.p99Ms)}ms > ${limit}ms`);
    }
    if (this.cfg.baseline && sw && sw.requests >= this.cfg.minRequests) {
      // "Clearly worse": an error rate over twice stable's plus one point, or a p99 over
      // 1.5x stable's plus 50ms.
      const cErr = 100 - rate;
      const sErr = 100 - pct(sw);
      if (cErr > 2 * sErr + 1) problems.push(`error rate ${fmt(cErr)}% vs stable ${fmt(sErr)}%`);
      if (cw.p99Ms !== null && sw.p99Ms !== null && cw.p99Ms > 1.5 * sw.p99Ms + 50) {
        problems.push(`p99 ${fmt(cw.p99Ms)}ms vs stable ${fmt(sw.p99Ms)}ms`);
      }
    }
    return problems.length
      ? { ...base, result: 'fail', reason: `${problems.join('; ')}${aborts}` }
      : {
          ...base,
          result: 'pass',
          reason: `success rate ${fmt(rate)}%, p99 ${cw.p99Ms === null ? '-' : `${fmt(cw.p99Ms)}ms`} over ${cw.requests} request(s)${aborts}`,
        };
  }
}
