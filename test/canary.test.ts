// Canary and A/B deploys end to end: a real `baton up` daemon with the example app, the CLI as
// real processes (deploy --json, status, promote, pause, resume, abort, validate), and traffic
// through the proxy reading the x-version of every answer. Short analysis intervals and pauses
// keep the whole file within a minute on a small shared machine.
import assert from 'node:assert/strict';
import { before, describe, it, type TestContext } from 'node:test';
import { Agent, request } from 'undici';
import { ensureBuilt, runBaton, tempDir, writeFile, type RunResult } from './helpers/cli.js';
import { Service, type DeployEvent, type DeployRun } from './helpers/app-daemon.js';
import { waitFor } from './helpers/index.js';
import type { StatusView } from '../src/api/status.js';
import { parseConfigText } from '../src/config/load.js';

const status = (svc: Service): Promise<StatusView> => svc.status();

/** `baton <args> -c <file>` with a fixed actor. */
const baton = (t: TestContext, svc: Service, args: string[]): Promise<RunResult> =>
  runBaton(t, [...args, '-c', svc.file], { env: { BATON_ACTOR: 'tester' }, timeout: 20_000 });

function ok(r: RunResult, what: string): void {
  assert.equal(r.code, 0, `${what} exited ${r.code ?? r.signal}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
}

/** The step events of a deploy, as "step" or "step percent" for weight steps. */
function stepsOf(run: DeployRun): string[] {
  return run.events
    .filter((e): e is DeployEvent & { step: string } => e.kind === 'step' && e.step !== undefined)
    .map((e) => {
      const pct = e.step === 'weight' ? /(\d+)% of traffic/.exec(e.message)?.[1] : undefined;
      return pct === undefined ? e.step : `${e.step} ${pct}`;
    });
}

const infos = (run: DeployRun): string[] => run.events.filter((e) => e.kind === 'info').map((e) => e.message);

/** A service with 2 instances of 1.0.0 live and the given strategy. */
async function serviceWith(t: TestContext, strategy: string[]): Promise<Service> {
  const svc = await Service.create(t, { instances: 2, strategy });
  await svc.start();
  await svc.deployApi('1.0.0');
  return svc;
}

// --- load that keeps the version of every answer -----------------------------------------------

interface Answer {
  readonly status: number;
  /** x-version of the answer; '' when there was none (a proxy error, a failed connection). */
  readonly version: string;
  readonly error?: string;
}

interface VersionLoad {
  readonly answers: Answer[];
  stop(): Promise<Answer[]>;
}

/**
 * GETs through the proxy from `concurrency` workers on keep-alive connections, without cookies
 * (every request gets its own bucket), paced and bounded.
 */
function versionLoad(
  url: string,
  { concurrency = 4, paceMs = 5, maxMs = 30_000, maxRequests = 20_000 } = {},
): VersionLoad {
  const answers: Answer[] = [];
  const agent = new Agent({ connections: concurrency, keepAliveTimeout: 10_000 });
  const deadline = Date.now() + maxMs;
  let stopped = false;
  const worker = async (): Promise<void> => {
    while (!stopped && Date.now() < deadline && answers.length < maxRequests) {
      try {
        const res = await request(url, {
          dispatcher: agent,
          headersTimeout: 5000,
          bodyTimeout: 5000,
        });
        await res.body.text();
        const v = res.headers['x-version'];
        answers.push({ status: res.statusCode, version: typeof v === 'string' ? v : '' });
      } catch (err) {
        answers.push({ status: 0, version: '', error: (err as Error).message });
      }
      await new Promise((r) => setTimeout(r, paceMs));
    }
  };
  const workers = Array.from({ length: concurrency }, () => worker());
  return {
    answers,
    stop: async () => {
      stopped = true;
      await Promise.all(workers);
      await agent.close();
      return answers;
    },
  };
}

function countBy(answers: readonly Answer[], key: (a: Answer) => string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const a of answers) out[key(a)] = (out[key(a)] ?? 0) + 1;
  return out;
}

/** Waits for `n` more answers after `from`, and returns them. */
async function nextAnswers(load: VersionLoad, from: number, n: number): Promise<Answer[]> {
  await waitFor(() => load.answers.length >= from + n, { timeout: 10_000, what: `${n} more answers` });
  return load.answers.slice(from, from + n);
}

/** Polls status for `ms`, asserting at every poll that the deploy stays where `check` says. */
async function holds(svc: Service, ms: number, check: (s: StatusView) => void): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    check(await status(svc));
    await new Promise((r) => setTimeout(r, 100));
  }
}

const waitStatus = (svc: Service, what: string, pred: (s: StatusView) => boolean, timeout = 10_000) =>
  waitFor(
    async () => {
      const s = await status(svc);
      return pred(s) ? s : null;
    },
    { timeout, interval: 50, what },
  );

const ANALYSIS = '  analysis: { interval: 300ms, failureLimit: 2, minRequests: 5, successRate: 95 }';

describe('canary deploys', () => {
  before(() => ensureBuilt());

  it('promotes a good canary step by step, with status and analysis on the way', async (t) => {
    const svc = await serviceWith(t, [
      '  type: canary',
      '  canaryInstances: 1',
      '  steps:',
      '    - setWeight: 20',
      '    - pause: 1s',
      '    - setWeight: 50',
      '    - pause: 1s',
      '    - setWeight: 80',
      '    - pause: 500ms',
      '  analysis: { interval: 300ms, failureLimit: 2, minRequests: 3, successRate: 95 }',
    ]);
    const load = versionLoad(svc.daemon.url);
    await nextAnswers(load, 0, 20);
    const deploying = svc.deploy('2.0.0');
    // Status in the middle of the canary (GET /v1/status, what `baton status --json` prints; the
    // CLI itself is checked in the pause test, where the step holds still): step, weight, verdicts.
    const s = await waitStatus(svc, 'a passing verdict while the canary runs', (x) =>
      Boolean(x.deployment?.canary?.verdicts.some((v) => v.result === 'pass')),
    );
    assert.equal(s.deployment?.version, '2.0.0');
    assert.equal(s.deployment.strategy, 'canary');
    assert.ok(['paused', 'weight'].includes(s.deployment.step), s.deployment.step);
    assert.match(s.deployment.detail, /^step \d\/6: /);
    assert.ok([20, 50, 80].includes(s.deployment.canary!.percent), `percent ${s.deployment.canary!.percent}`);
    assert.deepEqual(s.deployment.canary!.rules, []);
    const pass = s.deployment.canary!.verdicts.find((v) => v.result === 'pass')!;
    assert.ok(pass.requests >= 3 && pass.successRate === 100, JSON.stringify(pass));
    assert.match(pass.reason, /^success rate 100%, p99 [\d.]+ms over \d+ request\(s\)$/);
    // Both versions live while the canary runs.
    assert.deepEqual(
      [...new Set(s.live!.instances.map((i) => i.version))].sort(),
      ['1.0.0', '2.0.0'],
      'stable and canary instances while the canary runs',
    );

    const run = await deploying;
    ok(run, 'baton deploy 2.0.0 (canary)');
    assert.equal(run.done?.result, 'succeeded');
    assert.deepEqual(stepsOf(run), [
      'starting',
      'weight 20',
      'paused',
      'weight 50',
      'paused',
      'weight 80',
      'paused',
      'promoting',
      'draining',
      'stopping',
      'finishing',
    ]);
    assert.ok(
      infos(run).some((m) => m.startsWith('analysis pass')),
      'the analysis verdicts are in the progress',
    );
    assert.ok(!infos(run).some((m) => m.startsWith('analysis fail')), infos(run).join('\n'));

    // All instances on the new version; the old ones gone; all traffic on 2.0.0.
    const after = await status(svc);
    assert.equal(after.deployment, null);
    assert.equal(after.live?.version, '2.0.0');
    assert.equal(after.live.instances.length, 2);
    assert.ok(after.live.instances.every((i) => i.version === '2.0.0' && i.alive));
    await svc.noneLeft('1.0.0');
    const mark = load.answers.length;
    const tail = await nextAnswers(load, mark, 40);
    const all = await load.stop();
    assert.deepEqual(
      countBy(tail, (a) => `${a.status} ${a.version}`),
      { '200 2.0.0': 40 },
    );
    // No failure at any time, and the canary did take a share before the promotion.
    assert.deepEqual(
      all.filter((a) => a.status !== 200),
      [],
      'no failed request during the canary',
    );
    const byVersion = countBy(all, (a) => a.version);
    assert.ok((byVersion['1.0.0'] ?? 0) > 20 && (byVersion['2.0.0'] ?? 0) > 40, JSON.stringify(byVersion));

    // --strategy ab with a canary config: refused, nothing deployed.
    const ab = await svc.deploy('3.0.0', ['--strategy', 'ab']);
    assert.equal(ab.code, 2, ab.stderr);
    assert.match(
      ab.stderr,
      /--strategy ab needs its steps in the config: set strategy\.type: ab \(with match and duration\)/,
    );
    assert.equal((await status(svc)).live?.version, '2.0.0');
    assert.deepEqual(svc.pids('3.0.0'), []);
  });

  it('aborts a bad canary on its analysis and rolls back: only canary answers failed', async (t) => {
    const svc = await serviceWith(t, [
      '  type: canary',
      '  steps:',
      '    - setWeight: 20',
      '    - pause: 15s',
      '    - setWeight: 50',
      '    - pause: 15s',
      ANALYSIS,
    ]);
    const load = versionLoad(svc.daemon.url);
    await nextAnswers(load, 0, 20);
    const run = await svc.deploy('2.0.0-errors');
    assert.equal(run.code, 10, `exit code\n${run.stdout}\n${run.stderr}`);
    assert.equal(run.done?.result, 'rolled-back');
    // The reason names the metric, its value and the threshold.
    const reason = /deploy rolled-back: (.*)/.exec(run.done.message)?.[1] ?? '';
    const m = /success rate ([\d.]+)% < 95% \((\d+) of (\d+) failed\)/.exec(reason);
    assert.ok(m, `reason: ${run.done.message}`);
    assert.ok(Number(m[1]) < 95 && Number(m[2]) > 0, reason);
    assert.match(reason, /canary analysis failed 2 time\(s\) \(failureLimit 2\)/);
    assert.match(reason, /all traffic back on 1\.0\.0/);
    assert.ok(stepsOf(run).includes('rolling-back'), stepsOf(run).join(' '));
    assert.ok(!stepsOf(run).includes('promoting'), 'a failed canary is never promoted');
    assert.equal(infos(run).filter((i) => i.startsWith('analysis fail')).length, 2, infos(run).join('\n'));
    const [entry] = await svc.history();
    assert.equal(entry?.version, '2.0.0-errors');
    assert.equal(entry.result, 'rolled-back');
    assert.equal(entry.strategy, 'canary');
    assert.match(entry.reason ?? '', /success rate [\d.]+% < 95%/);

    // Back on stable: all traffic, and the canary's processes are gone.
    const s = await status(svc);
    assert.equal(s.live?.version, '1.0.0');
    assert.ok(s.live.instances.length === 2 && s.live.instances.every((i) => i.version === '1.0.0'));
    await svc.noneLeft('2.0.0-errors');
    const tail = await nextAnswers(load, load.answers.length, 40);
    const all = await load.stop();
    assert.deepEqual(
      countBy(tail, (a) => `${a.status} ${a.version}`),
      { '200 1.0.0': 40 },
    );

    // Every failed answer came from the canary version: none from stable, none from the proxy.
    const failed = all.filter((a) => a.status !== 200);
    assert.deepEqual(
      countBy(failed, (a) => `${a.status} ${a.version || a.error || 'no x-version'}`),
      { '500 2.0.0-errors': failed.length },
      'failures outside the canary',
    );
    assert.ok(failed.length > 0, 'the load saw the bad canary');
    const canaryAnswers = all.filter((a) => a.version === '2.0.0-errors').length;
    assert.ok(
      canaryAnswers < all.length / 2,
      `${canaryAnswers} of ${all.length} answers from the canary at 20%`,
    );
  });

  it('waits for promote, steps with promote --step, holds a timed pause on pause/resume, and aborts', async (t) => {
    const svc = await serviceWith(t, [
      '  type: canary',
      '  steps:',
      '    - setWeight: 10',
      '    - pause: {}',
      '    - setWeight: 30',
      '    - pause: {}',
      '    - setWeight: 60',
      '    - pause: 4s',
      '    - setWeight: 90',
      '    - pause: {}',
    ]);
    const at = (percent: number, stepNo: number) => (s: StatusView) =>
      s.deployment?.step === 'paused' &&
      s.deployment.canary?.percent === percent &&
      s.deployment.detail.startsWith(`step ${stepNo}/8:`);
    const stays = (percent: number, stepNo: number) => (s: StatusView) =>
      assert.ok(
        at(percent, stepNo)(s),
        `still at ${percent}% (step ${stepNo}): ${JSON.stringify(s.deployment)}`,
      );

    // Without a terminal, a step that waits for `baton promote` is refused unless asked for.
    const refused = await svc.deploy('2.0.0');
    assert.equal(refused.code, 2, refused.stdout + refused.stderr);
    assert.match(refused.stderr, /strategy\.steps\[1\] pauses until `baton promote`.*--allow-manual-pause/);
    const deploying = svc.deploy('2.0.0', ['--allow-manual-pause']);
    // `pause: {}` waits for `baton promote`, however long.
    await waitStatus(svc, 'the first pause at 10%', at(10, 2));
    assert.match((await status(svc)).deployment!.detail, /paused until `baton promote`/);
    // `baton status --json` shows the step, the weight and the split while the step holds.
    const [cli] = await Promise.all([baton(t, svc, ['status', '--json']), holds(svc, 1000, stays(10, 2))]);
    ok(cli, 'baton status --json');
    const shown = JSON.parse(cli.stdout) as StatusView;
    assert.deepEqual(
      {
        version: shown.deployment?.version,
        strategy: shown.deployment?.strategy,
        step: shown.deployment?.step,
        paused: shown.deployment?.paused,
        percent: shown.deployment?.canary?.percent,
        rules: shown.deployment?.canary?.rules,
        verdicts: shown.deployment?.canary?.verdicts,
      },
      {
        version: '2.0.0',
        strategy: 'canary',
        step: 'paused',
        paused: false,
        percent: 10,
        rules: [],
        verdicts: [],
      },
    );
    assert.deepEqual([...new Set(shown.live!.instances.map((i) => i.version))].sort(), ['1.0.0', '2.0.0']);
    // --step: on to the next pause, not further.
    ok(await baton(t, svc, ['promote', '--step']), 'baton promote --step');
    await waitStatus(svc, 'the second pause at 30%', at(30, 4));
    await holds(svc, 500, stays(30, 4));
    // (The same through the admin API, which the CLI calls: one CLI process less.)
    const api = await request(`http://127.0.0.1:${svc.adminPort}/v1/promote`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ step: true }),
      reset: true,
    });
    assert.equal(api.statusCode, 200, await api.body.text());
    // The timed pause (4s) does not run while paused.
    await waitStatus(svc, 'the timed pause at 60%', at(60, 6));
    const t0 = Date.now();
    const pauseStart = Date.now();
    ok(await baton(t, svc, ['pause']), 'baton pause');
    const pauseEnd = Date.now();
    assert.ok(pauseEnd - t0 < 3000, `baton pause took ${pauseEnd - t0}ms: too slow for this check`);
    assert.equal((await status(svc)).deployment?.paused, true);
    // Past the moment the 4s pause would have ended, it still holds.
    await holds(svc, t0 + 4000 + 300 - Date.now(), (s) => {
      stays(60, 6)(s);
      assert.equal(s.deployment!.paused, true);
    });
    const resumeStart = Date.now();
    ok(await baton(t, svc, ['resume']), 'baton resume');
    assert.equal((await status(svc)).deployment?.paused, false);
    await waitStatus(svc, 'the last pause at 90%', at(90, 8), 8000);
    const t3 = Date.now();
    // The pause counted only unpaused time: 4s plus at least the time it was held.
    assert.ok(
      t3 - t0 >= 4000 + (resumeStart - pauseEnd) - 300,
      `the timed pause ended ${t3 - t0}ms after it began, held ${resumeStart - pauseEnd}ms (started ${pauseStart - t0}ms in)`,
    );
    ok(await baton(t, svc, ['promote', '--full']), 'baton promote --full');
    const run = await deploying;
    ok(run, 'the canary deploy');
    assert.deepEqual(stepsOf(run), [
      'starting',
      'weight 10',
      'paused',
      'weight 30',
      'paused',
      'weight 60',
      'paused',
      'weight 90',
      'paused',
      'promoting',
      'draining',
      'stopping',
      'finishing',
    ]);
    const promoted = infos(run).filter((m) => m.startsWith('promoted') || m.startsWith('paused by'));
    assert.deepEqual(promoted, [
      'promoted: next step',
      'promoted: next step',
      'paused by `baton pause`; `baton resume` to go on',
      'promoted: skipping to 100%',
    ]);
    assert.equal((await status(svc)).live?.version, '2.0.0');
    assert.deepEqual(await svc.versionsServed(6), ['2.0.0']);
    await svc.noneLeft('1.0.0');

    // `baton abort` during a canary: back on the stable version.
    const aborting = svc.deploy('3.0.0', ['--allow-manual-pause']);
    await waitStatus(svc, 'the 3.0.0 canary at 10%', at(10, 2));
    // At 10% a request without a cookie lands on either side (its bucket is random): it is answered.
    for (const v of await svc.versionsServed(3)) assert.ok(['2.0.0', '3.0.0'].includes(v), v);
    ok(await baton(t, svc, ['abort']), 'baton abort');
    const aborted = await aborting;
    assert.equal(aborted.code, 10, aborted.stdout);
    assert.equal(aborted.done?.result, 'rolled-back');
    assert.match(aborted.done.message, /aborted by tester( \(CI\))?; all traffic back on 2\.0\.0/);
    assert.ok(stepsOf(aborted).includes('rolling-back'));
    const s = await status(svc);
    assert.equal(s.deployment, null);
    assert.equal(s.live?.version, '2.0.0');
    assert.ok(s.live.instances.length === 2 && s.live.instances.every((i) => i.version === '2.0.0'));
    await svc.noneLeft('3.0.0');
    assert.deepEqual(await svc.versionsServed(10), ['2.0.0']);
    const [entry] = await svc.history();
    assert.deepEqual([entry?.version, entry?.result], ['3.0.0', 'rolled-back']);
    // Long pauses leave no trace in the daemon's output (no listener piling up per poll).
    assert.doesNotMatch(svc.daemon.stderr(), /MaxListenersExceeded|memory leak/);
  });
});

