// Each deploy strategy against a fake DeployContext (test/helpers/fake-deploy-context.ts): the
// order of a deploy (start, wait healthy, one swap, drain, stop), what the route table holds at
// each swap, and how each failure is rolled back. Milliseconds, no process: the real context is
// exercised end to end by deploy.test.ts, canary.test.ts and the proofs.
import assert from 'node:assert/strict';
import { after as afterAll, before, describe, it } from 'node:test';
import { appSchema, strategySchema, type AppConfig, type StrategyConfig } from '../src/config/schema.js';
import type { StatsSnapshot } from '../src/edge/edge.js';
import { blueGreen, switchBack } from '../src/strategies/blue-green.js';
import { canary } from '../src/strategies/canary.js';
import { recreate } from '../src/strategies/recreate.js';
import { rolling } from '../src/strategies/rolling.js';
import { DeployAborted, DeployFailure, resolveCount, startAlone } from '../src/strategies/strategy.js';
import { FakeContext, until, type Script } from './helpers/fake-deploy-context.js';

const app = (instances: number): AppConfig => appSchema.parse({ command: 'node app.js', instances });
// Through the schema, as baton.yaml is: durations in ms, defaults filled in.
const config = (input: Record<string, unknown>): StrategyConfig => strategySchema.parse(input);

/** A deploy of v2 over `live` instances of v1. */
const deploy = (instances: number, script: Script = {}, live = instances): FakeContext =>
  new FakeContext(app(instances), 'v2', 'v1', live, script);

async function failureOf(run: Promise<void>): Promise<Error> {
  try {
    await run;
  } catch (err) {
    assert.ok(err instanceof Error, `threw ${String(err)}`);
    return err;
  }
  return assert.fail('the deploy succeeded');
}

function assertRolledBack(err: Error, message: RegExp): asserts err is DeployFailure {
  assert.ok(err instanceof DeployFailure, `not a DeployFailure: ${err.message}`);
  assert.equal(err.rolledBack, true);
  assert.match(err.message, message);
}

const boom = (what: string) => (): never => {
  throw new Error(what);
};
const stepsOf = (ctx: FakeContext): string[] => ctx.steps.map((s) => s.step);
/** The moves after the first one matching `line`. */
const after = (ctx: FakeContext, line: string): string[] => {
  const moves = ctx.moves();
  const i = moves.indexOf(line);
  assert.notEqual(i, -1, `no "${line}" in ${moves.join(', ')}`);
  return moves.slice(i + 1);
};

