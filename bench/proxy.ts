// Proxy benchmark for issue 16's goals: Baton (one process) >= 0.7x nginx (one worker) in
// requests/s and <= 1.5x its CPU per request; p99 overhead at half of Baton's own peak within
// 1 ms of nginx's (p99.9 shown too); with 2 processes each, >= 0.7x; RSS flat within 10% over a
// soak. In one run it starts a fast backend (bench/backend.ts), Baton's real build
// (`node bin/baton.js up -c <temp config>`) and nginx (/usr/sbin/nginx, own config: 1 worker,
// upstream keepalive 64) in front of it, all on 127.0.0.1 with free ports, and loads each with
// the same wrk (-t1, --latency, a done() hook for p99.9):
//   1. peak: closed loop, as fast as the connections go, after a warm-up per system;
//   2. paced at half of nginx's peak rate, offered to all three (a wrk delay() script holds the
//      rate; wrk, not wrk2, so latency is timed from the request write and stalls are omitted);
//   3. paced at half of Baton's own peak, so overhead is comparable when Baton saturates in 2.
//   4. HTTPS at peak: Baton and nginx each terminating TLS, same certificate and cipher suite
//      (bench/proxy-tls.ts), closed loop as in 1.
//   5. 2 processes each: Baton's data plane with proxy.workers: 2 vs nginx worker_processes 2
//      (bench/proxy-phases.ts), and Baton's RSS before and after; with BENCH_SOAK=S, Baton paced
//      at half its peak for S seconds with its RSS sampled (the goal's 5 minutes: 300).
// It prints a table with Baton/nginx ratios and proxy overhead (proxy p99 - direct p99), or
// JSON with --json. Every process it starts is stopped on exit, error or SIGINT/SIGTERM.
//
//   npm run bench:proxy [-- --json]
//
// Environment (all optional): BENCH_DURATION seconds per measured run (default 8),
// BENCH_WARMUP seconds of warm-up before each peak run (5; V8 needs a few seconds to optimise
// Baton's hot path), BENCH_CONNECTIONS (50), BENCH_ROUNDS (1; with more, each figure is the
// median over rounds), BENCH_BACKEND raw|http (bench/backend.ts mode, default raw), BENCH_SOAK
// seconds of the RSS soak (0: none).
// Progress goes to stderr, results to stdout.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import net, { type AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { batonTlsLines, makeBenchCert, negotiated, nginxTlsLines, type BenchCert } from './proxy-tls.js';
import { envNumber, readJsonFlag } from './settings.js';
import { rssKiB, runSoak, runWorkersPhase, type PhaseDeps } from './proxy-phases.js';
import {
  BASES,
  median,
  ORDER,
  report,
  summarize,
  WORKERS,
  type Context,
  type HttpsPeak,
  type Memory,
  type PacedPhase,
  type Results,
  type Round,
  type Settings,
  type SystemName,
  type WrkResult,
} from './proxy-report.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BATON_BIN = path.join(ROOT, 'bin/baton.js');
const BACKEND_TS = path.join(ROOT, 'bench/backend.ts');
const NGINX = '/usr/sbin/nginx';
const WRK = '/usr/bin/wrk';
const EXPECTED_BODY = 'hello, world\n';

// --- settings ---------------------------------------------------------------------------------

function readSettings(argv: readonly string[]): Settings {
  const json = readJsonFlag(
    argv,
    'usage: npm run bench:proxy [-- --json]\n' +
      'env: BENCH_DURATION=8 BENCH_WARMUP=5 BENCH_CONNECTIONS=50 BENCH_ROUNDS=1 BENCH_BACKEND=raw|http BENCH_SOAK=0\n',
  );
  const backend = process.env.BENCH_BACKEND ?? 'raw';
  if (backend !== 'raw' && backend !== 'http') {
    throw new Error(`BENCH_BACKEND=${backend}: expected raw or http`);
  }
  return {
    durationS: envNumber('BENCH_DURATION', 8, 1, 300),
    warmupS: envNumber('BENCH_WARMUP', 5, 0, 60),
    connections: envNumber('BENCH_CONNECTIONS', 50, 1, 1000),
    rounds: envNumber('BENCH_ROUNDS', 1, 1, 10),
    backend,
    json,
    soakS: envNumber('BENCH_SOAK', 0, 0, 3600),
  };
}

