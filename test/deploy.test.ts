// The deploy controller end to end: `baton up` with an `app:` section as a real child process,
// the example app's instances as real processes, and the CLI (deploy, rollback, status,
// history) as real processes too. The zero-downtime strategies are checked under steady load
// (keep-alive and a new connection per request): zero failed requests, and all traffic on the
// new version once `baton deploy` returned. `recreate` is the control case that shows the load
// check does see failures.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { before, describe, it, type TestContext } from 'node:test';
import { pathToFileURL } from 'node:url';
import { request } from 'undici';
import { APP, startLoad, waitFor, type LoadResult } from './helpers/index.js';
import {
  ensureBuilt,
  freePort,
  runBaton,
  startDaemon,
  tempDir,
  writeFile,
  type DaemonProcess,
  type RunResult,
} from './helpers/cli.js';
import type { HistoryAnswer, HistoryEntry, ProgressEvent } from '../src/api/deploy.js';
import type { LogsAnswer } from '../src/api/logs.js';
import type { StatusView } from '../src/api/status.js';

const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/** CI variables change how the CLI names the actor ("alice (CI)"): the tests set them empty. */
const NO_CI = { CI: '', GITHUB_ACTIONS: '', GITLAB_CI: '', JENKINS_URL: '' };
const as = (actor: string): Record<string, string> => ({ ...NO_CI, BATON_ACTOR: actor });
/** Who deploys when a test does not say. */
const CI_ACTOR = as('ci');

/**
 * The app command runs this launcher, which starts the example app with failure flags chosen by
 * the version's name, so that one config deploys good and bad versions: a version containing
 * "crash" exits before it listens, "sick" fails its health check 500ms after it listens, "gated"
 * listens only once the test creates the file open-<version> beside the launcher. Its path (in
 * the test's temp dir) also names every app process of the test, alive or orphaned.
 */
const LAUNCHER = `// test launcher for the example app
import { existsSync } from 'node:fs';
const args = process.argv;
const version = args[args.indexOf('--version') + 1] ?? '';
if (version.includes('crash')) {
  process.stderr.write('app ' + version + ': crashing on purpose at start\\n');
  process.exit(3);
}
if (version.includes('sick')) args.push('--unhealthy-after', '500');
if (version.includes('gated')) {
  const gate = new URL('./open-' + version, import.meta.url);
  while (!existsSync(gate)) await new Promise((r) => setTimeout(r, 50));
}
await import(${JSON.stringify(pathToFileURL(APP).href)});
`;

interface Service {
  readonly dir: string;
  readonly file: string;
  readonly adminPort: number;
  readonly daemon: DaemonProcess;
  /** `baton <args> -c <file>`. */
  baton(args: string[], env?: Record<string, string>): Promise<RunResult>;
  /** `baton deploy --version V -c <file> [...extra]`. */
  deploy(version: string, extra?: string[], env?: Record<string, string>): Promise<RunResult>;
  /** `baton status --json` through the CLI. */
  status(): Promise<StatusView>;
  /** GET /v1/status straight from the admin API (cheaper than a CLI process, for polling). */
  apiStatus(): Promise<StatusView>;
  /** GET /v1/history from the admin API (what `baton history --json` prints). */
  apiHistory(): Promise<HistoryEntry[]>;
  /** POST /v1/deploy from the admin API, for the deploys a test starts from; asserts it succeeded. */
  apiDeploy(version: string, actor?: string): Promise<void>;
  /** Rewrites the config with another `strategy:` and has the daemon re-read it (SIGHUP). */
  reconfigure(strategy: string[]): Promise<void>;
  /** Pids of this test's app processes alive right now (found in /proc by the launcher's path). */
  appPids(): number[];
  /** SIGTERM the daemon; checks it exits 0 and leaves no app process behind. */
  stop(): Promise<void>;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Processes whose command line contains `needle` (zombies have none, so they do not count). */
function processesWith(needle: string): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (readFileSync(`/proc/${name}/cmdline`, 'utf8').includes(needle)) pids.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return pids.sort((a, b) => a - b);
}

