// bench/proxy.ts's figures: what a run measured (its types), the medians over rounds, the goals
// of issue 16 met or not, and the report printed at the end.
import os from 'node:os';
import type { Soak, WorkersPeak } from './proxy-phases.js';

// The goals of issue 16.
export const GOAL_RPS_RATIO = 0.7;
export const GOAL_CPU_PER_REQ_RATIO = 1.5;
/** Baton's p99 overhead at half its own peak may exceed nginx's by this much. */
export const GOAL_P99_MARGIN_MS = 1;
export const GOAL_WORKERS_RPS_RATIO = 0.7;
export const WORKERS = 2;
/** RSS over a soak may grow by this share at most. */
export const GOAL_RSS_GROWTH = 0.1;
export interface Settings {
  readonly durationS: number;
  readonly warmupS: number;
  readonly connections: number;
  readonly rounds: number;
  readonly backend: 'raw' | 'http';
  readonly json: boolean;
  /** Seconds of the RSS soak at half Baton's peak; 0: skipped. */
  readonly soakS: number;
}

export interface WrkResult {
  readonly rps: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** From a done() hook in wrk's Lua (its --latency table stops at 99%). */
  readonly p999Ms: number;
  readonly requests: number;
  /** Socket errors (connect/read/write/timeout) plus non-2xx/3xx responses. */
  readonly errors: number;
  /** CPU of the system's own processes and of the backend, in % of one core. */
  readonly cpuPct: number | null;
  readonly backendCpuPct: number;
  /** The system's own CPU time per completed request, in microseconds (less noisy than req/s). */
  readonly cpuUsPerReq: number | null;
}

export type SystemName = 'direct' | 'nginx' | 'baton';
export type Results = Record<SystemName, WrkResult>;

/** A paced phase: every system offered half of `basis`'s peak rate from the same round. */
export interface PacedPhase {
  readonly basis: 'nginx' | 'baton';
  readonly rate: number;
  readonly results: Results;
}

export interface Round {
  readonly peak: Results;
  /** [0]: half of nginx's peak (the issue's goal); [1]: half of Baton's own peak. */
  readonly paced: readonly PacedPhase[];
}

export const ORDER = ['direct', 'nginx', 'baton'] as const;
export const BASES = ['nginx', 'baton'] as const;

/** 4. HTTPS at peak: Baton and nginx terminating TLS, same certificate and suite. */
export interface HttpsPeak {
  /** What a handshake with each negotiated, e.g. "TLSv1.3 TLS_AES_128_GCM_SHA256". */
  readonly negotiated: string;
  readonly nginx: WrkResult;
  readonly baton: WrkResult;
  /** Baton / nginx. */
  readonly rpsRatio: number;
  readonly cpuPerReqRatio: number;
}

export function median(values: readonly number[]): number {
  const v = [...values].sort((a, b) => a - b);
  const mid = Math.floor(v.length / 2);
  return v.length % 2 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
}

export function medianResult(results: readonly WrkResult[]): WrkResult {
  const cpu = results.map((r) => r.cpuPct).filter((c): c is number => c !== null);
  const perReq = results.map((r) => r.cpuUsPerReq).filter((c): c is number => c !== null);
  return {
    rps: median(results.map((r) => r.rps)),
    p50Ms: median(results.map((r) => r.p50Ms)),
    p99Ms: median(results.map((r) => r.p99Ms)),
    p999Ms: median(results.map((r) => r.p999Ms)),
    requests: median(results.map((r) => r.requests)),
    errors: results.reduce((a, r) => a + r.errors, 0),
    cpuPct: cpu.length ? median(cpu) : null,
    backendCpuPct: median(results.map((r) => r.backendCpuPct)),
    cpuUsPerReq: perReq.length ? median(perReq) : null,
  };
}

export function medianResults(all: readonly Results[]): Results {
  return {
    direct: medianResult(all.map((r) => r.direct)),
    nginx: medianResult(all.map((r) => r.nginx)),
    baton: medianResult(all.map((r) => r.baton)),
  };
}

/** A paced run counts as held when the system got at least this share of the offered rate. */
export const HELD_SHARE = 0.9;

export interface PacedSummary extends PacedPhase {
  /** p99 through the proxy minus p99 direct, at the same offered rate. */
  readonly p99OverheadMs: { readonly baton: number; readonly nginx: number };
  /** Baton p50 and p99 divided by nginx's. */
  readonly latencyRatio: { readonly p50: number; readonly p99: number };
  /** Whether Baton achieved the offered rate; if not it was saturated and its latency is queueing. */
  readonly batonHeldRate: boolean;
}