function progress(message: string): void {
  process.stderr.write(`bench: ${message}\n`);
}

// --- child processes (every one is tracked and stopped on exit) ------------------------------

interface Child {
  readonly name: string;
  readonly proc: ChildProcess;
  /** Started in its own process group (nginx: master and worker are stopped together). */
  readonly group: boolean;
  /** The last few KB of stderr, for error messages. */
  stderrTail: string;
}

const children = new Set<Child>();
/** Set by SIGINT/SIGTERM: everything is being stopped, so failures that follow are expected. */
let interrupted = false;

function start(
  name: string,
  command: string,
  args: readonly string[],
  opts: { group?: boolean } = {},
): Child {
  const group = opts.group ?? false;
  const proc = spawn(command, args, { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'], detached: group });
  const child: Child = { name, proc, group, stderrTail: '' };
  children.add(child);
  proc.stderr?.setEncoding('utf8');
  proc.stderr?.on('data', (s: string) => {
    child.stderrTail = (child.stderrTail + s).slice(-4000);
  });
  // A group stays listed after its leader exits: `stop` checks for members left behind.
  proc.on('exit', () => {
    if (!group) children.delete(child);
  });
  proc.on('error', (err) => {
    child.stderrTail += `\n${err.message}`;
  });
  return child;
}

function alive(c: Child): boolean {
  return c.proc.exitCode === null && c.proc.signalCode === null && c.proc.pid !== undefined;
}

function signal(c: Child, sig: NodeJS.Signals): void {
  const pid = c.proc.pid;
  if (pid === undefined) return;
  try {
    if (c.group) process.kill(-pid, sig);
    else c.proc.kill(sig);
  } catch {
    // Already gone.
  }
}

function exited(c: Child, timeoutMs: number): Promise<boolean> {
  if (!alive(c)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    c.proc.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/** SIGTERM, then SIGKILL after a short grace; for a process group, the whole group. */
async function stop(c: Child): Promise<void> {
  if (alive(c)) {
    signal(c, 'SIGTERM');
    if (!(await exited(c, 3000))) {
      signal(c, 'SIGKILL');
      await exited(c, 2000);
    }
  }
  // An nginx worker that outlived its master. The group id is ours for sure only while the group
  // still has members (Linux does not reuse the id of a live process group), so check first.
  if (c.group && c.proc.pid !== undefined && groupHasMembers(c.proc.pid)) {
    signal(c, 'SIGKILL');
    await delay(100);
  }
  c.proc.stdin?.destroy();
  children.delete(c);
}

async function stopAll(): Promise<void> {
  await Promise.all([...children].map(stop));
}

/** Resolves with the first stdout line `pick` accepts; rejects if the child exits first. */
function waitForLine<T>(c: Child, pick: (line: string) => T | undefined, timeoutMs: number): Promise<T> {
  const stdout = c.proc.stdout;
  if (stdout === null) return Promise.reject(new Error(`${c.name}: no stdout`));
  const lines = readline.createInterface({ input: stdout });
  return new Promise<T>((resolve, reject) => {
    const finish = (err: Error | null, value?: T): void => {
      clearTimeout(timer);
      lines.off('line', onLine);
      c.proc.off('exit', onExit);
      // Keep draining stdout so the child never blocks on a full pipe.
      if (err !== null) reject(err);
      else resolve(value as T);
    };
    const onLine = (line: string): void => {
      const v = pick(line);
      if (v !== undefined) finish(null, v);
    };
    const onExit = (code: number | null, sig: NodeJS.Signals | null): void => {
      finish(new Error(`${c.name} exited (${sig ?? code}) before it was ready:\n${c.stderrTail.trim()}`));
    };
    const timer = setTimeout(
      () => finish(new Error(`${c.name} not ready after ${timeoutMs} ms:\n${c.stderrTail.trim()}`)),
      timeoutMs,
    );
    lines.on('line', onLine);
    c.proc.once('exit', onExit);
  });
}

// --- the three systems under test -------------------------------------------------------------

interface System {
  readonly name: 'direct' | 'nginx' | 'baton';
  readonly url: string;
  /** Processes whose CPU time is the system's own (the backend's is reported separately). */
  readonly cpuPids: () => number[];
}

async function startBackend(mode: Settings['backend']): Promise<{ child: Child; port: number }> {
  const child = start('backend', process.execPath, ['--import', 'tsx', BACKEND_TS, mode]);
  const port = await waitForLine(child, (line) => portFromJson(line), 15_000);
  return { child, port };
}

function portFromJson(line: string): number | undefined {
  try {
    const v: unknown = JSON.parse(line);
    if (typeof v === 'object' && v !== null && 'port' in v && typeof v.port === 'number') return v.port;
  } catch {
    // Not a JSON line.
  }
  return undefined;
}

async function startBaton(
  dir: string,
  backendPort: number,
  tls?: BenchCert,
): Promise<{ child: Child; port: number }> {
  const config = path.join(dir, 'baton.yaml');
  await writeFile(
    config,
    [
      'service: bench',
      'listen: 127.0.0.1:0',
      `stateDir: ${path.join(dir, 'baton-state')}`,
      'targets:',
      `  - { address: 127.0.0.1:${backendPort} }`,
      'proxy:',
      '  drainTimeout: 1s',
      // BENCH_ENGINE=node: proxy.engine node (node:http and undici); raw, the default, otherwise.
      `  engine: ${process.env.BENCH_ENGINE === 'node' ? 'node' : 'raw'}`,
      ...(tls ? batonTlsLines(tls) : []),
      '',
    ].join('\n'),
  );
  const child = start(tls ? 'baton-https' : 'baton', process.execPath, [BATON_BIN, 'up', '-c', config]);
  const port = await waitForLine(
    child,
    (line) => {
      try {
        const v: unknown = JSON.parse(line);
        if (typeof v !== 'object' || v === null || !('msg' in v) || v.msg !== 'proxy listening') return;
        if (!('listen' in v) || typeof v.listen !== 'string') return;
        const m = /:(\d+)$/.exec(v.listen);
        return m ? Number(m[1]) : undefined;
      } catch {
        return undefined;
      }
    },
    15_000,
  );
  return { child, port };
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function startNginx(
  dir: string,
  backendPort: number,
  tls?: BenchCert,
  workers = 1,
): Promise<{ child: Child; port: number }> {
  const port = await freePort();
  const conf = path.join(dir, 'nginx.conf');
  const runningAsRoot = process.getuid?.() === 0;
  await writeFile(
    conf,
    `# Written by bench/proxy.ts; deleted after the run.
${runningAsRoot ? 'user root root;  # the default nobody:nobody group does not exist on Debian\n' : ''}daemon off;
master_process on;
worker_processes ${workers};
pid ${dir}/nginx.pid;
error_log ${dir}/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/nginx-client-body;
  proxy_temp_path ${dir}/nginx-proxy;
  fastcgi_temp_path ${dir}/nginx-fastcgi;
  uwsgi_temp_path ${dir}/nginx-uwsgi;
  scgi_temp_path ${dir}/nginx-scgi;
  upstream backend {
    server 127.0.0.1:${backendPort};
    keepalive 64;
  }
  server {
    listen 127.0.0.1:${port}${tls ? ' ssl' : ''};
${tls ? nginxTlsLines(tls) : ''}    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`,
  );
  const child = start(
    tls ? 'nginx-https' : 'nginx',
    NGINX,
    ['-p', dir, '-c', conf, '-e', path.join(dir, 'nginx-error.log')],
    {
      group: true,
    },
  );
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (!alive(child)) {
      let log = '';
      try {
        log = readFileSync(path.join(dir, 'nginx-error.log'), 'utf8');
      } catch {
        // No log written.
      }
      throw new Error(`nginx exited before it was ready:\n${child.stderrTail}${log}`.trim());
    }
    if ((await get(port, tls !== undefined).catch(() => null)) !== null) break;
    if (Date.now() > deadline) throw new Error(`nginx not answering on 127.0.0.1:${port} after 10 s`);
    await delay(50);
  }
  return { child, port };
}

/** GET / once (over TLS, any certificate, when `secure`); resolves with status and body. */
function get(port: number, secure = false): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const options = {
      host: '127.0.0.1',
      port,
      path: '/',
      agent: false,
      timeout: 2000,
      rejectUnauthorized: false,
    };
    const req = (secure ? https : http).get(options, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (s: string) => (body += s));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
  });
}

// --- CPU accounting from /proc ----------------------------------------------------------------

const CLK_TCK = ((): number => {
  const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  const n = Number(r.stdout);
  return Number.isInteger(n) && n > 0 ? n : 100;
})();

/** Fields of /proc/PID/stat after the command name: [0] state, [1] ppid, [2] pgrp, [11] utime, [12] stime. */
function statFields(pid: number): string[] | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return text.slice(text.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

function cpuTicks(pids: readonly number[]): number {
  let sum = 0;
  for (const pid of pids) {
    const f = statFields(pid);
    if (f !== null) sum += Number(f[11] ?? 0) + Number(f[12] ?? 0);
  }
  return sum;
}

function groupHasMembers(pgid: number): boolean {
  return readdirSync('/proc').some((e) => /^\d+$/.test(e) && statFields(Number(e))?.[2] === String(pgid));
}

/** A process and its direct children (nginx's master and worker). */
function withChildren(pid: number): number[] {
  const out = [pid];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    if (statFields(Number(entry))?.[1] === String(pid)) out.push(Number(entry));
  }
  return out;
}

// --- wrk --------------------------------------------------------------------------------------

const UNIT_MS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

function parseTime(text: string): number {
  const m = /^([\d.]+)(us|ms|s|m|h)$/.exec(text);
  if (!m) throw new Error(`cannot read wrk time "${text}"`);
  return Number(m[1]) * (UNIT_MS[m[2]!] ?? NaN);
}

function parseWrk(out: string): Omit<WrkResult, 'cpuPct' | 'backendCpuPct' | 'cpuUsPerReq'> {
  const p999 = /^p999_us (\d+)/m.exec(out);
  const rps = /^Requests\/sec:\s+([\d.]+)/m.exec(out);
  const p50 = /^\s+50%\s+(\S+)/m.exec(out);
  const p99 = /^\s+99%\s+(\S+)/m.exec(out);
  const requests = /^\s+(\d+) requests in/m.exec(out);
  if (!rps || !p50 || !p99 || !requests) throw new Error(`cannot read wrk output:\n${out}`);
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out);
  const errors =
    (socket ? socket.slice(1).reduce((a, b) => a + Number(b), 0) : 0) + (non2xx ? Number(non2xx[1]) : 0);
  return {
    rps: Number(rps[1]),
    p50Ms: parseTime(p50[1]!),
    p99Ms: parseTime(p99[1]!),
    p999Ms: p999 ? Number(p999[1]) / 1000 : NaN,
    requests: Number(requests[1]),
    errors,
  };
}

