// Edge benchmark: for each edge Baton drives — its built-in proxy, a real nginx and a real HAProxy,
// each started by this script on 127.0.0.1 with the test helpers (test/helpers/*.ts) — it measures
//   1. switch time, in process: the edge built as test/edge-suite.test.ts builds it, two backends,
//      and edge.apply([A]) / edge.apply([B]) timed alternately after a warm-up apply. apply()
//      resolves only once NEW requests reach the new set, so its duration is the switch time; a
//      fresh request after each apply checks that it does reach the new backend;
//   2. deploys under load, with the real daemon: `baton up` (dist/) with the example app, 2
//      instances, blue-green (verify 200ms, keepOld 0s), 1.0.0 through the admin API, then N
//      deploys with `baton deploy` while two load clients (test/helpers startLoad, 4 workers
//      each) send GETs through the edge: one on keep-alive connections, one on a new connection
//      per request. Every deploy must succeed, else the bench fails.
// It prints a Markdown table, or JSON with --json. Everything it starts is stopped at the end (or
// on error, SIGINT, SIGTERM), and it checks that no nginx, HAProxy, daemon or app process is left.
//
//   npm run bench:edges [-- --json]
//
// Environment (all optional): BENCH_DEPLOYS deploys per edge (default 5), BENCH_SWITCHES timed
// applies per edge (20), BENCH_CONCURRENCY workers per load client (4), BENCH_EDGES a
// comma-separated subset of builtin,nginx,haproxy. Progress goes to stderr, results to stdout.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import type { TestContext } from 'node:test';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { edgeSchema } from '../src/config/schema.js';
import { BuiltinEdge } from '../src/edge/builtin/edge.js';
import type { Edge } from '../src/edge/edge.js';
import { HaproxyEdge } from '../src/edge/haproxy/haproxy.js';
import { NginxEdge } from '../src/edge/nginx/nginx.js';
import { Service, type ServiceOptions } from '../test/helpers/app-daemon.js';
import { startHaproxy, type HaproxyProcess } from '../test/helpers/haproxy.js';
import { ROOT, startBackend, startLoad, startProxy, type LoadResult } from '../test/helpers/index.js';
import { edgeOptions, routeTo } from '../test/helpers/edges.js';
import { NGINX, startNginx, type NginxProcess } from '../test/helpers/nginx.js';
import { envNumber, readJsonFlag } from './settings.js';

const HAPROXY = ['/usr/sbin/haproxy', '/usr/local/sbin/haproxy'].find((p) => existsSync(p));
const EDGE_KINDS = ['builtin', 'nginx', 'haproxy'] as const;
type EdgeKind = (typeof EDGE_KINDS)[number];
/** Load before the first deploy (connections open, JIT warm), and between deploys. */
const WARM_MS = 1000;
const HOLD_MS = 500;
const DEPLOY_TIMEOUT_MS = 60_000;

// --- settings ---------------------------------------------------------------------------------

interface Settings {
  readonly deploys: number;
  readonly switches: number;
  readonly concurrency: number;
  readonly edges: readonly EdgeKind[];
  readonly json: boolean;
}

function readSettings(argv: readonly string[]): Settings {
  const json = readJsonFlag(
    argv,
    'usage: npm run bench:edges [-- --json]\n' +
      'env: BENCH_DEPLOYS=5 BENCH_SWITCHES=20 BENCH_CONCURRENCY=4 BENCH_EDGES=builtin,nginx,haproxy\n',
  );
  const edges = (process.env.BENCH_EDGES || EDGE_KINDS.join(',')).split(',').map((s) => s.trim());
  for (const e of edges) {
    if (!(EDGE_KINDS as readonly string[]).includes(e)) {
      throw new Error(`BENCH_EDGES: unknown edge ${e} (expected some of ${EDGE_KINDS.join(',')})`);
    }
  }
  return {
    deploys: envNumber('BENCH_DEPLOYS', 5, 1, 50),
    switches: envNumber('BENCH_SWITCHES', 20, 2, 500),
    concurrency: envNumber('BENCH_CONCURRENCY', 4, 1, 64),
    edges: [...new Set(edges)] as EdgeKind[],
    json,
  };
}