export interface Summary {
  readonly peak: Results;
  readonly paced: readonly PacedSummary[];
  readonly ratios: {
    readonly peakRps: number;
    readonly peakCpuPerReq: number;
    readonly peakP50: number;
    readonly peakP99: number;
  };
  /** The goals of issue 16; null: not measured in this run (the soak is off by default). */
  readonly goals: {
    readonly rpsAtLeast07xNginx: boolean;
    readonly cpuPerReqAtMost15xNginx: boolean;
    readonly p99OverheadAtHalfBatonPeakWithin1msOfNginx: boolean;
    readonly workersRpsAtLeast07xNginx: boolean;
    readonly rssFlatWithin10Percent: boolean | null;
  };
}

export interface Memory {
  readonly beforeKiB: number | null;
  readonly afterKiB: number | null;
  readonly soak: Soak | null;
}

export function summarize(
  rounds: readonly Round[],
  workers: WorkersPeak<WrkResult>,
  soak: Soak | null,
): Summary {
  const peak = medianResults(rounds.map((r) => r.peak));
  const paced = BASES.map((basis, i): PacedSummary => {
    const phases = rounds.map((r) => r.paced[i]!);
    const results = medianResults(phases.map((p) => p.results));
    const rate = median(phases.map((p) => p.rate));
    return {
      basis,
      rate,
      results,
      p99OverheadMs: {
        baton: results.baton.p99Ms - results.direct.p99Ms,
        nginx: results.nginx.p99Ms - results.direct.p99Ms,
      },
      latencyRatio: {
        p50: results.baton.p50Ms / results.nginx.p50Ms,
        p99: results.baton.p99Ms / results.nginx.p99Ms,
      },
      batonHeldRate: results.baton.rps >= rate * HELD_SHARE,
    };
  });
  const ratios = {
    peakRps: peak.baton.rps / peak.nginx.rps,
    peakCpuPerReq: (peak.baton.cpuUsPerReq ?? NaN) / (peak.nginx.cpuUsPerReq ?? NaN),
    peakP50: peak.baton.p50Ms / peak.nginx.p50Ms,
    peakP99: peak.baton.p99Ms / peak.nginx.p99Ms,
  };
  const halfBaton = paced[1]!;
  return {
    peak,
    paced,
    ratios,
    goals: {
      rpsAtLeast07xNginx: ratios.peakRps >= GOAL_RPS_RATIO,
      cpuPerReqAtMost15xNginx: ratios.peakCpuPerReq <= GOAL_CPU_PER_REQ_RATIO,
      p99OverheadAtHalfBatonPeakWithin1msOfNginx:
        halfBaton.batonHeldRate &&
        halfBaton.p99OverheadMs.baton <= halfBaton.p99OverheadMs.nginx + GOAL_P99_MARGIN_MS,
      workersRpsAtLeast07xNginx: workers.rpsRatio >= GOAL_WORKERS_RPS_RATIO,
      rssFlatWithin10Percent: soak ? soak.growth <= GOAL_RSS_GROWTH : null,
    },
  };
}

// --- output -----------------------------------------------------------------------------------

export const int = (n: number): string => Math.round(n).toLocaleString('en-US');
export const ms = (n: number): string => `${n.toFixed(2)} ms`;
export const ratio = (n: number): string => `${n.toFixed(2)}x`;
export const signedMs = (n: number): string => `${n >= 0 ? '+' : ''}${n.toFixed(2)} ms`;

export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    '  ' + cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(header), ...rows.map(line)].join('\n');
}

export interface Context {
  readonly settings: Settings;
  readonly nginxVersion: string;
  readonly batonVersion: string;
  readonly loadAvg: readonly number[];
}

export const LABEL: Record<SystemName, string> = {
  direct: 'direct (no proxy)',
  nginx: 'nginx (1 worker)',
  baton: 'Baton (1 process)',
};

export const cpu = (r: WrkResult): string => (r.cpuPct === null ? '-' : `${r.cpuPct}%`);
export const perReq = (r: WrkResult): string =>
  r.cpuUsPerReq === null ? '-' : `${r.cpuUsPerReq.toFixed(1)} us`;