/**
 * Paces wrk at a fixed total rate: each call to delay() (once before every request, on any
 * connection) claims the next free send slot on a 1/rate grid. wrk's timers have 1 ms
 * resolution, so sends are grouped per millisecond, but the average rate is exact as long as
 * some connection is idle when its slot comes (else the run is saturated: achieved < target).
 * wrk measures latency from the moment a request is written, so the delay is not included.
 */
const PACE_LUA = `-- Written by bench/proxy.ts.
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clock, bench_timespec *ts);
]]
local ts = ffi.new("bench_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end
local interval = 1
local next_slot = nil
function init(args)
  interval = 1000 / tonumber(args[1])
end
function delay()
  local now = now_ms()
  -- Slots missed while every connection was busy are skipped, not sent in a burst.
  if next_slot == nil or next_slot < now then next_slot = now end
  local slot = next_slot
  next_slot = next_slot + interval
  return math.floor(slot - now)
end
`;

/** Prints p99.9 at the end of a run (appended to every script wrk runs). */
const DONE_LUA = `
function done(summary, latency, requests)
  io.write(string.format("p999_us %d\\n", latency:percentile(99.9)))
end
`;
/** The scripts of the closed-loop and the paced runs: set in main(). */
let doneScript = '';
let pacedScript = '';