function progress(message: string): void {
  process.stderr.write(`bench: ${message}\n`);
}

// --- cleanup: a stand-in for node:test's TestContext ------------------------------------------

/**
 * The helpers take a TestContext only to register teardown with `t.after(fn)` (temp folders,
 * servers, nginx, HAProxy, daemons, app processes). This collects those and runs them in
 * reverse order of registration: what was started last is stopped first.
 */
class Cleanups {
  private readonly fns: (() => unknown)[] = [];
  /** The run in progress: the signal handler and the failing body may both ask for one. */
  private running: Promise<string[]> | null = null;
  readonly t = { after: (fn: () => unknown): void => this.after(fn) } as unknown as TestContext;

  after(fn: () => unknown): void {
    this.fns.push(fn);
  }

  get pending(): boolean {
    return this.fns.length > 0;
  }

  /**
   * Runs every cleanup, even after one fails; returns the failures. A second call while one
   * runs waits for the same run, so that no caller goes on (or exits) while a cleanup it did not
   * wait for still stops processes.
   */
  run(): Promise<string[]> {
    this.running ??= (async (): Promise<string[]> => {
      const errors: string[] = [];
      for (let fn = this.fns.pop(); fn !== undefined; fn = this.fns.pop()) {
        try {
          await fn();
        } catch (err) {
          errors.push(err instanceof Error ? err.message : String(err));
        }
      }
      this.running = null;
      return errors;
    })();
    return this.running;
  }
}

const active = new Set<Cleanups>();
/** Set by SIGINT/SIGTERM: everything is being stopped, so failures that follow are expected. */
let interrupted = false;

function checkInterrupted(): void {
  if (interrupted) throw new Error('interrupted');
}

/** Runs `body` with a fresh cleanup scope, and the scope's cleanups after it, whatever happens. */
async function scoped<T>(body: (c: Cleanups) => Promise<T>): Promise<T> {
  checkInterrupted();
  const c = new Cleanups();
  active.add(c);
  const close = async (): Promise<string[]> => {
    const errors = await c.run();
    active.delete(c);
    return errors;
  };
  let result: T;
  try {
    result = await body(c);
  } catch (err) {
    const errors = await close();
    if (errors.length > 0) progress(`cleanup after the failure also failed:\n${errors.join('\n')}`);
    throw err;
  }
  const errors = await close();
  if (errors.length > 0 && !interrupted) throw new Error(`cleanup failed:\n${errors.join('\n')}`);
  return result;
}

// --- every process started, to check that none is left ----------------------------------------

interface Tracked {
  readonly pid: number;
  /** /proc/PID/stat starttime: tells a reused pid from ours. */
  readonly start: string;
  readonly what: string;
}

const tracked = new Map<number, Tracked>();
/** Strings in the command line of every process we start (temp folders, the app marker). */
const needles = new Set<string>();

/** Fields of /proc/PID/stat after the command name: [0] state, [19] starttime. */
function statFields(pid: number): string[] | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return text.slice(text.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

function track(pid: number | undefined, what: string): void {
  if (pid === undefined || tracked.has(pid)) return;
  const f = statFields(pid);
  if (f !== null && f[19] !== undefined) tracked.set(pid, { pid, start: f[19], what });
}

function running(p: Tracked): boolean {
  const f = statFields(p.pid);
  return f !== null && f[0] !== 'Z' && f[19] === p.start;
}

/** Processes of ours still running: tracked ones, and any whose command line names our files. */
function leftovers(): Tracked[] {
  const left = [...tracked.values()].filter(running);
  if (needles.size === 0) return left;
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (!/^\d+$/.test(name) || pid === process.pid || left.some((p) => p.pid === pid)) continue;
    let cmd: string;
    try {
      cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
    } catch {
      continue;
    }
    const f = statFields(pid);
    if (f === null || f[0] === 'Z' || f[19] === undefined) continue;
    if ([...needles].some((n) => cmd.includes(n))) left.push({ pid, start: f[19], what: cmd.trim() });
  }
  return left;
}