export function httpsReport(h: HttpsPeak, st: Settings): string[] {
  const row = (label: string, r: WrkResult): string[] => [
    label,
    int(r.rps),
    ms(r.p50Ms),
    ms(r.p99Ms),
    cpu(r),
    perReq(r),
    `${r.backendCpuPct}%`,
    String(r.errors),
  ];
  return [
    `${2 + BASES.length}. HTTPS at peak: each proxy terminates TLS (${h.negotiated}, the same ECDSA P-256`,
    `   certificate), closed loop, ${st.connections} keep-alive connections`,
    table(
      ['system', 'req/s', 'p50', 'p99', 'proxy CPU', 'CPU/req', 'backend CPU', 'errors'],
      [row('nginx (1 worker), HTTPS', h.nginx), row('Baton (1 process), HTTPS', h.baton)],
    ),
    `  Baton / nginx over HTTPS: req/s ${ratio(h.rpsRatio)}, CPU per request ${ratio(h.cpuPerReqRatio)}`,
    '',
  ];
}

export function workersReport(w: WorkersPeak<WrkResult>, m: Memory): string[] {
  const row = (label: string, r: WrkResult): string[] => [
    label,
    int(r.rps),
    ms(r.p50Ms),
    ms(r.p99Ms),
    ms(r.p999Ms),
    cpu(r),
    perReq(r),
    String(r.errors),
  ];
  const kib = (n: number | null): string => (n === null ? '-' : `${int(n / 1024)} MiB`);
  const soak = m.soak;
  return [
    `${3 + BASES.length}. ${w.processes} processes each, at peak: Baton's data plane with proxy.workers: ${w.processes}`,
    `   (an app of one instance: the same backend, run by Baton) vs nginx worker_processes ${w.processes} in front of it`,
    table(
      ['system', 'req/s', 'p50', 'p99', 'p99.9', 'proxy CPU', 'CPU/req', 'errors'],
      [row(`nginx (${w.processes} workers)`, w.nginx), row(`Baton (${w.processes} processes)`, w.baton)],
    ),
    `  Baton / nginx with ${w.processes} each: req/s ${ratio(w.rpsRatio)}, CPU per request ${ratio(w.cpuPerReqRatio)}`,
    '',
    `Memory of Baton (1 process): RSS ${kib(m.beforeKiB)} before the runs, ${kib(m.afterKiB)} after`,
    ...(soak
      ? [
          `  soak at ${int(soak.rate)} req/s for ${soak.seconds} s: RSS ${soak.samples.map(([t, k]) => `${t}s ${kib(k)}`).join(', ')}`,
          `  growth from the end of the first third to the end: ${(soak.growth * 100).toFixed(1)}%; p99 ${ms(soak.result.p99Ms)}, errors ${soak.result.errors}`,
        ]
      : ["  (no soak: BENCH_SOAK=300 runs 5 minutes at half of Baton's peak and samples RSS)"]),
    '',
  ];
}

