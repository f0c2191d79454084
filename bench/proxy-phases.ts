// Two phases of bench/proxy.ts beyond one process against one nginx worker:
//   - workers: Baton's data plane with `proxy.workers: 2` (an app of one instance, the same tiny
//     backend, run by Baton) against nginx with `worker_processes 2` in front of that instance;
//   - soak (BENCH_SOAK seconds, off by default): Baton paced at half its own peak for that long,
//     its resident memory sampled every few seconds, to show it stays flat.
// bench/proxy.ts passes in its process and wrk helpers; every process started here is stopped.
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { askDataPlane } from '../src/dataplane/connect.js';
import { dataPlanePaths } from '../src/dataplane/paths.js';

/** What bench/proxy.ts's helpers look like from here (structural, to avoid an import cycle). */
export interface PhaseChild {
  readonly proc: { readonly pid?: number | undefined; readonly exitCode: number | null };
  stderrTail: string;
}
export interface PhaseSystem {
  readonly name: 'direct' | 'nginx' | 'baton';
  readonly url: string;
  readonly cpuPids: () => number[];
}
export interface PhaseResult {
  readonly rps: number;
  readonly p99Ms: number;
  readonly cpuUsPerReq: number | null;
  readonly errors: number;
}

export interface PhaseDeps<R extends PhaseResult> {
  readonly root: string;
  readonly batonBin: string;
  readonly backendTs: string;
  readonly backendMode: string;
  start(name: string, command: string, args: readonly string[]): PhaseChild;
  stop(c: PhaseChild): Promise<void>;
  exited(c: PhaseChild, timeoutMs: number): Promise<boolean>;
  startNginx(dir: string, backendPort: number, workers: number): Promise<{ child: PhaseChild; port: number }>;
  freePort(): Promise<number>;
  withChildren(pid: number): number[];
  runWrk(system: PhaseSystem, durationS: number, pace: { rate: number } | null): Promise<R>;
  progress(message: string): void;
}

