// Canary analysis: the proxy's counters against the thresholds, and the extra checks (a JSON
// value from a URL, a Prometheus query) against their conditions.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfigText } from '../src/config/load.js';
import type { StatsSnapshot } from '../src/edge/edge.js';
import { Analysis } from '../src/strategies/analysis.js';
import { atPath, parseCondition } from '../src/strategies/checks.js';
import { startBackend } from './helpers/index.js';

const zero = (): StatsSnapshot => ({ byClass: [0, 0, 0, 0, 0, 0], buckets: new Array<number>(14).fill(0) });

function snap(ok: number, errors: number): StatsSnapshot {
  const buckets = new Array<number>(14).fill(0);
  buckets[2] = ok + errors; // all under 5ms
  return { byClass: [0, ok, 0, 0, errors, 0], buckets };
}

function analysisYaml(extra = ''): NonNullable<ReturnType<typeof parseConfigText>['strategy']> {
  const c = parseConfigText(
    `service: web\nlisten: 127.0.0.1:1\napp: { command: x }\nstrategy:\n  type: canary\n  steps: [{ setWeight: 10 }]\n  analysis:\n    interval: 1s\n    failureLimit: 2\n    minRequests: 10\n    successRate: 99\n${extra}`,
    '/x/baton.yaml',
  );
  return c.strategy;
}

describe('canary analysis', () => {
  it('passes, fails and says inconclusive from the counters, and calls the limit once', async () => {
    const s = analysisYaml();
    assert.equal(s.type, 'canary');
    if (s.type !== 'canary' || !s.analysis) return assert.fail('no analysis');
    let canary = zero();
    const limits: string[] = [];
    const a = new Analysis(
      s.analysis,
      () => Promise.resolve(canary),
      () => Promise.resolve(zero()),
      () => undefined,
      (r) => limits.push(r),
    );
    await a.start();
    canary = snap(100, 0);
    assert.equal((await a.check()).result, 'pass');
    canary = snap(105, 0);
    const v = await a.check();
    assert.equal(v.result, 'inconclusive');
    assert.match(v.reason, /5 canary request\(s\) in the interval, fewer than minRequests 10/);
    canary = snap(185, 20);
    const bad = await a.check();
    assert.equal(bad.result, 'fail');
    assert.match(bad.reason, /success rate 80% < 99% \(20 of 100 failed\)/);
    assert.deepEqual(limits, []);
    canary = snap(265, 40);
    await a.check();
    assert.equal(limits.length, 1);
    assert.match(limits[0]!, /failed 2 time\(s\) \(failureLimit 2\)/);
    a.stop();
  });

  it('judges the canary on its own thresholds while stable has no counters (baseline waits)', async () => {
    const s = analysisYaml('    baseline: true\n');
    if (s.type !== 'canary' || !s.analysis) return assert.fail('no analysis');
    let canary = zero();
    let stable: StatsSnapshot | null = null;
    const a = new Analysis(
      s.analysis,
      () => Promise.resolve(canary),
      () => Promise.resolve(stable),
      () => undefined,
      () => undefined,
    );
    await a.start();
    canary = snap(100, 0);
    const passed = await a.check();
    assert.equal(passed.result, 'pass', passed.reason);
    canary = snap(150, 50);
    const failed = await a.check();
    assert.equal(failed.result, 'fail');
    assert.match(failed.reason, /success rate 50% < 99%/);
    // Stable counters appear: the baseline judges from the next interval on.
    stable = snap(1000, 0);
    canary = snap(250, 50);
    assert.equal((await a.check()).result, 'pass');
    // A canary as good by the thresholds (no latencyP99 set) but much slower than stable.
    stable = snap(2000, 0);
    const slow = snap(250, 50);
    // 100 answers more, under 500ms: p99 500ms vs stable's 5ms.
    canary = {
      byClass: slow.byClass.map((v, i) => (i === 1 ? v + 100 : v)),
      buckets: slow.buckets.map((v, i) => (i === 8 ? v + 100 : v)),
    };
    const worse = await a.check();
    assert.equal(worse.result, 'fail', worse.reason);
    assert.equal(worse.reason, 'p99 500ms vs stable 5ms');
    a.stop();
  });

  it('fails on an extra web check or Prometheus query whose value misses its condition', async (t) => {
    let errorRate = 0.01;
    const web = await startBackend(t, 'web', (req, res) => {
      res.setHeader('content-type', 'application/json');
      if (req.url?.startsWith('/api/v1/query')) {
        const q = new URL(req.url, 'http://x').searchParams.get('query') ?? '';
        res.end(
          JSON.stringify({
            status: 'success',
            data: { result: [{ value: [0, q.includes('2.0.0') ? '250' : '0'] }] },
          }),
        );
      } else res.end(JSON.stringify({ stats: { errors: [{ rate: errorRate }] } }));
    });
    const s = analysisYaml(
      `    checks:\n      - { name: error rate, web: { url: "http://127.0.0.1:${web.port}/stats", jsonPath: "stats.errors[0].rate", condition: "< 0.05" } }\n      - prometheus: { url: "http://127.0.0.1:${web.port}", query: 'latency{version="{version}"}', condition: "<= 200" }\n`,
    );
    if (s.type !== 'canary' || !s.analysis) return assert.fail('no analysis');
    let canary = zero();
    const ok = new Analysis(
      s.analysis,
      () => Promise.resolve(canary),
      () => Promise.resolve(zero()),
      () => undefined,
      () => undefined,
      { version: '1.0.0' },
    );
    await ok.start();
    canary = snap(100, 0);
    assert.equal((await ok.check()).result, 'pass');
    errorRate = 0.2;
    canary = snap(200, 0);
    const v = await ok.check();
    assert.equal(v.result, 'fail');
    assert.match(v.reason, /error rate: 0\.2 is not < 0\.05/);
    ok.stop();
    const slow = new Analysis(
      s.analysis,
      () => Promise.resolve(canary),
      () => Promise.resolve(zero()),
      () => undefined,
      () => undefined,
      { version: '2.0.0' },
    );
    await slow.start();
    errorRate = 0.01;
    canary = snap(300, 0);
    assert.match((await slow.check()).reason, /prometheus query: 250 is not <= 200/);
    slow.stop();
    // An edge without counters (nginx): the extra checks alone judge the canary.
    const blind = new Analysis(
      s.analysis,
      () => Promise.resolve(null),
      () => Promise.resolve(null),
      () => undefined,
      () => undefined,
      { version: '1.0.0' },
    );
    await blind.start();
    const passed = await blind.check();
    assert.equal(passed.result, 'pass');
    assert.match(passed.reason, /2 extra check\(s\) passed/);
    errorRate = 0.3;
    assert.equal((await blind.check()).result, 'fail');
    blind.stop();
  });

  it('parses conditions and JSON paths, and refuses a bad condition in the config', () => {
    assert.equal(parseCondition('>= 99')!(99), true);
    assert.equal(parseCondition('< 0.5')!(0.5), false);
    assert.equal(parseCondition('about 3'), undefined);
    assert.equal(atPath({ a: [{ b: 7 }] }, 'a[0].b'), 7);
    assert.throws(
      () =>
        analysisYaml('    checks: [{ web: { url: "http://x/", jsonPath: a, condition: "roughly 3" } }]\n'),
      /a comparison with a number/,
    );
  });
});