describe('blue-green', () => {
  const bg = (input: Record<string, unknown> = {}): StrategyConfig =>
    config({ type: 'blue-green', keepOld: '30s', verify: '5s', ...input });

  it('starts the new set, switches to it with the old as backup, verifies, then keeps the old set', async () => {
    const ctx = deploy(2);
    await blueGreen(ctx, bg());
    assert.deepEqual(ctx.moves(), [
      'start 2 v2 = v2.1 v2.2',
      'route v2.1 v2.2 | backup v1.1 v1.2',
      'switched',
      'verify v2.1 v2.2 for 5000',
      'route v2.1 v2.2',
      'drain v1.1 v1.2',
      'keep v1.1 v1.2 for 30000',
    ]);
    assert.deepEqual(stepsOf(ctx), ['starting', 'switching', 'verifying', 'draining']);
    assert.deepEqual(ctx.table(), ['v2.1', 'v2.2']);
    // Kept for an instant rollback: still running, out of the table.
    assert.deepEqual(ctx.runningIds(), ['v1.1', 'v1.2', 'v2.1', 'v2.2']);
    assert.deepEqual(ctx.violations, []);
  });

  it('with keepOld 0 stops the drained old set, and with verify 0 does not watch', async () => {
    const ctx = deploy(2);
    await blueGreen(ctx, bg({ keepOld: '0s', verify: '0s' }));
    assert.deepEqual(ctx.moves(), [
      'start 2 v2 = v2.1 v2.2',
      'route v2.1 v2.2 | backup v1.1 v1.2',
      'switched',
      'route v2.1 v2.2',
      'drain v1.1 v1.2',
      'stop v1.1 v1.2',
    ]);
    assert.deepEqual(stepsOf(ctx), ['starting', 'switching', 'draining', 'stopping']);
    assert.deepEqual(ctx.runningIds(), ['v2.1', 'v2.2']);
    assert.deepEqual(ctx.violations, []);
  });

  it('a verify failure after the switch routes back to the old set and stops the new one', async () => {
    const ctx = deploy(2, { verify: boom('v2.2 exited with code 1') });
    const err = await failureOf(blueGreen(ctx, bg()));
    assertRolledBack(err, /^v2\.2 exited with code 1; traffic switched back to v1$/);
    assert.equal((err.cause as Error).message, 'v2.2 exited with code 1');
    assert.deepEqual(after(ctx, 'verify v2.1 v2.2 for 5000'), [
      'route v1.1 v1.2',
      'drain v2.1 v2.2',
      'stop v2.1 v2.2',
    ]);
    assert.equal(stepsOf(ctx).at(-1), 'rolling-back');
    assert.deepEqual(ctx.table(), ['v1.1', 'v1.2']);
    assert.deepEqual(ctx.runningIds(), ['v1.1', 'v1.2']);
    assert.deepEqual(ctx.violations, []);
  });

  it('a start failure leaves the routes untouched and is not a rollback', async () => {
    const ctx = deploy(2, { start: boom('v2.1 not ready after 60s') });
    const err = await failureOf(blueGreen(ctx, bg()));
    assert.ok(!(err instanceof DeployFailure));
    assert.equal(err.message, 'v2.1 not ready after 60s');
    assert.deepEqual(ctx.moves(), ['start 2 v2 failed']);
    assert.deepEqual(ctx.swaps, []);
    assert.deepEqual(ctx.table(), ['v1.1', 'v1.2']);
  });

  it('a postSwitch failure (switched) rolls back before any verify', async () => {
    const ctx = deploy(2, { switched: boom('postSwitch hook exited 3') });
    const err = await failureOf(blueGreen(ctx, bg()));
    assertRolledBack(err, /^postSwitch hook exited 3; traffic switched back to v1$/);
    assert.deepEqual(ctx.moves(), [
      'start 2 v2 = v2.1 v2.2',
      'route v2.1 v2.2 | backup v1.1 v1.2',
      'switched',
      'route v1.1 v1.2',
      'drain v2.1 v2.2',
      'stop v2.1 v2.2',
    ]);
    assert.deepEqual(ctx.runningIds(), ['v1.1', 'v1.2']);
    assert.deepEqual(ctx.violations, []);
  });

  it('`baton abort` during verify rolls back at the check after it', async () => {
    let ctx: FakeContext | null = null;
    ctx = deploy(2, { verify: () => ctx?.abort('alice') });
    const err = await failureOf(blueGreen(ctx, bg()));
    assertRolledBack(err, /^aborted by alice; traffic switched back to v1$/);
    assert.ok(err.cause instanceof DeployAborted);
    assert.deepEqual(after(ctx, 'verify v2.1 v2.2 for 5000'), [
      'route v1.1 v1.2',
      'drain v2.1 v2.2',
      'stop v2.1 v2.2',
    ]);
  });

  // Today's behaviour: before the switch, the strategy leaves the set it started running; the
  // controller's settleFailure stops what a deploy started and left outside the live set.
  it('an abort before the switch, or an edge refusing it, throws with the routes untouched', async () => {
    let aborted: FakeContext | null = null;
    aborted = deploy(2, { start: () => aborted?.abort('bob') });
    const err = await failureOf(blueGreen(aborted, bg()));
    assert.ok(err instanceof DeployAborted);
    assert.deepEqual(aborted.moves(), ['start 2 v2 = v2.1 v2.2']);
    assert.deepEqual(aborted.table(), ['v1.1', 'v1.2']);
    assert.deepEqual(aborted.runningIds(), ['v1.1', 'v1.2', 'v2.1', 'v2.2']);

    const refused = deploy(2, { route: boom('nginx -s reload exited 1') });
    const err2 = await failureOf(blueGreen(refused, bg()));
    assert.ok(!(err2 instanceof DeployFailure));
    assert.equal(err2.message, 'nginx -s reload exited 1');
    assert.deepEqual(refused.moves(), [
      'start 2 v2 = v2.1 v2.2',
      'route v2.1 v2.2 | backup v1.1 v1.2 refused',
    ]);
    assert.deepEqual(refused.table(), ['v1.1', 'v1.2']);
    assert.deepEqual(refused.runningIds(), ['v1.1', 'v1.2', 'v2.1', 'v2.2']);
  });

  it('switchBack routes to the kept set at once, drains the current one and keeps it in turn', async () => {
    // `baton rollback` to the kept v1 set: the context deploys v1 over live v2.
    const ctx = new FakeContext(app(2), 'v1', 'v2', 2);
    const kept = await ctx.start(2, 'v1');
    ctx.calls.length = 0;
    await switchBack(ctx, kept, 30_000);
    assert.deepEqual(ctx.moves(), ['route v1.1 v1.2', 'drain v2.1 v2.2', 'keep v2.1 v2.2 for 30000']);
    assert.deepEqual(stepsOf(ctx), ['switching', 'draining']);
    assert.deepEqual(ctx.violations, []);
  });
});

