// `baton status` and `baton promote` during a canary, end to end: a real `baton up` daemon with
// the example app, the CLI as real processes, traffic through the proxy for the analysis. Status
// names stable as live until promotion, both sides with their shares, the step, every verdict
// and what comes next; `promote` goes on one step (as in Argo Rollouts), `promote --full` to 100%.
import assert from 'node:assert/strict';
import { before, describe, it, type TestContext } from 'node:test';
import { Agent, request } from 'undici';
import type { PromoteAnswer } from '../src/api/deploy.js';
import type { StatusView } from '../src/api/status.js';
import { ensureBuilt, runBaton, type RunResult } from './helpers/cli.js';
import { canaryStrategy, Service } from './helpers/app-daemon.js';
import { waitFor } from './helpers/index.js';

const baton = (t: TestContext, svc: Service, args: string[]): Promise<RunResult> =>
  runBaton(t, [...args, '-c', svc.file], { env: { BATON_ACTOR: 'tester' }, timeout: 20_000 });

function ok(r: RunResult, what: string): void {
  assert.equal(r.code, 0, `${what} exited ${r.code ?? r.signal}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
}

const waitStatus = (svc: Service, what: string, pred: (s: StatusView) => boolean, timeout = 10_000) =>
  waitFor(
    async () => {
      const s = await svc.status();
      return pred(s) ? s : null;
    },
    { timeout, interval: 50, what },
  );

/** Paced GETs through the proxy on keep-alive connections until stopped (bounded). */
function load(url: string, t: TestContext): void {
  const agent = new Agent({ connections: 2 });
  const deadline = Date.now() + 60_000;
  let stopped = false;
  const worker = async (): Promise<void> => {
    while (!stopped && Date.now() < deadline) {
      await request(url, { dispatcher: agent, headersTimeout: 5000, bodyTimeout: 5000 })
        .then((res) => res.body.text())
        .catch(() => undefined);
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  const workers = [worker(), worker()];
  t.after(async () => {
    stopped = true;
    await Promise.all(workers);
    await agent.close();
  });
}

/** At canary step `index`/6, a pause step waiting, with `percent` to the canary. */
const at = (index: number, percent: number) => (s: StatusView) =>
  s.deployment?.step === 'paused' &&
  s.deployment.canary?.step?.index === index &&
  s.deployment.canary.canary.percent === percent;

describe('baton status and promote during a canary', () => {
  before(() => ensureBuilt());

  it('shows stable as live with both shares, the step, the verdicts and the next action; promote steps, --full finishes', async (t) => {
    const svc = await Service.create(t, {
      instances: 2,
      strategy: canaryStrategy(
        ['setWeight: 20', 'pause: {}', 'setWeight: 50', 'pause: {}', 'setWeight: 80', 'pause: {}'],
        ['  analysis: { interval: 300ms, failureLimit: 2, minRequests: 3, successRate: 95 }'],
      ),
    });
    await svc.start();
    await svc.deployApi('1.0.3');
    load(svc.url, t);
    const deploying = svc.deploy('2.0.0', ['--allow-manual-pause'], 60_000);

    // At 20%, waiting for `baton promote`, with a passing verdict.
    const s = await waitStatus(
      svc,
      'step 2/6 at 20% with a passing verdict',
      (x) => at(2, 20)(x) && Boolean(x.deployment?.canary?.verdicts.some((v) => v.result === 'pass')),
    );
    assert.equal(s.live?.version, '1.0.3', 'stable is live until promotion');
    const c = s.deployment!.canary!;
    assert.deepEqual(
      { stable: c.stable, canary: c.canary, percent: c.percent, step: c.step, paused: c.paused },
      {
        stable: { version: '1.0.3', percent: 80 },
        canary: { version: '2.0.0', percent: 20 },
        percent: 20,
        step: { index: 2, total: 6 },
        paused: false,
      },
    );
    assert.equal(s.deployment!.paused, c.paused);
    assert.equal(
      c.next,
      'waiting for `baton promote` (then step 3/6); `baton promote --full` goes to 100% now',
    );

    // The text output says the same, line by line; --json has the same shape.
    const [text, json] = await Promise.all([baton(t, svc, ['status']), baton(t, svc, ['status', '--json'])]);
    ok(text, 'baton status');
    const out = text.stdout;
    assert.match(out, /^live {5}1\.0\.3 \(stable until 2\.0\.0 is promoted\)$/m, out);
    assert.match(out, /^deploy {3}2\.0\.0 \(canary\) by .+?: paused, [\d.]+s, step 2\/6: paused until/m, out);
    assert.match(out, /^stable {3}1\.0\.3 80%$/m, out);
    assert.match(out, /^canary {3}2\.0\.0 20%$/m, out);
    assert.match(out, /^step {5}2\/6$/m, out);
    assert.match(out, /^analysis \d+ verdict\(s\): [1-9]\d* pass, 0 fail, \d+ inconclusive/m, out);
    assert.match(out, /^verdict {2}\S+ pass: success rate 100%, p99 [\d.]+ms over \d+ request\(s\)$/m, out);
    assert.match(
      out,
      /^next {5}waiting for `baton promote` \(then step 3\/6\); `baton promote --full` goes to 100% now$/m,
      out,
    );
    ok(json, 'baton status --json');
    const shown = JSON.parse(json.stdout) as StatusView;
    assert.equal(shown.live?.version, '1.0.3');
    assert.deepEqual(shown.deployment?.canary?.stable, { version: '1.0.3', percent: 80 });
    assert.deepEqual(shown.deployment.canary.step, { index: 2, total: 6 });

    // `baton promote`: on to the next step, not to 100%.
    const promoted = await baton(t, svc, ['promote']);
    ok(promoted, 'baton promote');
    assert.equal(promoted.stdout, '2.0.0: on to the next step\n');
    const s4 = await waitStatus(svc, 'step 4/6 at 50%', at(4, 50));
    assert.deepEqual(s4.deployment?.canary?.stable, { version: '1.0.3', percent: 50 });
    assert.equal(s4.live?.version, '1.0.3');
    assert.equal((await svc.status()).deployment?.canary?.step?.index, 4, 'it stays at step 4');

    // Held by `baton pause`: said in the JSON and in the text, with what to do.
    ok(await baton(t, svc, ['pause']), 'baton pause');
    const held = await svc.status();
    assert.equal(held.deployment?.canary?.paused, true);
    assert.equal(held.deployment.canary.next, 'held by `baton pause`: `baton resume` goes on');
    const heldText = await baton(t, svc, ['status']);
    ok(heldText, 'baton status (held)');
    assert.match(heldText.stdout, /^step {5}4\/6 \(held by `baton pause`\)$/m, heldText.stdout);
    assert.match(heldText.stdout, /^next {5}held by `baton pause`: `baton resume` goes on$/m);
    ok(await baton(t, svc, ['resume']), 'baton resume');

    // --step is the deprecated spelling of the default; with --full it is a usage error.
    const both = await baton(t, svc, ['promote', '--full', '--step']);
    assert.equal(both.code, 2, both.stdout + both.stderr);
    assert.match(both.stderr, /--full and --step contradict each other/);
    const api = await request(`http://127.0.0.1:${svc.adminPort}/v1/promote`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ full: true, step: true }),
      reset: true,
    });
    assert.equal(api.statusCode, 400, await api.body.text());
    assert.equal((await svc.status()).deployment?.canary?.step?.index, 4, 'a refused promote moves nothing');
    const step = await baton(t, svc, ['promote', '--step']);
    ok(step, 'baton promote --step');
    assert.match(step.stderr, /--step is deprecated, it is the default now/);
    const s6 = await waitStatus(svc, 'step 6/6 at 80%', at(6, 80));
    assert.equal(s6.deployment?.canary?.next, 'waiting for `baton promote` (then promotion to 100%)');

    // `baton promote --full`: the new version takes all traffic now.
    const full = await baton(t, svc, ['promote', '--full', '--json']);
    ok(full, 'baton promote --full');
    const answer = JSON.parse(full.stdout) as PromoteAnswer;
    assert.deepEqual([answer.version, answer.full, answer.step], ['2.0.0', true, false]);
    const run = await deploying;
    ok(run, 'the canary deploy');
    const infos = run.events.filter((e) => e.kind === 'info').map((e) => e.message);
    assert.deepEqual(
      infos.filter((m) => m.startsWith('promoted')),
      ['promoted: next step', 'promoted: next step', 'promoted: skipping to 100%'],
    );
    const after = await svc.status();
    assert.equal(after.deployment, null);
    assert.equal(after.live?.version, '2.0.0');
  });

  it('`baton promote --full` from the first pause skips the remaining steps', async (t) => {
    const svc = await Service.create(t, {
      instances: 2,
      strategy: [
        '  type: canary',
        '  steps:',
        '    - setWeight: 10',
        '    - pause: {}',
        '    - setWeight: 50',
        '    - pause: {}',
      ],
    });
    await svc.start();
    await svc.deployApi('1.0.3');
    const deploying = svc.deploy('2.0.0', ['--allow-manual-pause'], 60_000);
    const s = await waitStatus(
      svc,
      'step 2/4 at 10%',
      (x) => x.deployment?.step === 'paused' && x.deployment.canary?.step?.index === 2,
    );
    assert.deepEqual(s.deployment?.canary?.stable, { version: '1.0.3', percent: 90 });
    // No analysis configured: no verdict, said plainly.
    const text = await baton(t, svc, ['status']);
    ok(text, 'baton status');
    assert.match(
      text.stdout,
      /^analysis no verdict \(none configured, or its first interval not over\)$/m,
      text.stdout,
    );
    const full = await baton(t, svc, ['promote', '--full']);
    ok(full, 'baton promote --full');
    assert.equal(full.stdout, '2.0.0: promoting to 100%\n');
    const run = await deploying;
    ok(run, 'the canary deploy');
    const weights = run.events.filter((e) => e.kind === 'step' && e.step === 'weight').map((e) => e.message);
    assert.equal(weights.length, 1, `no step after the promotion: ${weights.join(' | ')}`);
    assert.equal((await svc.status()).live?.version, '2.0.0');
  });
});