/** SIGKILLs (by pid) every process of ours still running; returns them. */
function killLeftovers(): Tracked[] {
  const left = leftovers();
  for (const p of left) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
  return left;
}

// --- the edges ----------------------------------------------------------------------------------

/** nginx or HAProxy started by the helper, its pids tracked now and whenever `sample()` is called. */
interface EdgeProcess {
  readonly edgeConfig: NginxProcess['edgeConfig'] | HaproxyProcess['edgeConfig'];
  readonly port: number;
  readonly sample: () => void;
}

async function startEdgeProcess(kind: 'nginx' | 'haproxy', c: Cleanups): Promise<EdgeProcess> {
  if (kind === 'nginx') {
    const n = await startNginx(c.t);
    needles.add(n.prefix);
    const sample = (): void => {
      track(n.pid, 'nginx master');
      for (const w of n.workers()) track(w.pid, 'nginx worker');
    };
    sample();
    // Workers started by reloads are tracked just before nginx stops (cleanups run in reverse).
    c.after(sample);
    return { edgeConfig: n.edgeConfig, port: n.port, sample };
  }
  const h = await startHaproxy(c.t);
  needles.add(path.dirname(h.cfgFile));
  const sample = (): void => {
    for (const pid of h.pids()) track(pid, 'haproxy');
  };
  sample();
  c.after(sample);
  return { edgeConfig: h.edgeConfig, port: h.port, sample };
}

/** An edge driven in process, as test/edge-suite.test.ts builds it. */
async function startEdge(
  kind: EdgeKind,
  c: Cleanups,
): Promise<{ edge: Edge; url: string; sample: () => void }> {
  if (kind === 'builtin') {
    const { proxy, url } = await startProxy(c.t, []);
    return { edge: new BuiltinEdge(proxy), url, sample: () => undefined };
  }
  const p = await startEdgeProcess(kind, c);
  const cfg = edgeSchema.parse(p.edgeConfig);
  let edge: Edge;
  if (cfg.type === 'nginx') edge = new NginxEdge(cfg, edgeOptions('web'));
  else if (cfg.type === 'haproxy') edge = new HaproxyEdge(cfg, edgeOptions('web'));
  else throw new Error(`${kind}: the helper's edge config parsed as ${cfg.type}`);
  await edge.start();
  c.after(() => edge.close());
  return { edge, url: `http://127.0.0.1:${p.port}`, sample: p.sample };
}

/** One GET on a new connection; throws unless the answer is `expected`. */
async function expectAnswer(url: string, expected: string, what: string): Promise<void> {
  const res = await request(url, {
    headers: { connection: 'close' },
    reset: true,
    headersTimeout: 5000,
    bodyTimeout: 5000,
  });
  const body = await res.body.text();
  if (res.statusCode !== 200 || body !== expected) {
    throw new Error(`${what}: a new request got ${res.statusCode} ${JSON.stringify(body)}, not ${expected}`);
  }
}

// --- 1. switch time -----------------------------------------------------------------------------

async function measureSwitches(kind: EdgeKind, settings: Settings): Promise<number[]> {
  return scoped(async (c) => {
    const { edge, url, sample } = await startEdge(kind, c);
    const [a, b] = await Promise.all([startBackend(c.t, 'a'), startBackend(c.t, 'b')]);
    await edge.apply([routeTo(a)], null); // warm-up: the first apply also brings the edge up
    await expectAnswer(url, 'a', `${kind} warm-up apply`);
    const times: number[] = [];
    for (let i = 0; i < settings.switches; i++) {
      checkInterrupted();
      const to = i % 2 === 0 ? b : a;
      const t0 = performance.now();
      await edge.apply([routeTo(to)], null);
      times.push(performance.now() - t0);
      sample();
      await expectAnswer(url, to.name, `${kind} apply #${i + 1} to ${to.name}`);
    }
    return times;
  });
}

// --- 2. deploys under load ---------------------------------------------------------------------