describe('rolling', () => {
  const roll = (input: Record<string, unknown> = {}): StrategyConfig => config({ type: 'rolling', ...input });
  const batches = (ctx: FakeContext): number[] =>
    ctx
      .moves()
      .filter((m) => m.startsWith('start '))
      .map((m) => Number(m.split(' ')[1]));
  const minServing = (ctx: FakeContext): number => Math.min(...ctx.swaps.map((s) => s.table.length));

  it('resolves maxSurge up and maxUnavailable down, as Kubernetes', () => {
    assert.equal(resolveCount('25%', 3, true), 1);
    assert.equal(resolveCount('25%', 3, false), 0);
    assert.equal(resolveCount('50%', 5, true), 3);
    assert.equal(resolveCount('50%', 5, false), 2);
    assert.equal(resolveCount('100%', 4, false), 4);
    assert.equal(resolveCount(2, 10, false), 2);
  });

  it('replaces 4 instances in 2 batches: one out of rotation first, then two started, one retired', async () => {
    const ctx = deploy(4);
    await rolling(ctx, roll()); // 25% / 25% of 4: surge 1, unavailable 1
    assert.deepEqual(ctx.moves(), [
      'route v1.2 v1.3 v1.4',
      'drain v1.1',
      'stop v1.1',
      'start 2 v2 = v2.1 v2.2',
      'route v1.2 v1.3 v1.4 v2.1 v2.2',
      'route v1.3 v1.4 v2.1 v2.2',
      'drain v1.2',
      'stop v1.2',
      'route v1.4 v2.1 v2.2',
      'drain v1.3',
      'stop v1.3',
      'start 2 v2 = v2.3 v2.4',
      'route v1.4 v2.1 v2.2 v2.3 v2.4',
      'route v2.1 v2.2 v2.3 v2.4',
      'drain v1.4',
      'stop v1.4',
      'switched',
    ]);
    assert.deepEqual(
      ctx.steps.filter((s) => s.step === 'batch').map((s) => s.detail),
      [
        'batch 1: starting 2 instance(s) of v2 (0/4 done)',
        'batch 2: starting 2 instance(s) of v2 (2/4 done)',
      ],
    );
    assert.deepEqual(ctx.runningIds(), ['v2.1', 'v2.2', 'v2.3', 'v2.4']);
    assert.deepEqual(ctx.violations, []);
  });

  const cases: [
    instances: number,
    maxSurge: number | string,
    maxUnavailable: number | string,
    batches: number[],
    minServing: number,
    peak: number,
  ][] = [
    [4, '25%', '25%', [2, 2], 3, 5],
    [4, 0, 1, [1, 1, 1, 1], 3, 4],
    [4, 0, 0, [1, 1, 1, 1], 4, 5], // both 0 would never move: surge 1, as Kubernetes
    [4, '50%', '50%', [4], 2, 6],
    [4, '100%', 0, [4], 4, 8], // blue-green by another name
    [4, 0, '100%', [4], 0, 4], // recreate by another name
    [3, '25%', '25%', [1, 1, 1], 3, 4], // 0.75: surge rounds up to 1, unavailable down to 0
    [10, '25%', '25%', [5, 5], 8, 13],
    [5, 2, 1, [3, 2], 4, 7],
    [1, '25%', '25%', [1], 1, 2],
  ];
  for (const [n, maxSurge, maxUnavailable, want, serving, peak] of cases) {
    it(`instances ${n}, maxSurge ${maxSurge}, maxUnavailable ${maxUnavailable}: batches ${want.join('+')}`, async () => {
      const ctx = deploy(n);
      await rolling(ctx, roll({ maxSurge, maxUnavailable }));
      assert.deepEqual(batches(ctx), want);
      let surge = resolveCount(maxSurge, n, true);
      const unavailable = resolveCount(maxUnavailable, n, false);
      if (surge === 0 && unavailable === 0) surge = 1;
      // At every swap at least n - maxUnavailable serve; never more than n + maxSurge run.
      assert.equal(minServing(ctx), serving);
      assert.ok(serving >= n - unavailable);
      assert.equal(ctx.peakRunning, peak);
      assert.ok(peak <= n + surge);
      assert.ok(ctx.swaps.every((s) => s.running <= n + surge));
      assert.equal(ctx.table().length, n);
      assert.ok(ctx.table().every((id) => id.startsWith('v2.')));
      assert.equal(ctx.runningIds().length, n);
      assert.deepEqual(ctx.violations, []);
    });
  }

  it('with more live instances than configured (instances lowered), retires the excess first', async () => {
    const ctx = deploy(2, {}, 6);
    await rolling(ctx, roll());
    assert.deepEqual(ctx.moves().slice(0, 3), [
      'route v1.5 v1.6',
      'drain v1.1 v1.2 v1.3 v1.4',
      'stop v1.1 v1.2 v1.3 v1.4',
    ]);
    assert.deepEqual(batches(ctx), [1, 1]);
    assert.deepEqual(ctx.table(), ['v2.1', 'v2.2']);
    assert.deepEqual(ctx.violations, []);
  });

  it('a batch failing minReady rolls the updated instances back, starting the previous version again', async () => {
    const ctx = deploy(4, {
      verify: (ids) => {
        if (ids.includes('v2.3')) throw new Error('v2.3 failed 3 health checks');
      },
    });
    const err = await failureOf(rolling(ctx, roll({ minReady: '10ms' })));
    assertRolledBack(err, /^v2\.3 failed 3 health checks; rolled back to v1$/);
    assert.deepEqual(ctx.moves(), [
      'route v1.2 v1.3 v1.4',
      'drain v1.1',
      'stop v1.1',
      'start 2 v2 = v2.1 v2.2',
      'route v1.2 v1.3 v1.4 v2.1 v2.2',
      'verify v2.1 v2.2 for 10',
      'route v1.3 v1.4 v2.1 v2.2',
      'drain v1.2',
      'stop v1.2',
      'route v1.4 v2.1 v2.2',
      'drain v1.3',
      'stop v1.3',
      'start 2 v2 = v2.3 v2.4',
      'route v1.4 v2.1 v2.2 v2.3 v2.4',
      'verify v2.3 v2.4 for 10',
      // Back the same way, batch by batch: the stopped v1 instances are gone, new ones start.
      'route v1.4 v2.2 v2.3 v2.4',
      'drain v2.1',
      'stop v2.1',
      'start 1 v1 = v1.5',
      'route v1.4 v1.5 v2.2 v2.3 v2.4',
      'verify v1.5 for 10',
      'route v1.4 v1.5 v2.3 v2.4',
      'drain v2.2',
      'stop v2.2',
      'route v1.4 v1.5 v2.4',
      'drain v2.3',
      'stop v2.3',
      'start 2 v1 = v1.6 v1.7',
      'route v1.4 v1.5 v1.6 v1.7 v2.4',
      'verify v1.6 v1.7 for 10',
      'route v1.4 v1.5 v1.6 v1.7',
      'drain v2.4',
      'stop v2.4',
    ]);
    assert.equal(ctx.steps.filter((s) => s.step === 'rolling-back').length, 1);
    assert.ok(minServing(ctx) >= 3);
    assert.ok(ctx.peakRunning <= 5);
    assert.deepEqual(ctx.runningIds(), ['v1.4', 'v1.5', 'v1.6', 'v1.7']);
    assert.deepEqual(ctx.violations, []);
  });

  it('a first batch that fails to start: the old instance taken out for room is started again, 4 of 4 serve', async () => {
    const ctx = deploy(4, {
      start: (_c, version) => (version === 'v2' ? boom('v2.1 not ready after 60s')() : undefined),
    });
    const err = await failureOf(rolling(ctx, roll()));
    // Not a rollback (nothing of v2 served), but said: the old version is whole again.
    assert.ok(err instanceof DeployFailure && !err.rolledBack, err.message);
    assert.equal(
      err.message,
      'v2.1 not ready after 60s; started 1 instance(s) of v1 again in place of those taken out to make room',
    );
    assert.deepEqual(ctx.moves(), [
      'route v1.2 v1.3 v1.4',
      'drain v1.1',
      'stop v1.1',
      'start 2 v2 failed',
      'start 1 v1 = v1.5',
      'route v1.2 v1.3 v1.4 v1.5',
    ]);
    assert.deepEqual(ctx.table(), ['v1.2', 'v1.3', 'v1.4', 'v1.5']);
    assert.deepEqual(ctx.violations, []);
  });

  it('a first batch that fails, and the old version cannot start again either: both said, what serves kept', async () => {
    const ctx = deploy(4, { start: boom('no free port') });
    const err = await failureOf(rolling(ctx, roll()));
    assert.match(
      err.message,
      /^no free port; v1 serves on 3 of 4 instance\(s\): starting the others again failed too \(no free port\)$/,
    );
    assert.deepEqual(ctx.table(), ['v1.2', 'v1.3', 'v1.4']);
  });

  it('a later batch that fails to start rolls back without going under n - maxUnavailable', async () => {
    const ctx = deploy(4, {
      start: (_count, version, nth) => (nth === 2 ? boom(`${version} port in use`)() : undefined),
    });
    const err = await failureOf(rolling(ctx, roll()));
    assertRolledBack(err, /^v2 port in use; rolled back to v1$/);
    // 3 serve when it fails (one v1 was out for room): the way back starts v1 within maxSurge
    // before it takes anything out.
    assert.deepEqual(after(ctx, 'start 2 v2 failed'), [
      'start 2 v1 = v1.5 v1.6',
      'route v1.4 v1.5 v1.6 v2.1 v2.2',
      'route v1.4 v1.5 v1.6 v2.2',
      'drain v2.1',
      'stop v2.1',
      'route v1.4 v1.5 v1.6',
      'drain v2.2',
      'stop v2.2',
      'start 1 v1 = v1.7',
      'route v1.4 v1.5 v1.6 v1.7',
    ]);
    assert.equal(minServing(ctx), 3);
    assert.ok(ctx.peakRunning <= 5);
    assert.deepEqual(ctx.table(), ['v1.4', 'v1.5', 'v1.6', 'v1.7']);
    assert.deepEqual(ctx.violations, []);
  });

  it('an edge refusing the first swap fails with nothing drained or stopped', async () => {
    const ctx = deploy(4, { route: boom('haproxy runtime API: no such server') });
    const err = await failureOf(rolling(ctx, roll()));
    assert.ok(!(err instanceof DeployFailure));
    assert.deepEqual(ctx.moves(), ['route v1.2 v1.3 v1.4 refused']);
    assert.deepEqual(ctx.table(), ['v1.1', 'v1.2', 'v1.3', 'v1.4']);
    assert.deepEqual(ctx.runningIds(), ['v1.1', 'v1.2', 'v1.3', 'v1.4']);
  });

  it('a postSwitch failure after the last batch rolls the whole set back to the previous version', async () => {
    const ctx = deploy(2, { switched: boom('smoke test failed') });
    const err = await failureOf(rolling(ctx, roll()));
    assertRolledBack(err, /^smoke test failed; rolled back to v1$/);
    assert.deepEqual(after(ctx, 'switched'), [
      'start 1 v1 = v1.3',
      'route v1.3 v2.1 v2.2',
      'route v1.3 v2.2',
      'drain v2.1',
      'stop v2.1',
      'start 1 v1 = v1.4',
      'route v1.3 v1.4 v2.2',
      'route v1.3 v1.4',
      'drain v2.2',
      'stop v2.2',
    ]);
    assert.ok(minServing(ctx) >= 2);
    assert.deepEqual(ctx.violations, []);
  });

  it('`baton abort` stops at the next batch and rolls back, the roll back itself not abortable', async () => {
    let ctx: FakeContext | null = null;
    ctx = deploy(4, { start: (_c, version) => (version === 'v2' ? ctx?.abort('carol') : undefined) });
    const err = await failureOf(rolling(ctx, roll()));
    assertRolledBack(err, /^aborted by carol; rolled back to v1$/);
    assert.deepEqual(batches(ctx), [2, 2]); // one batch of v2, then one of v1 back
    assert.deepEqual(ctx.table(), ['v1.3', 'v1.4', 'v1.5', 'v1.6']);
    assert.deepEqual(ctx.runningIds(), ['v1.3', 'v1.4', 'v1.5', 'v1.6']);
    assert.deepEqual(ctx.violations, []);
  });
});