/** Resident memory of a process in KiB (VmRSS), or null when it is gone. */
export function rssKiB(pid: number): number | null {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

export interface WorkersPeak<R> {
  readonly processes: number;
  readonly nginx: R;
  readonly baton: R;
  /** Baton / nginx. */
  readonly rpsRatio: number;
  readonly cpuPerReqRatio: number;
}

async function runBaton(
  deps: PhaseDeps<PhaseResult>,
  args: readonly string[],
  what: string,
  timeoutMs: number,
): Promise<void> {
  const c = deps.start(what, process.execPath, [deps.batonBin, ...args]);
  if (!(await deps.exited(c, timeoutMs)) || c.proc.exitCode !== 0) {
    await deps.stop(c);
    throw new Error(`${what} failed (${c.proc.exitCode}): ${c.stderrTail.trim()}`);
  }
}

async function getJson(url: string): Promise<unknown> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url} answered ${res.status}`);
  return res.json();
}

/**
 * `processes` Baton proxy processes (its data plane and workers) vs nginx with as many workers,
 * in front of one backend instance that Baton runs; each at peak after a warm-up.
 */
export async function runWorkersPhase<R extends PhaseResult>(
  deps: PhaseDeps<R>,
  dir: string,
  settings: { readonly durationS: number; readonly warmupS: number },
  processes: number,
): Promise<WorkersPeak<R>> {
  const wdir = path.join(dir, 'workers');
  await mkdir(wdir);
  const adminPort = await deps.freePort();
  const config = path.join(wdir, 'baton.yaml');
  await writeFile(
    config,
    [
      'service: bench-workers',
      'listen: 127.0.0.1:0',
      `admin: 127.0.0.1:${adminPort}`,
      `stateDir: ${path.join(wdir, 'state')}`,
      'app:',
      `  command: ${process.execPath} --import tsx ${deps.backendTs} ${deps.backendMode} --port {port}`,
      `  cwd: ${deps.root}`,
      '  instances: 1',
      '  readyTimeout: 30s',
      '  drainTimeout: 1s',
      '  health: { path: /, interval: 1s, timeout: 1s }',
      'strategy: { type: blue-green, verify: 0s, keepOld: 0s }',
      'proxy:',
      `  workers: ${processes}`,
      '  drainTimeout: 1s',
      // BENCH_ENGINE=node: proxy.engine node in every process; raw, the default, otherwise.
      `  engine: ${process.env.BENCH_ENGINE === 'node' ? 'node' : 'raw'}`,
      '',
    ].join('\n'),
  );
  const up = deps.start('baton-workers', process.execPath, [deps.batonBin, 'up', '-c', config]);
  const paths = dataPlanePaths(path.join(wdir, 'state'));
  let nginx: { child: PhaseChild; port: number } | null = null;
  try {
    const deadline = Date.now() + 20_000;
    while ((await getJson(`http://127.0.0.1:${adminPort}/v1/health`).catch(() => null)) === null) {
      if (up.proc.exitCode !== null) throw new Error(`baton up exited: ${up.stderrTail.trim()}`);
      if (Date.now() > deadline) throw new Error(`baton up (workers) not answering: ${up.stderrTail.trim()}`);
      await delay(100);
    }
    await runBaton(
      deps,
      ['deploy', '-c', config, '--version', '1', '--json'],
      'baton deploy (workers)',
      60_000,
    );
    const status = (await getJson(`http://127.0.0.1:${adminPort}/v1/status`)) as {
      live: { instances: { port: number }[] } | null;
    };
    const instancePort = status.live?.instances[0]?.port;
    const dp = await askDataPlane(paths);
    if (!instancePort || !dp || (dp.workers?.length ?? 0) !== processes - 1) {
      throw new Error(`the data plane with ${processes - 1} worker(s) is not serving: ${JSON.stringify(dp)}`);
    }
    nginx = await deps.startNginx(path.join(wdir, 'nginx'), instancePort, processes);
    const dpPids = [dp.pid, ...(dp.workers ?? [])];
    const systems = {
      nginx: {
        name: 'nginx',
        url: `http://127.0.0.1:${nginx.port}/`,
        cpuPids: () => deps.withChildren(nginx!.child.proc.pid!),
      },
      baton: { name: 'baton', url: `http://${dp.listen}/`, cpuPids: () => dpPids },
    } as const;
    const out: Partial<Record<'nginx' | 'baton', R>> = {};
    for (const name of ['nginx', 'baton'] as const) {
      if (settings.warmupS > 0) await deps.runWrk(systems[name], settings.warmupS, null);
      deps.progress(`workers: ${name} with ${processes} processes at peak, ${settings.durationS} s`);
      out[name] = await deps.runWrk(systems[name], settings.durationS, null);
    }
    const { nginx: n, baton: b } = out as Record<'nginx' | 'baton', R>;
    return {
      processes,
      nginx: n,
      baton: b,
      rpsRatio: b.rps / n.rps,
      cpuPerReqRatio: (b.cpuUsPerReq ?? NaN) / (n.cpuUsPerReq ?? NaN),
    };
  } finally {
    if (nginx) await deps.stop(nginx.child);
    // The data plane and the instance outlive `baton up` by design: `baton down` stops them.
    if (existsSync(config)) {
      await runBaton(deps, ['down', '-c', config], 'baton down (workers)', 30_000).catch((err: unknown) =>
        deps.progress(`baton down: ${(err as Error).message}`),
      );
    }
    await deps.stop(up);
  }
}

export interface Soak {
  readonly seconds: number;
  readonly rate: number;
  /** [seconds since the start, RSS in KiB]. */
  readonly samples: readonly (readonly [number, number])[];
  /** Last RSS over the first one after the warm-up third, minus 1 (0.05: 5% more). */
  readonly growth: number;
  readonly result: PhaseResult;
}

/**
 * Baton paced at `rate` for `seconds`, its RSS sampled every 5 s; growth is measured from the
 * end of the first third (V8's heap settles first) to the end.
 */
export async function runSoak<R extends PhaseResult>(
  deps: PhaseDeps<R>,
  baton: PhaseSystem,
  pid: number,
  seconds: number,
  rate: number,
): Promise<Soak> {
  deps.progress(`soak: Baton paced at ${Math.round(rate)} req/s for ${seconds} s, RSS every 5 s`);
  const samples: [number, number][] = [];
  const started = Date.now();
  let running = true;
  const sampler = (async () => {
    while (running) {
      const kib = rssKiB(pid);
      if (kib !== null) samples.push([Math.round((Date.now() - started) / 1000), kib]);
      await delay(5000);
    }
  })();
  let result: R;
  try {
    result = await deps.runWrk(baton, seconds, { rate });
  } finally {
    running = false;
    await sampler;
  }
  const after = samples.filter(([t]) => t >= seconds / 3);
  const base = after[0]?.[1] ?? samples[0]?.[1] ?? NaN;
  const last = samples.at(-1)?.[1] ?? NaN;
  return { seconds, rate, samples, growth: last / base - 1, result };
}