async function startService(
  t: TestContext,
  { instances = 2, strategy }: { instances?: number; strategy: string[] },
): Promise<Service> {
  const dir = tempDir(t);
  const launcher = writeFile(dir, 'launch.mjs', LAUNCHER);
  const adminPort = await freePort();
  const command = `"${process.execPath}" "${launcher}" --port {port} --version {version}`;
  const yaml = (strategy: string[]): string =>
    [
      'service: web',
      'listen: 127.0.0.1:0',
      `admin: 127.0.0.1:${adminPort}`,
      'stateDir: state',
      'app:',
      `  command: ${JSON.stringify(command)}`,
      `  instances: ${instances}`,
      '  readyTimeout: 20s',
      '  drainTimeout: 5s',
      '  stopTimeout: 5s',
      '  health: { path: /health, interval: 100ms, timeout: 1s, healthyThreshold: 1, unhealthyThreshold: 2 }',
      'strategy:',
      ...strategy.map((l) => `  ${l}`),
      '',
    ].join('\n');
  const file = writeFile(dir, 'baton.yaml', yaml(strategy));
  const daemon = await startDaemon(t, file);
  const appPids = (): number[] => processesWith(launcher);
  // Safety net when a test fails half-way: the daemon and any app process it left.
  t.after(() => {
    if (daemon.child.exitCode === null && daemon.child.signalCode === null) daemon.child.kill('SIGKILL');
    for (const pid of appPids()) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  });
  const baton = (args: string[], env: Record<string, string> = CI_ACTOR): Promise<RunResult> =>
    runBaton(t, [...args, '-c', file], { env, timeout: 30_000 });
  const parse = <T>(r: RunResult, what: string): T => {
    assert.equal(r.code, 0, `${what}: ${r.stderr}`);
    return JSON.parse(r.stdout) as T;
  };
  const admin = async (method: string, urlPath: string, body?: unknown): Promise<string> => {
    const res = await request(`http://127.0.0.1:${adminPort}${urlPath}`, {
      method: method as 'GET',
      reset: true,
      headersTimeout: 30_000,
      bodyTimeout: 30_000,
      ...(body === undefined
        ? {}
        : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
    });
    const text = await res.body.text();
    assert.equal(res.statusCode, 200, text);
    return text;
  };
  return {
    dir,
    file,
    adminPort,
    daemon,
    baton,
    deploy: (version, extra = [], env = CI_ACTOR) => baton(['deploy', '--version', version, ...extra], env),
    status: async () => parse<StatusView>(await baton(['status', '--json']), 'baton status --json'),
    apiStatus: async () => JSON.parse(await admin('GET', '/v1/status')) as StatusView,
    apiHistory: async () => (JSON.parse(await admin('GET', '/v1/history')) as HistoryAnswer).history,
    apiDeploy: async (version, actor = 'ci') => {
      const events = await admin('POST', '/v1/deploy', { version, actor });
      const last = JSON.parse(events.trimEnd().split('\n').at(-1)!) as ProgressEvent;
      assert.deepEqual([last.kind, last.result], ['done', 'succeeded'], events);
    },
    reconfigure: async (strategy) => {
      const reloads = (): number => daemon.logs().filter((l) => l.msg?.startsWith('config reloaded')).length;
      const before = reloads();
      writeFile(dir, 'baton.yaml', yaml(strategy));
      daemon.child.kill('SIGHUP');
      await waitFor(() => reloads() > before, { what: 'the daemon to reload its config' });
    },
    appPids,
    stop: async () => {
      daemon.child.kill('SIGTERM');
      const exit = await Promise.race([
        daemon.exited,
        new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 15_000).unref()),
      ]);
      assert.deepEqual(exit, { code: 0, signal: null }, daemon.stderr());
      // The controller's exit leaves the service running; `baton down` is what stops it.
      assert.ok(appPids().length > 0, 'the instances outlive baton up');
      const down = await baton(['down']);
      assert.equal(down.code, 0, down.stderr);
      assert.deepEqual(appPids(), [], 'no app process may outlive baton down');
    },
  };
}