describe('canary', () => {
  const steps = [{ setWeight: 10 }, { pause: '1m' }, { setWeight: 50 }, { pause: '30s' }];
  const can = (input: Record<string, unknown> = {}): StrategyConfig =>
    config({ type: 'canary', steps, ...input });
  const splits = (ctx: FakeContext): number[] =>
    ctx.swaps.flatMap((s) => (s.split ? [s.split.canaryPercent] : []));

  it('walks the steps (weights, pauses), then starts the rest, routes the new set alone, drains and stops stable', async () => {
    const ctx = deploy(3);
    await canary(ctx, can());
    assert.deepEqual(ctx.moves(), [
      'start 1 v2 = v2.1',
      'split 0% v1.1 v1.2 v1.3 | canary v2.1',
      'split 10% v1.1 v1.2 v1.3 | canary v2.1',
      'wait 60000',
      'split 50% v1.1 v1.2 v1.3 | canary v2.1',
      'wait 30000',
      'start 2 v2 = v2.2 v2.3',
      'route v2.1 v2.2 v2.3',
      'switched',
      'drain v1.1 v1.2 v1.3',
      'stop v1.1 v1.2 v1.3',
    ]);
    assert.deepEqual(stepsOf(ctx), [
      'starting',
      'weight',
      'paused',
      'weight',
      'paused',
      'promoting',
      'draining',
      'stopping',
    ]);
    assert.equal(ctx.steps[2]?.detail, 'step 2/4: watching for 60000ms');
    assert.deepEqual(ctx.swaps[1]?.split, { canaryPercent: 10, rules: [], sticky: 'baton' });
    assert.deepEqual(ctx.runningIds(), ['v2.1', 'v2.2', 'v2.3']);
    assert.deepEqual(ctx.violations, []);
  });

  it('starts the canaries on the given hosts, never more than instances, and the rest anywhere', async () => {
    const ctx = deploy(2);
    await canary(
      ctx,
      can({ canaryInstances: 3, hosts: ['b'], steps: [{ setWeight: 100 }], sticky: { header: 'x-user' } }),
    );
    assert.deepEqual(ctx.moves().slice(0, 3), [
      'start 2 v2 on b = v2.1 v2.2',
      'split 0% v1.1 v1.2 | canary v2.1 v2.2',
      'split 100% v1.1 v1.2 | canary v2.1 v2.2',
    ]);
    assert.deepEqual(ctx.swaps[1]?.split?.sticky, { header: 'x-user' });
    // All instances were canaries: the promotion starts none.
    assert.equal(ctx.moves().filter((m) => m.startsWith('start ')).length, 1);
    assert.deepEqual(ctx.table(), ['v2.1', 'v2.2']);
  });

  it('a pause without duration waits for `baton promote --step`, which goes on to the next step only', async () => {
    const ctx = deploy(2);
    const run = canary(
      ctx,
      can({ steps: [{ setWeight: 10 }, { pause: {} }, { setWeight: 50 }, { pause: {} }] }),
    );
    await until(() => ctx.waiting(), 'the first pause');
    assert.equal(ctx.moves().at(-1), 'wait null');
    assert.equal(ctx.steps.at(-1)?.detail, 'step 2/4: paused until `baton promote`');
    assert.deepEqual(splits(ctx), [0, 10]);
    ctx.promoteNow('step');
    await until(() => ctx.waiting() && splits(ctx).length === 3, 'the second pause');
    assert.deepEqual(splits(ctx), [0, 10, 50]);
    assert.ok(!ctx.moves().some((m) => m.startsWith('route ')));
    ctx.promoteNow('step');
    await run;
    assert.deepEqual(after(ctx, 'split 50% v1.1 v1.2 | canary v2.1'), [
      'wait null',
      'start 1 v2 = v2.2',
      'route v2.1 v2.2',
      'switched',
      'drain v1.1 v1.2',
      'stop v1.1 v1.2',
    ]);
  });

  it('`baton promote` (full) during a pause skips the remaining steps to 100%', async () => {
    const ctx = deploy(2);
    const run = canary(
      ctx,
      can({ steps: [{ setWeight: 10 }, { pause: {} }, { setWeight: 50 }, { pause: '1m' }] }),
    );
    await until(() => ctx.waiting(), 'the pause');
    ctx.promoteNow('full');
    await run;
    assert.deepEqual(splits(ctx), [0, 10]);
    assert.deepEqual(after(ctx, 'wait null'), [
      'start 1 v2 = v2.2',
      'route v2.1 v2.2',
      'switched',
      'drain v1.1 v1.2',
      'stop v1.1 v1.2',
    ]);
  });

  it('`baton promote` (full) while a weight is applied ends the steps after it, with no wait', async () => {
    let ctx: FakeContext | null = null;
    ctx = deploy(2, {
      routeSplit: (split) => (split.canaryPercent === 10 ? ctx?.promoteNow('full') : undefined),
    });
    await canary(ctx, can());
    assert.deepEqual(splits(ctx), [0, 10]);
    assert.ok(!ctx.moves().some((m) => m.startsWith('wait ')));
    assert.deepEqual(ctx.table(), ['v2.1', 'v2.2']);
  });

  it('`baton pause` holds a timed pause until resumed', async () => {
    const ctx = deploy(2);
    ctx.pause(true);
    const run = canary(ctx, can());
    await until(() => ctx.waiting(), 'the pause');
    // Let it spin: nothing moves while paused.
    for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
    assert.equal(ctx.moves().at(-1), 'wait 60000');
    assert.deepEqual(splits(ctx), [0, 10]);
    ctx.pause(false);
    await run;
    assert.deepEqual(splits(ctx), [0, 10, 50]);
    assert.deepEqual(ctx.table(), ['v2.1', 'v2.2']);
  });

  it('`baton abort` while paused routes everything back to stable and stops the canaries', async () => {
    const ctx = deploy(3);
    ctx.pause(true);
    const run = canary(ctx, can());
    await until(() => ctx.waiting(), 'the pause');
    ctx.abort('dave');
    const err = await failureOf(run);
    assertRolledBack(err, /^aborted by dave; all traffic back on v1$/);
    assert.deepEqual(after(ctx, 'wait 60000'), ['route v1.1 v1.2 v1.3', 'drain v2.1', 'stop v2.1']);
    assert.equal(ctx.steps.at(-1)?.detail, 'all traffic back to v1: aborted by dave');
    assert.deepEqual(ctx.runningIds(), ['v1.1', 'v1.2', 'v1.3']);
    assert.deepEqual(ctx.violations, []);
  });

  it('`baton abort` between steps rolls back at the next one', async () => {
    let ctx: FakeContext | null = null;
    ctx = deploy(2, { routeSplit: (split) => (split.canaryPercent === 10 ? ctx?.abort('erin') : undefined) });
    const err = await failureOf(canary(ctx, can()));
    assertRolledBack(err, /^aborted by erin; all traffic back on v1$/);
    assert.deepEqual(after(ctx, 'split 10% v1.1 v1.2 | canary v2.1'), [
      'route v1.1 v1.2',
      'drain v2.1',
      'stop v2.1',
    ]);
  });

  it('a canary that fails to start leaves the routes untouched', async () => {
    const ctx = deploy(2, { start: boom('v2.1 not ready after 60s') });
    const err = await failureOf(canary(ctx, can()));
    assert.ok(!(err instanceof DeployFailure));
    assert.deepEqual(ctx.moves(), ['start 1 v2 failed']);
    assert.deepEqual(ctx.swaps, []);
  });

  it('an edge refusing the first split stops the canary: a failure, not a rollback (nothing moved)', async () => {
    const ctx = deploy(2, { routeSplit: boom('edge cannot split') });
    const err = await failureOf(canary(ctx, can()));
    assert.ok(err instanceof DeployFailure && !err.rolledBack, err.message);
    assert.equal(err.message, 'edge cannot split; no traffic reached v2; v1 serves as before');
    assert.deepEqual(ctx.moves(), [
      'start 1 v2 = v2.1',
      'split 0% v1.1 v1.2 | canary v2.1 refused',
      'route v1.1 v1.2',
      'drain v2.1',
      'stop v2.1',
    ]);
    assert.deepEqual(ctx.violations, []);
  });

  it('the rest failing to start at promotion sends all traffic back to stable', async () => {
    const ctx = deploy(3, { start: (_c, _v, nth) => (nth === 2 ? boom('out of ports')() : undefined) });
    const err = await failureOf(canary(ctx, can()));
    assertRolledBack(err, /^out of ports; all traffic back on v1$/);
    assert.deepEqual(after(ctx, 'start 2 v2 failed'), ['route v1.1 v1.2 v1.3', 'drain v2.1', 'stop v2.1']);
    assert.deepEqual(ctx.runningIds(), ['v1.1', 'v1.2', 'v1.3']);
  });

  it('a postSwitch failure after promotion routes back to the retired stable set and stops the whole new one', async () => {
    const ctx = deploy(3, { switched: boom('postSwitch hook exited 1') });
    const err = await failureOf(canary(ctx, can()));
    assertRolledBack(err, /^postSwitch hook exited 1; all traffic back on v1$/);
    assert.deepEqual(after(ctx, 'switched'), [
      'route v1.1 v1.2 v1.3',
      'drain v2.1 v2.2 v2.3',
      'stop v2.1 v2.2 v2.3',
    ]);
    assert.deepEqual(ctx.runningIds(), ['v1.1', 'v1.2', 'v1.3']);
    assert.deepEqual(ctx.violations, []);
  });

  describe('analysis', () => {
    // The analysis timer is unref'd (it must not keep a daemon alive); with nothing else
    // pending, the test process would exit mid-canary. Real time here is a few 2ms intervals.
    // A check that never concludes fails the test rather than hanging the file.
    const BOUNDED = { timeout: 2000 };
    let keepAlive: NodeJS.Timeout | undefined;
    before(() => void (keepAlive = setInterval(() => undefined, 60_000)));
    afterAll(() => clearInterval(keepAlive));

    /** Cumulative counters growing by `ok` 2xx and `bad` 5xx per call, all in latency bucket `bucket`. */
    const counter = (ok: number, bad: number, bucket = 2): (() => StatsSnapshot) => {
      let calls = 0;
      return () => {
        const n = calls++;
        const buckets = new Array<number>(14).fill(0);
        buckets[bucket] = n * (ok + bad);
        return { byClass: [0, n * ok, 0, 0, n * bad, 0], buckets };
      };
    };
    const analysed = (analysis: Record<string, unknown>): StrategyConfig =>
      can({
        steps: [{ setWeight: 20 }, { pause: {} }],
        analysis: { interval: '2ms', failureLimit: 2, minRequests: 10, successRate: 99, ...analysis },
      });

    it(
      'fails on the success rate failureLimit times, then routes back to stable and stops the canary',
      BOUNDED,
      async () => {
        const canaryStats = counter(80, 20);
        const stableStats = counter(100, 0);
        const ctx = deploy(3, {
          stats: (ids) => (ids[0]?.startsWith('v2.') ? canaryStats() : stableStats()),
        });
        const err = await failureOf(canary(ctx, analysed({})));
        assert.deepEqual(
          ctx.verdicts.map((v) => [v.result, v.requests, v.successRate]),
          [
            ['fail', 100, 80],
            ['fail', 100, 80],
          ],
        );
        assert.match(ctx.verdicts[0]!.reason, /^success rate 80% < 99% \(20 of 100 failed\)$/);
        assert.equal(ctx.failures.length, 1);
        assert.match(
          ctx.failures[0]!,
          /^canary analysis failed 2 time\(s\) \(failureLimit 2\); last: success rate 80%/,
        );
        assertRolledBack(err, /canary analysis failed 2 time\(s\).*; all traffic back on v1$/);
        assert.deepEqual(after(ctx, 'wait null'), [
          `fail ${ctx.failures[0]}`,
          'route v1.1 v1.2 v1.3',
          'drain v2.1',
          'stop v2.1',
        ]);
        // The canary's counters and stable's, each on their own instances.
        assert.ok(ctx.calls.includes('stats v2.1'));
        assert.ok(ctx.calls.includes('stats v1.1 v1.2 v1.3'));
        assert.deepEqual(ctx.runningIds(), ['v1.1', 'v1.2', 'v1.3']);
        assert.deepEqual(ctx.violations, []);
      },
    );

    it('fails on p99 over latencyP99 even when every answer is a 2xx', BOUNDED, async () => {
      const canaryStats = counter(100, 0, 7); // the 250ms bucket
      const stableStats = counter(100, 0);
      const ctx = deploy(2, { stats: (ids) => (ids[0]?.startsWith('v2.') ? canaryStats() : stableStats()) });
      const err = await failureOf(canary(ctx, analysed({ failureLimit: 1, latencyP99: '100ms' })));
      assert.equal(ctx.verdicts[0]?.result, 'fail');
      assert.equal(ctx.verdicts[0]?.p99Ms, 250);
      assert.equal(ctx.verdicts[0]?.reason, 'p99 250ms > 100ms');
      assertRolledBack(err, /p99 250ms > 100ms; all traffic back on v1$/);
      assert.deepEqual(ctx.table(), ['v1.1', 'v1.2']);
    });

    it(
      'too few requests is inconclusive, good ones pass, and the canary is promoted with no failure',
      BOUNDED,
      async () => {
        const none = counter(0, 0);
        let calls = 0;
        const perCall = [0, 5, 105, 205, 305, 405, 505];
        const canaryStats = (): StatsSnapshot => {
          const n = perCall[Math.min(calls++, perCall.length - 1)]!;
          return { byClass: [0, n, 0, 0, 0, 0], buckets: [0, 0, n, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0] };
        };
        let ctx: FakeContext | null = null;
        ctx = deploy(2, {
          stats: (ids) => (ids[0]?.startsWith('v2.') ? canaryStats() : none()),
          verdict: () => (ctx?.verdicts.length === 3 ? ctx.promoteNow('step') : undefined),
        });
        await canary(ctx, analysed({ latencyP99: '100ms' }));
        assert.deepEqual(
          ctx.verdicts.slice(0, 3).map((v) => v.result),
          ['inconclusive', 'pass', 'pass'],
        );
        assert.match(
          ctx.verdicts[0]!.reason,
          /^5 canary request\(s\) in the interval, fewer than minRequests 10$/,
        );
        assert.equal(ctx.verdicts[1]?.reason, 'success rate 100%, p99 5ms over 100 request(s)');
        assert.deepEqual(ctx.failures, []);
        assert.deepEqual(ctx.table(), ['v2.1', 'v2.2']);
        // Stopped at promotion: no verdict after the deploy ended (an absence, so a fixed wait
        // of five intervals rather than a poll).
        const seen = ctx.verdicts.length;
        await new Promise((resolve) => setTimeout(resolve, 10));
        assert.equal(ctx.verdicts.length, seen);
      },
    );

    it('on an edge without counters, says so and never fails on them', BOUNDED, async () => {
      let ctx: FakeContext | null = null;
      ctx = deploy(2, { verdict: () => (ctx?.verdicts.length === 2 ? ctx.promoteNow('step') : undefined) });
      await canary(ctx, analysed({ failureLimit: 1 }));
      assert.deepEqual(
        ctx.verdicts.slice(0, 2).map((v) => v.result),
        ['inconclusive', 'inconclusive'],
      );
      assert.match(ctx.verdicts[0]!.reason, /keeps no per-instance counters/);
      assert.deepEqual(ctx.failures, []);
      assert.deepEqual(ctx.table(), ['v2.1', 'v2.2']);
    });
  });

  it('A/B: one instance of the new version takes the matching requests for `duration`, then all traffic', async () => {
    const ctx = deploy(2);
    const match = [{ header: 'x-beta', equals: '1' }, { ip: '10.0.0.0/8' }];
    await canary(ctx, config({ type: 'ab', match, duration: '10m' }));
    assert.deepEqual(ctx.moves(), [
      'start 1 v2 = v2.1',
      'split 0% v1.1 v1.2 | canary v2.1',
      'split 0% v1.1 v1.2 | canary v2.1 rules 2',
      'wait 600000',
      'start 1 v2 = v2.2',
      'route v2.1 v2.2',
      'switched',
      'drain v1.1 v1.2',
      'stop v1.1 v1.2',
    ]);
    assert.deepEqual(ctx.swaps[1]?.split, { canaryPercent: 0, rules: match, sticky: 'baton' });
    assert.equal(
      ctx.steps[1]?.detail,
      'step 1/2: requests matching header x-beta = 1 or ip 10.0.0.0/8 go to v2',
    );
    assert.deepEqual(ctx.violations, []);
  });
});