async function runWrk(
  system: System,
  backendPid: number,
  durationS: number,
  connections: number,
  pace: { script: string; rate: number } | null,
): Promise<WrkResult> {
  const args = ['-t1', `-c${connections}`, `-d${durationS}s`, '--latency', '--timeout', '2s'];
  args.push('-s', pace !== null ? pace.script : doneScript);
  args.push(system.url);
  if (pace !== null) args.push('--', String(Math.round(pace.rate)));
  const pids = system.cpuPids();
  const before = { sys: cpuTicks(pids), backend: cpuTicks([backendPid]), at: performance.now() };
  const wrk = start('wrk', WRK, args);
  let out = '';
  wrk.proc.stdout?.setEncoding('utf8');
  wrk.proc.stdout?.on('data', (s: string) => (out += s));
  const finished = await exited(wrk, (durationS + 20) * 1000);
  if (!finished) {
    await stop(wrk);
    throw new Error(`wrk did not finish within ${durationS + 20} s`);
  }
  const wallS = (performance.now() - before.at) / 1000;
  if (wrk.proc.exitCode !== 0) {
    throw new Error(`wrk failed (${wrk.proc.signalCode ?? wrk.proc.exitCode}): ${wrk.stderrTail}${out}`);
  }
  const pct = (ticks: number): number => Math.round((ticks / CLK_TCK / wallS) * 100);
  const parsed = parseWrk(out);
  const sysTicks = cpuTicks(pids) - before.sys;
  return {
    ...parsed,
    cpuPct: pids.length ? pct(sysTicks) : null,
    backendCpuPct: pct(cpuTicks([backendPid]) - before.backend),
    cpuUsPerReq: pids.length && parsed.requests > 0 ? (sysTicks / CLK_TCK / parsed.requests) * 1e6 : null,
  };
}