interface LoadFigures {
  /** Requests sent (a retried idle-closed GET counts once). */
  readonly requests: number;
  readonly ok: number;
  /** Errors and non-2xx answers, after at most one retry of an idle-closed keep-alive GET. */
  readonly failed: number;
  /** Keep-alive GETs whose idle connection the edge closed before any answer (retried once). */
  readonly idleCloses: number;
  /** Answers per body (the app answers its version). */
  readonly byBody: Record<string, number>;
  /** Up to 20 failure messages. */
  readonly failures: readonly string[];
}

interface DeployFigures {
  readonly deployMs: number[];
  readonly keepAlive: LoadFigures;
  readonly newConnection: LoadFigures;
}

const figures = (r: LoadResult): LoadFigures => ({
  requests: r.sent,
  ok: r.ok,
  failed: r.failed,
  idleCloses: r.idleCloses,
  byBody: Object.fromEntries([...r.byBody].map(([body, n]) => [body.trim(), n])),
  failures: r.failures,
});

async function measureDeploys(kind: EdgeKind, settings: Settings): Promise<DeployFigures> {
  return scoped(async (c) => {
    let edge: ServiceOptions['edge'];
    let sampleEdge = (): void => undefined;
    if (kind !== 'builtin') {
      const p = await startEdgeProcess(kind, c);
      edge = { lines: [`edge: ${JSON.stringify(p.edgeConfig)}`], url: `http://127.0.0.1:${p.port}` };
      sampleEdge = p.sample;
    }
    const svc = await Service.create(c.t, {
      readyTimeout: '10s',
      strategy: ['  type: blue-green', '  verify: 200ms', '  keepOld: 0s'],
      ...(edge ? { edge } : {}),
    });
    needles.add(svc.dir);
    needles.add(svc.marker);
    const sample = (): void => {
      sampleEdge();
      for (const d of svc.daemons) track(d.child.pid, 'baton up');
      for (const p of svc.processes()) track(p.pid, `app ${p.version}`);
    };
    // App processes started last are tracked just before the service's teardown kills them.
    c.after(sample);
    await svc.start();
    await svc.deployApi('1.0.0');
    sample();

    // Each load loop is bounded; the bound is far above what the deploys take.
    const maxMs = WARM_MS + settings.deploys * (DEPLOY_TIMEOUT_MS / 2 + HOLD_MS) + 10_000;
    const loadStart = Date.now();
    const common = { concurrency: settings.concurrency, maxMs };
    const keepAlive = startLoad(svc.url, { ...common, keepAlive: true, retryIdleClose: true });
    const newConnection = startLoad(svc.url, { ...common, keepAlive: false });
    let stopped: Promise<[LoadResult, LoadResult]> | null = null;
    const stopLoads = (): Promise<[LoadResult, LoadResult]> =>
      (stopped ??= Promise.all([keepAlive.stop(), newConnection.stop()]));
    c.after(stopLoads);

    await sleep(WARM_MS);
    const deployMs: number[] = [];
    for (let i = 1; i <= settings.deploys; i++) {
      checkInterrupted();
      const version = `1.0.${i}`;
      const t0 = performance.now();
      const run = await svc.deploy(version, [], DEPLOY_TIMEOUT_MS);
      deployMs.push(performance.now() - t0);
      sample();
      if (run.done?.result !== 'succeeded') {
        throw new Error(
          `${kind}: deploy ${version} did not succeed (exit ${run.code ?? run.signal}, ` +
            `${run.done?.result ?? 'no done event'}):\n${run.stdout}\n${run.stderr}`,
        );
      }
      progress(`${kind}: deploy ${version} succeeded in ${Math.round(deployMs.at(-1)!)} ms`);
      await sleep(HOLD_MS);
    }
    const [ka, nc] = await stopLoads();
    if (Date.now() - loadStart >= maxMs) {
      throw new Error(`${kind}: the load clients hit their ${maxMs} ms bound before the deploys ended`);
    }
    const last = `1.0.${settings.deploys}`;
    for (const [name, r] of [
      ['keep-alive', ka],
      ['new-connection', nc],
    ] as const) {
      if (!r.byBody.has(`${last}\n`)) {
        throw new Error(
          `${kind}: the ${name} client never got an answer from ${last}: ${JSON.stringify([...r.byBody.keys()])}`,
        );
      }
    }
    return { deployMs, keepAlive: figures(ka), newConnection: figures(nc) };
  });
}

