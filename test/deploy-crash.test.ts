// Crash safety: the daemon is killed with SIGKILL (BATON_TEST_CRASH_AT) right after it persisted
// a step of a deploy of 1.0.1 over 1.0.0. Started again, it must serve ONE complete release
// (all 1.0.0, or all 1.0.1 once the new version had taken all traffic), say what it found in
// `lastRecovery`, record the interrupted deploy in history, and leave no orphan: every app
// process ever started is in the live set or dead.
import assert from 'node:assert/strict';
import { before, describe, it, type TestContext } from 'node:test';
import { waitFor } from './helpers/index.js';
import { ensureBuilt, runBaton } from './helpers/cli.js';
import { Service, type StatusView } from './helpers/app-daemon.js';
import { RESTARTED_PROOF_NOTE } from '../src/controller/recovery.js';

type Step = 'starting' | 'switching' | 'verifying' | 'draining' | 'finishing' | 'batch' | 'stopping';

const STRATEGY = {
  // verify > 0 so that the deploy goes through 'verifying'; keepOld long, so that the old set is
  // still running as the standby when the daemon dies at 'finishing'.
  'blue-green': ['  type: blue-green', '  verify: 300ms', '  keepOld: 30s'],
  // One at a time: batch, then draining and stopping one old instance.
  rolling: ['  type: rolling', '  maxSurge: 1', '  maxUnavailable: 0'],
} as const;

/** Steps the first deploy of a service goes through: the hook would fire there already. */
const FIRST_DEPLOY_STEPS: readonly Step[] = ['starting', 'finishing'];

async function crashAt(t: TestContext, strategy: keyof typeof STRATEGY, step: Step): Promise<void> {
  const svc = await Service.create(t, { instances: 2, strategy: [...STRATEGY[strategy]] });
  const hook = { BATON_TEST_CRASH_AT: step };

  // 1.0.0 live, under a daemon that has the hook armed.
  if (FIRST_DEPLOY_STEPS.includes(step)) {
    // The first deploy would trip the hook: deploy with a daemon without it, kill that daemon
    // (its instances keep running) and start one with the hook, which adopts them.
    await svc.start();
    await svc.deployApi('1.0.0');
    svc.daemon.child.kill('SIGKILL');
    await svc.daemon.exited;
    await svc.start(hook);
    await waitFor(async () => (await svc.status()).live?.instances.length === 2, {
      what: 'the hooked daemon to adopt 1.0.0',
    });
  } else {
    await svc.start(hook);
    await svc.deployApi('1.0.0');
  }
  assert.deepEqual(await svc.versionsServed(4), ['1.0.0']);
  const oldPids = svc.pids('1.0.0');
  const crashing = svc.daemon;

  const r = await svc.deploy('1.0.1');
  const exit = await crashing.exited;
  assert.equal(exit.signal, 'SIGKILL', 'the hook killed the daemon');
  // The CLI says the daemon went away (exit 9), not a parser error or "start it".
  assert.equal(r.code, 9, `the deploy CLI must fail when the daemon dies:\n${r.stdout}\n${r.stderr}`);
  assert.match(
    r.stderr,
    /^baton: the daemon on 127\.0\.0\.1:\d+ (broke off the answer|closed the connection before it answered) \(\w+\): it stopped or crashed\./,
  );
  assert.match(r.stderr, /`baton status`/);
  assert.equal(r.done, undefined, 'no end of the deploy was reported');

  // Every app process that ever ran: what the state file knows, and what /proc shows.
  const crashed = svc.state();
  assert.equal(crashed.deployment?.step, step, 'the step was persisted before the crash');
  const deployId = crashed.deployment.id;
  const ever = new Set<number>([
    ...svc.pids(),
    ...(crashed.live?.instances ?? []).map((i) => i.pid),
    ...(crashed.standby?.instances ?? []).map((i) => i.pid),
    ...crashed.deployment.started.map((i) => i.pid),
  ]);

  await svc.start();
  const cli = await runBaton(t, ['status', '-c', svc.file, '--json']);
  assert.equal(cli.code, 0, cli.stderr);
  const first = JSON.parse(cli.stdout) as StatusView;
  assert.equal(first.deployment, null, 'no deploy is running after the restart');

  // Once Baton had switched everything to 1.0.1 ('finishing'), 1.0.1 stays; before, back to 1.0.0.
  const expected = step === 'finishing' ? '1.0.1' : '1.0.0';
  const st = await waitFor(
    async () => {
      const s = await svc.status();
      const ok =
        s.live?.version === expected &&
        s.live.instances.length === 2 &&
        s.live.instances.every((i) => i.alive && i.health === 'healthy' && i.version === expected);
      return ok ? s : null;
    },
    { timeout: 8000, what: `one complete, healthy ${expected} release` },
  );
  assert.deepEqual(await svc.versionsServed(10), [expected]);

  assert.match(
    st.lastRecovery ?? '',
    new RegExp(`the daemon stopped during the deploy of 1\\.0\\.1 \\(step ${step}\\)`),
  );
  assert.match(
    st.lastRecovery ?? '',
    expected === '1.0.1' ? /1\.0\.1 had taken all traffic and stays live/ : /back on 1\.0\.0/,
  );
  const entry = (await svc.history()).find((h) => h.id === deployId);
  assert.ok(entry, `history has the interrupted deploy ${deployId}`);
  assert.equal(entry.version, '1.0.1');
  assert.equal(entry.result, expected === '1.0.1' ? 'succeeded' : 'rolled-back');
  // Its counts were the dead controller's: the proof says so, rather than none at all.
  assert.deepEqual([entry.proof?.requests, entry.proof?.note], [null, RESTARTED_PROOF_NOTE]);

  // No orphan: every process ever started is live or dead, and nothing else runs.
  const live = st.live!.instances.map((i) => i.pid).sort((a, b) => a - b);
  await waitFor(() => svc.pids().join() === live.join(), {
    timeout: 5000,
    what: `only the live pids ${live.join(', ')} to run (running: ${svc.pids().join(', ')})`,
  });
  // Nothing restarted that could be adopted: the release it went back to is the one that ran.
  const expectedPids = expected === '1.0.0' ? oldPids : crashed.deployment.started.map((i) => i.pid);
  assert.deepEqual(
    live,
    [...expectedPids].sort((a, b) => a - b),
    'the surviving release was adopted',
  );
  const running = new Set(svc.pids());
  for (const pid of ever) {
    assert.ok(live.includes(pid) || !running.has(pid), `pid ${pid} is an orphan`);
  }
  const persisted = svc.state();
  assert.equal(persisted.deployment, null);
  assert.deepEqual(
    persisted.live?.instances.map((i) => i.pid).sort((a, b) => a - b),
    live,
  );
}

describe('a daemon killed mid-deploy recovers one complete release with no orphan', () => {
  before(() => ensureBuilt());

  for (const step of ['starting', 'switching', 'verifying', 'draining', 'finishing'] as const) {
    it(`blue-green, killed at ${step}`, (t) => crashAt(t, 'blue-green', step));
  }
  for (const step of ['batch', 'draining', 'stopping'] as const) {
    it(`rolling, killed at ${step}`, (t) => crashAt(t, 'rolling', step));
  }
});