// --- the run ----------------------------------------------------------------------------------

async function runRound(
  settings: Settings,
  systems: Record<SystemName, System>,
  backendPid: number,
  script: string,
  index: number,
): Promise<Round> {
  const { durationS, connections } = settings;
  const peak = {} as Results;
  for (const name of ORDER) {
    const s = systems[name];
    if (settings.warmupS > 0) await runWrk(s, backendPid, settings.warmupS, connections, null);
    progress(`round ${index}: ${name} at peak, ${durationS} s`);
    peak[name] = await runWrk(s, backendPid, durationS, connections, null);
  }
  const paced: PacedPhase[] = [];
  for (const basis of BASES) {
    const rate = Math.max(1, Math.round(peak[basis].rps / 2));
    const results = {} as Results;
    for (const name of ORDER) {
      progress(`round ${index}: ${name} paced at ${rate} req/s (half ${basis} peak), ${durationS} s`);
      results[name] = await runWrk(systems[name], backendPid, durationS, connections, { script, rate });
    }
    paced.push({ basis, rate, results });
  }
  return { peak, paced };
}

async function runHttps(
  settings: Settings,
  dir: string,
  backendPort: number,
  backendPid: number,
): Promise<HttpsPeak> {
  const tlsDir = path.join(dir, 'https');
  await mkdir(tlsDir);
  const cert = makeBenchCert(tlsDir);
  const [batonStart, nginxStart] = await Promise.allSettled([
    startBaton(tlsDir, backendPort, cert),
    startNginx(tlsDir, backendPort, cert),
  ]);
  if (batonStart.status === 'rejected') throw batonStart.reason;
  if (nginxStart.status === 'rejected') throw nginxStart.reason;
  const baton = batonStart.value;
  const nginx = nginxStart.value;
  try {
    const suites = await Promise.all([negotiated(baton.port), negotiated(nginx.port)]);
    if (suites[0] !== suites[1]) throw new Error(`not the same TLS: Baton ${suites[0]}, nginx ${suites[1]}`);
    const systems = {
      nginx: {
        name: 'nginx',
        url: `https://127.0.0.1:${nginx.port}/`,
        cpuPids: () => withChildren(nginx.child.proc.pid!),
      },
      baton: {
        name: 'baton',
        url: `https://127.0.0.1:${baton.port}/`,
        cpuPids: () => [baton.child.proc.pid!],
      },
    } as const;
    const out: Partial<Record<'nginx' | 'baton', WrkResult>> = {};
    for (const name of ['nginx', 'baton'] as const) {
      const r = await get(Number(new URL(systems[name].url).port), true);
      if (r.status !== 200 || r.body !== EXPECTED_BODY)
        throw new Error(`${name} over HTTPS answered ${r.status}`);
      if (settings.warmupS > 0)
        await runWrk(systems[name], backendPid, settings.warmupS, settings.connections, null);
      progress(`https: ${name} at peak (${suites[0]}), ${settings.durationS} s`);
      out[name] = await runWrk(systems[name], backendPid, settings.durationS, settings.connections, null);
    }
    const { nginx: n, baton: b } = out as Record<'nginx' | 'baton', WrkResult>;
    return {
      negotiated: suites[0],
      nginx: n,
      baton: b,
      rpsRatio: b.rps / n.rps,
      cpuPerReqRatio: (b.cpuUsPerReq ?? NaN) / (n.cpuUsPerReq ?? NaN),
    };
  } finally {
    await Promise.all([stop(baton.child), stop(nginx.child)]);
  }
}