/** Asserts a deploy (or rollback) exited 0, with its output in the message otherwise. */
function ok(r: RunResult, what: string): void {
  assert.equal(r.code, 0, `${what} exited ${r.code ?? r.signal}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
}

function pidsOf(s: StatusView): number[] {
  return (s.live?.instances ?? []).map((i) => i.pid).sort((a, b) => a - b);
}

// --- load ----------------------------------------------------------------------------------

interface Loads {
  readonly all: { name: string; result: LoadResult; stop: () => Promise<LoadResult> }[];
  /** Waits until every load has had `n` successful answers (the load runs before the deploy). */
  warm(n?: number): Promise<void>;
  /** Counts per response body so far, to compare with later. */
  mark(): Map<string, number>[];
  /**
   * Waits for `n` more answers on every load since `marks`, then asserts that every one of them
   * came from `version`.
   */
  onlyAfter(marks: Map<string, number>[], version: string, n?: number): Promise<void>;
  /** Stops both loads; asserts neither failed a single request. */
  stopWithoutFailures(): Promise<void>;
}

/** Steady load through the proxy: 8 workers on keep-alive connections, 2 with a new connection each request. */
function startLoads(d: DaemonProcess): Loads {
  // Each request spends 50-100ms in the app ("V slow 100ms"): requests are always in flight when
  // traffic moves, and the load leaves CPU to the deploy on a small, shared machine.
  const bounds = { maxMs: 50_000, maxRequests: 100_000 };
  const all = [
    {
      name: 'keep-alive',
      ...startLoad(d.url, { concurrency: 8, keepAlive: true, path: () => '/slow?ms=100', ...bounds }),
    },
    {
      name: 'new connection per request',
      ...startLoad(d.url, { concurrency: 2, keepAlive: false, path: () => '/slow?ms=50', ...bounds }),
    },
  ];
  const total = (m: Map<string, number>): number => [...m.values()].reduce((a, b) => a + b, 0);
  /** Answers per version (the first word of the body) in `now` that were not yet in `then`. */
  const since = (now: Map<string, number>, then: Map<string, number>): Map<string, number> => {
    const out = new Map<string, number>();
    for (const [body, n] of now) {
      const more = n - (then.get(body) ?? 0);
      const version = body.split(' ')[0]!.trim();
      if (more > 0) out.set(version, (out.get(version) ?? 0) + more);
    }
    return out;
  };
  return {
    all,
    warm: async (n = 20) => {
      await waitFor(() => all.every((l) => l.result.ok >= n), { timeout: 10_000, what: 'the load to run' });
    },
    mark: () => all.map((l) => new Map(l.result.byBody)),
    onlyAfter: async (marks, version, n = 20) => {
      await waitFor(() => all.every((l, i) => total(since(l.result.byBody, marks[i]!)) >= n), {
        timeout: 10_000,
        what: `${n} answers on each load after the deploy of ${version}`,
      });
      all.forEach((l, i) => {
        assert.deepEqual(
          Object.fromEntries(since(l.result.byBody, marks[i]!)),
          { [version]: total(since(l.result.byBody, marks[i]!)) },
          `${l.name}: every answer after the deploy of ${version} returned is from ${version}`,
        );
      });
    },
    stopWithoutFailures: async () => {
      const results = await Promise.all(all.map((l) => l.stop()));
      results.forEach((r, i) => {
        assert.equal(
          r.failed,
          0,
          `${all[i]!.name}: ${r.failed} of ${r.sent} failed: ${r.failures.join('; ')}`,
        );
        assert.ok(r.ok > 50, `${all[i]!.name}: the load ran (${r.ok} answers)`);
      });
    },
  };
}

/** Deploys each version in turn under `loads`; checks exit 0, traffic and status after each. */
async function deployInARow(
  svc: Service,
  loads: Loads,
  versions: string[],
  instances: number,
): Promise<void> {
  const seen = new Set<number>();
  let status: StatusView | undefined;
  for (const v of versions) {
    const r = await svc.deploy(v);
    const marks = loads.mark();
    ok(r, `deploy ${v}`);
    // GET /v1/status is what `baton status --json` prints; the CLI itself is checked after the
    // last deploy (each CLI process costs a second or more on a busy 2-core machine).
    status = await svc.apiStatus();
    assert.equal(status.live?.version, v);
    assert.equal(status.live.instances.length, instances);
    assert.ok(status.live.instances.every((i) => i.alive && i.version === v));
    assert.equal(status.deployment, null);
    // Every deploy runs new processes.
    for (const pid of pidsOf(status)) {
      assert.ok(!seen.has(pid), `pid ${pid} reused`);
      seen.add(pid);
    }
    await loads.onlyAfter(marks, v);
  }
  const cli = await svc.status();
  assert.equal(cli.live?.version, versions.at(-1));
  assert.deepEqual(pidsOf(cli), pidsOf(status!), '`baton status --json` after the last deploy');
}

describe('baton deploy', { timeout: 120_000 }, () => {
  before(() => ensureBuilt());

  it('blue-green: three deploys in a row under load, zero failed requests', async (t) => {
    const svc = await startService(t, { strategy: ['type: blue-green', 'keepOld: 1s', 'verify: 300ms'] });
    await svc.apiDeploy('1.0.0');
    const loads = startLoads(svc.daemon);
    await loads.warm();
    await deployInARow(svc, loads, ['1.0.1', '1.0.2', '1.0.3'], 2);
    await loads.stopWithoutFailures();
    await svc.stop();
  });

  it('rolling (3 instances, maxSurge 1, maxUnavailable 0): deploys in a row under load, zero failed requests', async (t) => {
    const svc = await startService(t, {
      instances: 3,
      strategy: ['type: rolling', 'maxSurge: 1', 'maxUnavailable: 0', 'minReady: 100ms'],
    });
    await svc.apiDeploy('1.0.0');
    const loads = startLoads(svc.daemon);
    await loads.warm();
    await deployInARow(svc, loads, ['1.0.1', '1.0.2'], 3);
    await loads.stopWithoutFailures();
    await svc.stop();
  });

  it('recreate under the same load fails requests (the control case)', async (t) => {
    const svc = await startService(t, { strategy: ['type: recreate'] });
    await svc.apiDeploy('1.0.0');
    const loads = startLoads(svc.daemon);
    await loads.warm();
    const r = await svc.deploy('1.0.1');
    const marks = loads.mark();
    ok(r, 'recreate deploy');
    assert.equal((await svc.apiStatus()).live?.version, '1.0.1');
    await loads.onlyAfter(marks, '1.0.1');
    const results = await Promise.all(loads.all.map((l) => l.stop()));
    const failed = results.reduce((n, x) => n + x.failed, 0);
    assert.ok(failed > 0, 'recreate stops everything before starting: the load must see failures');
    t.diagnostic(`recreate: ${failed} failed requests, e.g. ${results[0]!.failures[0] ?? ''}`);
    await svc.stop();
  });

  it('rollback: an instant switch to the kept set, a redeploy once it expired, under load; unknown versions refused', async (t) => {
    // keepOld long enough for a CLI process to start on a busy machine; shortened below.
    const svc = await startService(t, { strategy: ['type: blue-green', 'keepOld: 30s', 'verify: 300ms'] });
    await svc.apiDeploy('1.0.0');
    const pids100 = pidsOf(await svc.apiStatus());
    assert.equal(pids100.length, 2);
    const loads = startLoads(svc.daemon);
    await loads.warm();
    ok(await svc.deploy('1.0.1'), 'deploy 1.0.1');

    // Within keepOld: 1.0.0 still runs beside 1.0.1; rollback switches to it, no new process.
    const before = await svc.apiStatus();
    assert.equal(before.live?.version, '1.0.1');
    assert.equal(before.standby?.version, '1.0.0');
    const processes = svc.appPids();
    assert.equal(processes.length, 4);
    const back = await svc.baton(['rollback'], as('ops'));
    const marks = loads.mark();
    ok(back, 'rollback');
    assert.match(back.stdout, /no restart/);
    const after = await svc.apiStatus();
    assert.equal(after.live?.version, '1.0.0');
    assert.deepEqual(pidsOf(after), pids100, 'the live pids are those 1.0.0 had');
    assert.deepEqual(svc.appPids(), processes, 'no process was started');
    await loads.onlyAfter(marks, '1.0.0');

    // Once keepOld expired the old processes are gone; rollback --to deploys the version again.
    await svc.reconfigure(['type: blue-green', 'keepOld: 500ms', 'verify: 300ms']);
    ok(await svc.deploy('1.0.2'), 'deploy 1.0.2');
    await waitFor(async () => (await svc.apiStatus()).standby === null, {
      timeout: 10_000,
      interval: 100,
      what: 'keepOld to expire',
    });
    // (The standby is out of the state as its stop begins; the processes end just after.)
    await waitFor(() => pids100.every((p) => !pidAlive(p)), { what: 'the kept 1.0.0 processes to stop' });
    const to = await svc.baton(['rollback', '--to', '1.0.0'], as('ops'));
    const marks2 = loads.mark();
    ok(to, 'rollback --to 1.0.0');
    // And meanwhile, a version never deployed here: refused at once with a clear message.
    const [redeployed, never] = await Promise.all([
      svc.status(),
      svc.baton(['rollback', '--to', '9.9.9']),
      loads.onlyAfter(marks2, '1.0.0'),
    ]);
    assert.equal(never.code, 4, never.stderr);
    assert.match(never.stderr, /version 9\.9\.9 was never live here/);
    assert.equal(redeployed.live?.version, '1.0.0');
    assert.equal(redeployed.live.instances.length, 2);
    assert.ok(
      pidsOf(redeployed).every((p) => !pids100.includes(p)),
      'new processes',
    );
    await loads.stopWithoutFailures();
    // The refused rollback changed nothing.
    assert.deepEqual(pidsOf(await svc.apiStatus()), pidsOf(redeployed));

    assert.deepEqual(
      (await svc.apiHistory()).map((h) => [h.version, h.previousVersion, h.rollback, h.result, h.actor]),
      [
        ['1.0.0', '1.0.2', true, 'succeeded', 'ops'],
        ['1.0.2', '1.0.0', false, 'succeeded', 'ci'],
        ['1.0.0', '1.0.1', true, 'succeeded', 'ops'],
        ['1.0.1', '1.0.0', false, 'succeeded', 'ci'],
        ['1.0.0', null, false, 'succeeded', 'ci'],
      ],
    );
    await svc.stop();
  });

  it('deploy lock: a second deploy (or rollback) is refused with exit 11, naming the running version, its actor and since when', async (t) => {
    const svc = await startService(t, {
      instances: 1,
      strategy: ['type: blue-green', 'keepOld: 1s', 'verify: 300ms'],
    });
    await svc.apiDeploy('1.0.0');
    // 2.0.0-gated does not listen until the test opens its gate: the deploy holds the lock.
    const gated = svc.deploy('2.0.0-gated', [], as('alice'));
    const running = await waitFor(async () => (await svc.apiStatus()).deployment, {
      timeout: 10_000,
      what: 'the gated deploy to start',
    });
    assert.equal(running.version, '2.0.0-gated');
    assert.equal(running.actor, 'alice');

    const [second, rollback, status] = await Promise.all([
      svc.deploy('2.0.1', [], as('bob')),
      // A rollback is a deploy too: refused the same way while one runs.
      svc.baton(['rollback'], as('bob')),
      svc.baton(['status']),
    ]);
    assert.ok(!(await svc.apiStatus()).live?.instances.some((i) => i.version === '2.0.0-gated'));
    const since = running.startedAt.replace(/[.]/g, '\\.');
    for (const [what, r] of [
      ['deploy', second],
      ['rollback', rollback],
    ] as const) {
      assert.equal(r.code, 11, `${what}: ${r.stdout}\n${r.stderr}`);
      assert.match(r.stderr, new RegExp(`a deploy of 2\\.0\\.0-gated by alice is running since ${since}`));
      assert.match(r.stderr, /baton abort/, 'says how to stop it');
    }
    // status shows who deploys what.
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /^deploy +2\.0\.0-gated \(blue-green\) by alice: /m);

    writeFile(svc.dir, 'open-2.0.0-gated', '');
    ok(await gated, 'the gated deploy');
    assert.equal((await svc.apiStatus()).live?.version, '2.0.0-gated');
    // The refused ones left no trace in history.
    assert.deepEqual(
      (await svc.apiHistory()).map((h) => [h.version, h.actor]),
      [
        ['2.0.0-gated', 'alice'],
        ['1.0.0', 'ci'],
      ],
    );
    await svc.stop();
  });

  it('history records every deploy: who, what, from what, when, how long, and how it ended', async (t) => {
    const svc = await startService(t, {
      instances: 1,
      strategy: ['type: blue-green', 'keepOld: 1s', 'verify: 1500ms'],
    });
    await svc.apiDeploy('1.0.0', 'bob');
    // Fails before traffic moves: its instance exits at start.
    const crash = await svc.deploy('1.0.1-crash', [], as('bob'));
    assert.equal(crash.code, 10, `${crash.stdout}\n${crash.stderr}`);
    assert.match(crash.stdout, / FAILED +deploy failed: /);
    // Goes unhealthy after the switch, within verify: traffic goes back to 1.0.0. With --json
    // the last line says so too.
    const sick = await svc.deploy('1.0.2-sick', ['--json'], as('carol'));
    assert.equal(sick.code, 10, `${sick.stdout}\n${sick.stderr}`);
    const last = JSON.parse(sick.stdout.trimEnd().split('\n').at(-1)!) as ProgressEvent;
    assert.deepEqual([last.kind, last.result], ['done', 'rolled-back']);
    assert.equal((await svc.apiStatus()).live?.version, '1.0.0');
    ok(await svc.deploy('1.0.3', ['--strategy', 'rolling'], as('dave')), 'deploy 1.0.3');

    const [json, table] = await Promise.all([svc.baton(['history', '--json']), svc.baton(['history'])]);
    assert.equal(json.code, 0, json.stderr);
    const entries = (JSON.parse(json.stdout) as HistoryAnswer).history;
    assert.deepEqual(
      entries.map((h) => [h.version, h.previousVersion, h.strategy, h.actor, h.result, h.rollback]),
      [
        ['1.0.3', '1.0.0', 'rolling', 'dave', 'succeeded', false],
        ['1.0.2-sick', '1.0.0', 'blue-green', 'carol', 'rolled-back', false],
        ['1.0.1-crash', '1.0.0', 'blue-green', 'bob', 'failed', false],
        ['1.0.0', null, 'blue-green', 'bob', 'succeeded', false],
      ],
    );
    assert.equal(new Set(entries.map((h) => h.id)).size, entries.length, 'ids are unique');
    for (const h of entries) {
      assert.match(h.id, /^[0-9a-f]{8}$/);
      assert.match(h.startedAt, ISO_TIME);
      assert.match(h.endedAt, ISO_TIME);
      assert.equal(h.durationMs, Date.parse(h.endedAt) - Date.parse(h.startedAt));
      assert.ok(h.durationMs > 0 && h.durationMs < 30_000, `durationMs ${h.durationMs}`);
    }
    // Newest first, one after the other.
    for (let i = 1; i < entries.length; i++) {
      assert.ok(Date.parse(entries[i]!.endedAt) <= Date.parse(entries[i - 1]!.startedAt));
    }
    const [ok3, sickEntry, crashEntry, ok0] = entries;
    assert.equal(ok3!.reason, null);
    assert.equal(ok0!.reason, null);
    assert.match(crashEntry!.reason ?? '', /exited with code 3 before it was ready/);
    assert.match(crashEntry!.reason ?? '', /crashing on purpose/, 'the reason quotes the app log');
    assert.match(sickEntry!.reason ?? '', /unhealthy after the switch/);
    assert.match(sickEntry!.reason ?? '', /traffic switched back to 1\.0\.0/);

    // The table shows the same, a line each with the reason shortened (test/cli-messages.test.ts
    // has --logs, which prints the reasons whole below).
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^ID +VERSION +FROM +STRATEGY +RESULT +WHO +STARTED +TOOK +FAILED +REASON$/m);
    assert.match(
      table.stdout,
      new RegExp(
        `^${crashEntry!.id} +1\\.0\\.1-crash +1\\.0\\.0 +blue-green +failed +bob .* exited with code 3`,
        'm',
      ),
    );
    assert.match(table.stdout, new RegExp(`^${sickEntry!.id} .*unhealthy after the switch`, 'm'));
    await svc.stop();
  });

  it('status before any deploy (exit 0), progress lines and --json, status with no daemon (exit 9)', async (t) => {
    const svc = await startService(t, {
      instances: 1,
      strategy: ['type: blue-green', 'keepOld: 1s', 'verify: 300ms'],
    });
    // As soon as the daemon is up, before any deploy.
    const first = await svc.baton(['status']);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /^service +web$/m);
    assert.match(first.stdout, /nothing deployed yet/);
    const empty = await svc.apiStatus();
    assert.deepEqual([empty.service, empty.live, empty.deployment], ['web', null, null]);

    // Without a TTY: every line starts with its ISO time.
    const plain = await svc.deploy('1.0.0');
    ok(plain, 'deploy 1.0.0');
    const lines = plain.stdout.trimEnd().split('\n');
    assert.ok(lines.length >= 2, plain.stdout);
    for (const line of lines) {
      const time = line.split(' ')[0]!;
      assert.match(time, ISO_TIME, `a line without its time: ${line}`);
      assert.ok(Math.abs(Date.parse(time) - Date.now()) < 60_000);
    }
    assert.match(lines[0]!, / start +deploying 1\.0\.0 /);
    assert.match(lines.at(-1)!, / done +1\.0\.0 is live/);

    // --json: one JSON object per line, the last one kind "done".
    const json = await svc.deploy('1.0.1', ['--json']);
    ok(json, 'deploy 1.0.1 --json');
    assert.ok(json.stdout.endsWith('\n'));
    const events = json.stdout
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as ProgressEvent);
    assert.equal(events[0]!.kind, 'start');
    assert.deepEqual(events.filter((e) => e.kind === 'done').length, 1, 'exactly one "done", the last line');
    const done = events.at(-1)!;
    assert.equal(done.kind, 'done');
    assert.equal(done.result, 'succeeded');
    assert.equal(done.entry?.version, '1.0.1');
    assert.equal(done.entry.previousVersion, '1.0.0');
    assert.ok(events.every((e) => ISO_TIME.test(e.time) && e.deployId === done.deployId));
    assert.deepEqual(
      events.filter((e) => e.kind === 'step').map((e) => e.step),
      ['starting', 'switching', 'verifying', 'draining', 'finishing'],
    );
    const status = await svc.baton(['status']);
    assert.match(status.stdout, /^web-1\.0\.1-\d+ +127\.0\.0\.1:\d+ +\d+ /m, status.stdout);

    // Logs: the live instance's, read where it runs; one line of it as JSON; a selection that
    // names nothing (exit 4) and a bad --lines (exit 2).
    const logs = await svc.baton(['logs', '-n', '5']);
    assert.equal(logs.code, 0, logs.stderr);
    assert.match(logs.stdout, /^==> web-1\.0\.1-\d+ \(127\.0\.0\.1:\d+, \/.+\.log\) <==$/m);
    assert.match(logs.stdout, /app 1\.0\.1 listening on/);
    const one = await svc.baton(['logs', '1.0.1', '-n', '1', '--json']);
    assert.equal(one.code, 0, one.stderr);
    const [log] = (JSON.parse(one.stdout) as LogsAnswer).logs;
    assert.equal(log?.text.split('\n').length, 1);
    const none = await svc.baton(['logs', '9.9.9']);
    assert.equal(none.code, 4, none.stderr);
    assert.match(
      none.stderr,
      /no instance matches "9\.9\.9" \(give an instance id, a version or a host; running: web-1\.0\.1-/,
    );
    const bad = await svc.baton(['logs', '-n', '0']);
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /--lines must be a whole number from 1 to 10000, not 0/);
    await svc.stop();

    // No daemon any more.
    const down = await svc.baton(['status']);
    assert.equal(down.code, 9, `${down.stdout}${down.stderr}`);
    assert.match(down.stderr, new RegExp(`no Baton daemon answers on 127\\.0\\.0\\.1:${svc.adminPort}`));
    assert.equal(down.stdout, '');
  });
});