export function report(
  ctx: Context,
  s: Summary,
  rounds: readonly Round[],
  h: HttpsPeak,
  w: WorkersPeak<WrkResult>,
  m: Memory,
): string {
  const st = ctx.settings;
  const of = st.rounds > 1 ? `; median of ${st.rounds} rounds` : '';
  const verdict = (ok: boolean): string => (ok ? 'MET' : 'NOT MET');
  const peakTable = table(
    ['system', 'req/s', 'p50', 'p99', 'proxy CPU', 'CPU/req', 'backend CPU', 'errors'],
    ORDER.map((n) => {
      const r = s.peak[n];
      const row = [LABEL[n], int(r.rps), ms(r.p50Ms), ms(r.p99Ms), cpu(r), perReq(r)];
      return [...row, `${r.backendCpuPct}%`, String(r.errors)];
    }),
  );
  const pacedSection = (p: PacedSummary, i: number): string[] => [
    `${i + 2}. Half of ${p.basis === 'nginx' ? "nginx's" : "Baton's"} peak: ${int(p.rate)} req/s offered ` +
      `to each system${p.basis === 'nginx' ? ' (the p99 goal)' : ''}${of}`,
    table(
      ['system', 'achieved req/s', 'p50', 'p99', 'p99 vs direct', 'proxy CPU', 'CPU/req', 'errors'],
      ORDER.map((n) => {
        const r = p.results[n];
        const over = n === 'direct' ? '-' : signedMs(r.p99Ms - p.results.direct.p99Ms);
        return [LABEL[n], int(r.rps), ms(r.p50Ms), ms(r.p99Ms), over, cpu(r), perReq(r), String(r.errors)];
      }),
    ),
    ...(p.batonHeldRate
      ? []
      : ['  Baton could not take this rate (saturated): its latency here is queueing, not overhead.']),
    '',
  ];
  const [halfNginx, halfBaton] = s.paced;
  return [
    `Baton ${ctx.batonVersion} built-in proxy vs ${ctx.nginxVersion}, node ${process.version}, ` +
      `${os.cpus().length} CPUs, load average at start ${ctx.loadAvg.map((l) => l.toFixed(2)).join(' ')}`,
    `Load: wrk -t1 -c${st.connections} --latency, ${st.durationS} s per run (after a ${st.warmupS} s ` +
      `warm-up per system); backend: bench/backend.ts ${st.backend}, one Node process; all on 127.0.0.1.`,
    "CPU = % of one core over the run; CPU/req = the proxy's CPU time per completed request.",
    'Paced runs: the same connections, a wrk delay() script holds the total offered rate (1 ms timer',
    'resolution; latency is timed from the request write, so waits behind a stall are not counted).',
    '',
    `1. Peak: closed loop, ${st.connections} connections as fast as they go${of}`,
    peakTable,
    '',
    ...s.paced.flatMap(pacedSection),
    ...httpsReport(h, st),
    ...workersReport(w, m),
    'Baton / nginx',
    `  req/s at peak             ${ratio(s.ratios.peakRps)}  ` +
      `(goal >= ${GOAL_RPS_RATIO}x: ${verdict(s.goals.rpsAtLeast07xNginx)})`,
    `  CPU per request at peak   ${ratio(s.ratios.peakCpuPerReq)}  ` +
      `(goal <= ${GOAL_CPU_PER_REQ_RATIO}x: ${verdict(s.goals.cpuPerReqAtMost15xNginx)}; the least noise-sensitive figure)`,
    `  req/s with ${w.processes} processes each  ${ratio(w.rpsRatio)}  ` +
      `(goal >= ${GOAL_WORKERS_RPS_RATIO}x: ${verdict(s.goals.workersRpsAtLeast07xNginx)})`,
    `  RSS over a soak           ${m.soak ? `${(m.soak.growth * 100).toFixed(1)}%` : 'not measured'}  ` +
      `(goal within ${GOAL_RSS_GROWTH * 100}%: ${s.goals.rssFlatWithin10Percent === null ? 'NOT MEASURED (BENCH_SOAK=300)' : verdict(s.goals.rssFlatWithin10Percent)})`,
    `  p50 / p99 at peak         ${ratio(s.ratios.peakP50)} / ${ratio(s.ratios.peakP99)}`,
    ...(halfNginx && halfBaton
      ? [
          `  p50 / p99 at half nginx   ${ratio(halfNginx.latencyRatio.p50)} / ${ratio(halfNginx.latencyRatio.p99)}`,
          `  p50 / p99 at half Baton   ${ratio(halfBaton.latencyRatio.p50)} / ${ratio(halfBaton.latencyRatio.p99)}`,
          'Proxy p99 overhead (proxy p99 - direct p99 at the same offered rate)',
          `  at half nginx peak: Baton ${signedMs(halfNginx.p99OverheadMs.baton)}` +
            `${halfNginx.batonHeldRate ? '' : ' (saturated)'}, nginx ${signedMs(halfNginx.p99OverheadMs.nginx)}`,
          `  at half Baton peak: Baton ${signedMs(halfBaton.p99OverheadMs.baton)}, ` +
            `nginx ${signedMs(halfBaton.p99OverheadMs.nginx)}  (goal: Baton <= nginx + ${GOAL_P99_MARGIN_MS} ms: ` +
            `${verdict(s.goals.p99OverheadAtHalfBatonPeakWithin1msOfNginx)}); p99.9 Baton ${ms(halfBaton.results.baton.p999Ms)}, nginx ${ms(halfBaton.results.nginx.p999Ms)}`,
        ]
      : []),
    ...(rounds.length > 1
      ? [
          'Per round: Baton/nginx req/s at peak; Baton p99 overhead at half nginx peak',
          ...rounds.map((r, i) => {
            const p = r.paced[0]!.results;
            return `  ${i + 1}: ${ratio(r.peak.baton.rps / r.peak.nginx.rps)}; ${signedMs(p.baton.p99Ms - p.direct.p99Ms)}`;
          }),
        ]
      : []),
  ].join('\n');
}