/** bench/proxy-phases.ts's view of the helpers here. */
function phaseDeps(settings: Settings, backendPid: number): PhaseDeps<WrkResult> {
  return {
    root: ROOT,
    batonBin: BATON_BIN,
    backendTs: BACKEND_TS,
    backendMode: settings.backend,
    start: (name, command, args) => start(name, command, args),
    stop: (c) => stop(c as Child),
    exited: (c, timeoutMs) => exited(c as Child, timeoutMs),
    startNginx: async (d, port, workers) => {
      await mkdir(d, { recursive: true });
      return startNginx(d, port, undefined, workers);
    },
    freePort,
    withChildren,
    runWrk: (system, durationS, pace) =>
      runWrk(
        system,
        backendPid,
        durationS,
        settings.connections,
        pace ? { script: pacedScript, rate: pace.rate } : null,
      ),
    progress,
  };
}

// --- main -------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const settings = readSettings(process.argv.slice(2));
  for (const [file, why] of [
    [WRK, 'apt-get install wrk'],
    [NGINX, 'apt-get install nginx'],
    [path.join(ROOT, 'dist/cli/main.js'), 'npm run build'],
  ] as const) {
    if (!existsSync(file)) throw new Error(`${file} is missing (${why})`);
  }
  const ctx: Context = {
    settings,
    nginxVersion: /nginx\/[\d.]+/.exec(spawnSync(NGINX, ['-v'], { encoding: 'utf8' }).stderr)?.[0] ?? 'nginx',
    batonVersion: (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string })
      .version,
    loadAvg: os.loadavg(),
  };

  const dir = await mkdtemp(path.join(os.tmpdir(), 'baton-bench-'));
  const onSignal = (sig: NodeJS.Signals): void => {
    if (interrupted) return;
    interrupted = true;
    progress(`${sig}: stopping everything`);
    void stopAll()
      .then(() => rm(dir, { recursive: true, force: true }))
      .finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const backend = await startBackend(settings.backend);
    const backendPid = backend.child.proc.pid!;
    // allSettled, not all: a failure of one must not let the other start after the cleanup.
    const [batonStart, nginxStart] = await Promise.allSettled([
      startBaton(dir, backend.port),
      startNginx(dir, backend.port),
    ]);
    if (batonStart.status === 'rejected') throw batonStart.reason;
    if (nginxStart.status === 'rejected') throw nginxStart.reason;
    const baton = batonStart.value;
    const nginx = nginxStart.value;
    const systems: Record<SystemName, System> = {
      direct: { name: 'direct', url: `http://127.0.0.1:${backend.port}/`, cpuPids: () => [] },
      nginx: {
        name: 'nginx',
        url: `http://127.0.0.1:${nginx.port}/`,
        cpuPids: () => withChildren(nginx.child.proc.pid!),
      },
      baton: {
        name: 'baton',
        url: `http://127.0.0.1:${baton.port}/`,
        cpuPids: () => [baton.child.proc.pid!],
      },
    };
    for (const s of Object.values(systems)) {
      const r = await get(Number(new URL(s.url).port));
      if (r.status !== 200 || r.body !== EXPECTED_BODY) {
        throw new Error(`${s.name} answered ${r.status} ${JSON.stringify(r.body)}, not the backend's body`);
      }
    }
    const script = path.join(dir, 'pace.lua');
    await writeFile(script, PACE_LUA + DONE_LUA);
    pacedScript = script;
    doneScript = path.join(dir, 'done.lua');
    await writeFile(doneScript, DONE_LUA);
    const batonPid = baton.child.proc.pid!;
    const rssBefore = rssKiB(batonPid);
    progress(
      `backend :${backend.port}, nginx :${nginx.port}, baton :${baton.port}; ` +
        `about ${settings.rounds * (3 * (settings.warmupS + 3 * settings.durationS) + 2) + 2 * (settings.warmupS + settings.durationS)} s`,
    );

    const rounds: Round[] = [];
    for (let i = 1; i <= settings.rounds; i++) {
      rounds.push(await runRound(settings, systems, backendPid, script, i));
    }
    const rssAfter = rssKiB(batonPid);
    const halfBatonRate = median(rounds.map((r) => r.peak.baton.rps)) / 2;
    const soak =
      settings.soakS > 0
        ? await runSoak(
            phaseDeps(settings, backendPid),
            systems.baton,
            batonPid,
            settings.soakS,
            halfBatonRate,
          )
        : null;
    const httpsPeak = await runHttps(settings, dir, backend.port, backendPid);
    const workers = await runWorkersPhase(phaseDeps(settings, backendPid), dir, settings, WORKERS);
    const summary = summarize(rounds, workers, soak);
    const memory: Memory = { beforeKiB: rssBefore, afterKiB: rssAfter, soak };
    if (settings.json) {
      process.stdout.write(
        `${JSON.stringify(
          {
            settings,
            environment: {
              node: process.version,
              nginx: ctx.nginxVersion,
              baton: ctx.batonVersion,
              cpus: os.cpus().length,
              loadAvg: ctx.loadAvg,
            },
            measured: {
              peak: `wrk -t1 -c${settings.connections} -d${settings.durationS}s --latency, closed loop, after warm-up`,
              paced:
                'same wrk settings; a delay() script holds the total offered rate at half of nginx peak ' +
                '(paced[0]) and half of Baton peak (paced[1]); latency timed from request write',
              units: 'rps req/s; p50Ms/p99Ms ms; cpuPct % of one core; cpuUsPerReq microseconds',
            },
            summary,
            rounds,
            https: httpsPeak,
            workers,
            memory,
          },
          null,
          2,
        )}\n`,
      );
    } else {
      process.stdout.write(`${report(ctx, summary, rounds, httpsPeak, workers, memory)}\n`);
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await stopAll();
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  if (interrupted) return;
  process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