describe('recreate', () => {
  const re = config({ type: 'recreate' });

  it('stops the old set (out of the table, drained) before it starts the new one: the downtime', async () => {
    const ctx = deploy(2);
    await recreate(ctx, re);
    assert.deepEqual(ctx.moves(), [
      'route -',
      'drain v1.1 v1.2',
      'stop v1.1 v1.2',
      'start 2 v2 = v2.1 v2.2',
      'route v2.1 v2.2',
      'switched',
    ]);
    assert.deepEqual(stepsOf(ctx), ['stopping', 'starting']);
    assert.equal(ctx.peakRunning, 2);
    assert.deepEqual(ctx.violations, []);
  });

  it('a start failure starts the previous version again', async () => {
    const ctx = deploy(2, {
      start: (_c, version) => (version === 'v2' ? boom('v2.1 not ready after 60s')() : undefined),
    });
    const err = await failureOf(recreate(ctx, re));
    assertRolledBack(err, /^v2\.1 not ready after 60s; v1 started again$/);
    assert.deepEqual(after(ctx, 'stop v1.1 v1.2'), [
      'start 2 v2 failed',
      'start 2 v1 = v1.3 v1.4',
      'route v1.3 v1.4',
    ]);
    assert.deepEqual(ctx.runningIds(), ['v1.3', 'v1.4']);
  });

  it('an edge refusing the new set, or a postSwitch failure, stops it and starts the previous version', async () => {
    const refused = deploy(2, { route: (_t, nth) => (nth === 2 ? boom('reload failed')() : undefined) });
    assertRolledBack(await failureOf(recreate(refused, re)), /^reload failed; v1 started again$/);
    assert.deepEqual(after(refused, 'start 2 v2 = v2.1 v2.2'), [
      'route v2.1 v2.2 refused',
      'stop v2.1 v2.2',
      'start 2 v1 = v1.3 v1.4',
      'route v1.3 v1.4',
    ]);

    const hook = deploy(2, { switched: boom('postSwitch hook exited 2') });
    assertRolledBack(await failureOf(recreate(hook, re)), /^postSwitch hook exited 2; v1 started again$/);
    assert.deepEqual(after(hook, 'switched'), [
      'route -',
      'stop v2.1 v2.2',
      'start 2 v1 = v1.3 v1.4',
      'route v1.3 v1.4',
    ]);
    assert.deepEqual(hook.violations, []);
  });
});

describe('first deploy (startAlone)', () => {
  it('starts, routes and runs postSwitch; a postSwitch failure takes the set out again', async () => {
    const ctx = new FakeContext(app(2), 'v1', null, 0);
    await startAlone(ctx, 'v1');
    assert.deepEqual(ctx.moves(), ['start 2 v1 = v1.1 v1.2', 'route v1.1 v1.2', 'switched']);

    const failing = new FakeContext(app(2), 'v1', null, 0, { switched: boom('hook failed') });
    const err = await failureOf(startAlone(failing, 'v1'));
    assert.equal(err.message, 'hook failed');
    assert.deepEqual(failing.moves(), [
      'start 2 v1 = v1.1 v1.2',
      'route v1.1 v1.2',
      'switched',
      'route -',
      'stop v1.1 v1.2',
    ]);
    assert.deepEqual(failing.runningIds(), []);
    assert.deepEqual(failing.violations, []);
  });
});