describe('A/B deploys', () => {
  before(() => ensureBuilt());

  it('sends the matching requests to the new version for the duration, then promotes it', async (t) => {
    const svc = await serviceWith(t, [
      '  type: ab',
      '  match: [{ header: x-beta, equals: "yes" }]',
      '  duration: 3s',
    ]);
    const deploying = svc.deploy('2.0.0');
    await waitStatus(svc, 'the A/B test to run', (s) => s.deployment?.step === 'paused');
    const versionOf = async (headers: Record<string, string>): Promise<string> => {
      const res = await request(svc.daemon.url, { headers, reset: true });
      await res.body.text();
      assert.equal(res.statusCode, 200);
      return String(res.headers['x-version']);
    };
    const beta: string[] = [];
    const others: string[] = [];
    for (let i = 0; i < 12; i++) {
      beta.push(await versionOf({ 'x-beta': 'yes' }));
      others.push(await versionOf(i % 2 ? { 'x-beta': 'no' } : {}));
    }
    const during = await status(svc);
    assert.equal(during.deployment?.step, 'paused', 'the answers were all within the A/B test');
    assert.equal(during.deployment.strategy, 'ab');
    assert.deepEqual(during.deployment.canary?.rules, [{ header: 'x-beta', equals: 'yes' }]);
    assert.equal(during.deployment.canary?.percent, 0);
    assert.deepEqual([...new Set(beta)], ['2.0.0'], 'x-beta: yes gets the new version');
    assert.deepEqual([...new Set(others)], ['1.0.0'], 'everyone else stays on stable');

    const run = await deploying;
    ok(run, 'baton deploy 2.0.0 (ab)');
    assert.deepEqual(stepsOf(run).slice(0, 4), ['starting', 'weight', 'paused', 'promoting']);
    assert.match(run.events.find((e) => e.step === 'weight')!.message, /header x-beta = yes go to 2\.0\.0/);
    assert.match(run.events.find((e) => e.step === 'paused')!.message, /watching for 3000ms/);
    const s = await status(svc);
    assert.equal(s.live?.version, '2.0.0');
    assert.ok(s.live.instances.length === 2 && s.live.instances.every((i) => i.version === '2.0.0'));
    assert.deepEqual(await svc.versionsServed(6), ['2.0.0']);

    // --strategy canary with an ab config: refused, nothing deployed.
    const r = await svc.deploy('3.0.0', ['--strategy', 'canary']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(
      r.stderr,
      /--strategy canary needs its steps in the config: set strategy\.type: canary \(with steps\)/,
    );
    assert.equal((await svc.history()).length, 2, 'nothing recorded for the refused deploy');
    assert.deepEqual(svc.pids('3.0.0'), []);
  });
});

describe('canary config errors', () => {
  before(() => ensureBuilt());

  const base = [
    'service: web',
    'listen: 127.0.0.1:0',
    'app:',
    '  command: node app.js --port {port}',
    'strategy:',
  ];
  const cases: { strategy: string[]; error: RegExp }[] = [
    {
      strategy: [
        '  type: canary',
        '  steps:',
        '    - setWeight: 50',
        '    - pause: 1s',
        '    - setWeight: 20',
      ],
      error: /baton\.yaml:10:18 strategy\.steps\[2\]\.setWeight: weights only go up \(20 after 50\)/,
    },
    {
      strategy: ['  type: canary', '  steps:', '    - setWeight: 120'],
      error: /baton\.yaml:8:18 strategy\.steps\[0\]\.setWeight: a weight is a percentage: 0 to 100/,
    },
    {
      strategy: ['  type: canary', '  steps:', '    - setHeaderRoute: [{ header: x-beta, contains: "yes" }]'],
      error: /baton\.yaml:8:\d+ strategy\.steps\[0\]\.setHeaderRoute\[0\]\.contains: unknown key "contains"/,
    },
    {
      strategy: ['  type: ab', '  match: [{ cookie: beta, like: "1" }]', '  duration: 5s'],
      error: /baton\.yaml:7:\d+ strategy\.match\[0\]\.like: unknown key "like"/,
    },
    {
      strategy: ['  type: ab', '  match: [{ header: x-beta, equals: "1", regex: "^1$" }]', '  duration: 5s'],
      error: /baton\.yaml:7:\d+ strategy\.match\[0\]: use one of equals, prefix or regex/,
    },
  ];

  it('rejects weights going down, over 100, and unknown match operators, with the line', () => {
    for (const c of cases) {
      const text = [...base, ...c.strategy, ''].join('\n');
      assert.throws(
        () => parseConfigText(text, '/etc/baton/baton.yaml'),
        (err: Error) => {
          assert.match(err.message, c.error);
          assert.match(err.message, /\(1 problem\)/);
          return true;
        },
        c.strategy.join('\n'),
      );
    }
  });

  it('`baton validate` exits 2 on them', async (t) => {
    const dir = tempDir(t);
    const file = writeFile(dir, 'baton.yaml', [...base, ...cases[0]!.strategy, ''].join('\n'));
    const r = await runBaton(t, ['validate', '-c', file]);
    assert.equal(r.code, 2, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stderr, cases[0]!.error);
    assert.equal(r.stdout, '');
  });
});