// --- output -------------------------------------------------------------------------------------

interface EdgeResult {
  readonly edge: EdgeKind;
  readonly switchMs: { readonly median: number; readonly p90: number; readonly all: readonly number[] };
  readonly deploys: number;
  readonly deployMs: { readonly median: number; readonly all: readonly number[] };
  readonly keepAlive: LoadFigures;
  readonly newConnection: LoadFigures;
}

function quantile(values: readonly number[], q: number): number {
  const v = [...values].sort((a, b) => a - b);
  // Nearest rank: the smallest value with at least q of the values at or below it.
  return v[Math.max(0, Math.ceil(q * v.length) - 1)] ?? NaN;
}

function median(values: readonly number[]): number {
  const v = [...values].sort((a, b) => a - b);
  const mid = Math.floor(v.length / 2);
  return v.length % 2 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
}

const LABEL: Record<EdgeKind, string> = {
  builtin: 'built-in proxy',
  nginx: 'nginx',
  haproxy: 'HAProxy',
};

const msText = (n: number): string => (n < 10 ? n.toFixed(2) : n < 100 ? n.toFixed(1) : n.toFixed(0));

interface Environment {
  readonly baton: string;
  readonly nginx: string;
  readonly haproxy: string;
  readonly node: string;
  readonly cpus: number;
  readonly loadAvg: readonly number[];
}

function report(env: Environment, settings: Settings, results: readonly EdgeResult[]): string {
  const header = [
    'edge',
    'deploys',
    'keep-alive requests',
    'keep-alive failed',
    'keep-alive idle closes',
    'new-connection requests',
    'new-connection failed',
    'switch time median / p90 (ms)',
  ];
  const rows = results.map((r) => [
    LABEL[r.edge],
    String(r.deploys),
    String(r.keepAlive.requests),
    String(r.keepAlive.failed),
    String(r.keepAlive.idleCloses),
    String(r.newConnection.requests),
    String(r.newConnection.failed),
    `${msText(r.switchMs.median)} / ${msText(r.switchMs.p90)}`,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: readonly string[]): string =>
    `| ${cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (i === 0 ? `-${'-'.repeat(w)}-` : `${'-'.repeat(w + 1)}:`)).join('|')}|`;
  const failures = results.flatMap((r) =>
    (['keepAlive', 'newConnection'] as const).flatMap((k) =>
      r[k].failures.slice(0, 5).map((f) => `- ${LABEL[r.edge]}, ${k}: ${f}`),
    ),
  );
  return [
    `Baton ${env.baton} edges: built-in proxy, ${env.nginx} (2 workers), HAProxy ${env.haproxy} ` +
      `(master-worker); node ${env.node}, ${env.cpus} CPUs, load average at start ` +
      `${env.loadAvg.map((l) => l.toFixed(2)).join(' ')}; everything on 127.0.0.1.`,
    `Deploys: \`baton up\` (dist/) with the example app, 2 instances, blue-green (verify 200ms, ` +
      `keepOld 0s), ${settings.deploys} \`baton deploy\` in a row after 1.0.0, under two GET clients ` +
      `of ${settings.concurrency} workers each through the edge (${HOLD_MS} ms between deploys).`,
    `Switch time: in-process edge.apply() to one backend, then the other, ${settings.switches} times ` +
      `after a warm-up apply (apply resolves once new requests reach the new backend).`,
    '',
    line(header),
    rule,
    ...rows.map(line),
    '',
    '- keep-alive failed: requests that failed even after one retry on a new connection of a GET',
    '  whose idle keep-alive connection the edge closed before answering (as browsers do).',
    '- keep-alive idle closes: those retried GETs; a client that does not retry (a naive one)',
    '  sees failed + idle closes.',
    '- new-connection: every request on its own connection (`Connection: close`).',
    `- deploy duration median (\`baton deploy\`, CLI start included): ${results
      .map((r) => `${LABEL[r.edge]} ${Math.round(r.deployMs.median)} ms`)
      .join(', ')}.`,
    ...(failures.length > 0 ? ['', 'Failures (first 5 per client):', ...failures] : []),
  ].join('\n');
}

// --- main ---------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const settings = readSettings(process.argv.slice(2));
  const needs: [string | undefined, string, string][] = [
    [path.join(ROOT, 'dist/cli/main.js'), 'dist/cli/main.js', 'npm run build'],
  ];
  if (settings.edges.includes('nginx')) needs.push([NGINX, NGINX, 'apt-get install nginx']);
  if (settings.edges.includes('haproxy')) needs.push([HAPROXY, 'haproxy', 'apt-get install haproxy']);
  for (const [file, name, why] of needs) {
    if (file === undefined || !existsSync(file)) throw new Error(`${name} is missing (${why})`);
  }
  const env: Environment = {
    baton: (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version,
    nginx: /nginx\/[\d.]+/.exec(spawnSync(NGINX, ['-v'], { encoding: 'utf8' }).stderr ?? '')?.[0] ?? 'nginx',
    haproxy:
      HAPROXY === undefined
        ? '-'
        : (/HAProxy version (\S+)/.exec(spawnSync(HAPROXY, ['-v'], { encoding: 'utf8' }).stdout ?? '')?.[1] ??
          '?'),
    node: process.version,
    cpus: os.cpus().length,
    loadAvg: os.loadavg(),
  };

  const onSignal = (sig: NodeJS.Signals): void => {
    if (interrupted) return;
    interrupted = true;
    progress(`${sig}: stopping everything`);
    void (async (): Promise<void> => {
      // The body may still register a cleanup (a start under way): run until nothing is left.
      for (let i = 0; i < 20 && (i === 0 || [...active].some((c) => c.pending)); i++) {
        await Promise.all([...active].map((c) => c.run()));
        await sleep(50);
      }
      killLeftovers();
    })().finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const results: EdgeResult[] = [];
  try {
    for (const kind of settings.edges) {
      progress(`${kind}: ${settings.switches} switches (in-process apply)`);
      const switches = await measureSwitches(kind, settings);
      progress(
        `${kind}: switch median ${msText(median(switches))} ms, p90 ${msText(quantile(switches, 0.9))} ms`,
      );
      progress(`${kind}: ${settings.deploys} blue-green deploys under load (baton up)`);
      const d = await measureDeploys(kind, settings);
      results.push({
        edge: kind,
        switchMs: { median: median(switches), p90: quantile(switches, 0.9), all: switches },
        deploys: d.deployMs.length,
        deployMs: { median: median(d.deployMs), all: d.deployMs },
        keepAlive: d.keepAlive,
        newConnection: d.newConnection,
      });
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await Promise.all([...active].map((c) => c.run()));
  }

  // The helpers' stop functions wait for their processes; check that none is left anyway.
  const left = killLeftovers();
  if (left.length > 0) {
    throw new Error(
      `processes left running after the cleanup (now killed):\n${left.map((p) => `  ${p.pid} ${p.what}`).join('\n')}`,
    );
  }
  progress(`all ${tracked.size} processes started (nginx, HAProxy, baton up, app instances) are gone`);

  if (settings.json) {
    process.stdout.write(
      `${JSON.stringify(
        {
          settings,
          environment: env,
          measured: {
            switchMs:
              'in-process edge.apply() durations, alternating between two backends after a warm-up apply; ' +
              'median and nearest-rank p90, ms',
            deploys:
              'baton up + example app, 2 instances, blue-green verify 200ms keepOld 0s; baton deploy N times; ' +
              'two startLoad GET clients through the edge during the deploys',
            keepAlive:
              'keep-alive connections; failed = failures after one retry of an idle-closed GET; ' +
              'idleCloses = those retries (a client without the retry sees failed + idleCloses)',
            newConnection: 'one request per connection (Connection: close)',
          },
          results,
          processesChecked: tracked.size,
        },
        null,
        2,
      )}\n`,
    );
  } else {
    process.stdout.write(`${report(env, settings, results)}\n`);
  }
}

main().catch((err: unknown) => {
  if (interrupted) return;
  process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
