// /metrics end to end: a real `baton up` with the example app, scraped after real deploys, and
// checked by a real promtool (Prometheus' own linter). Standard names, no family twice, deploy
// metrics from the controller (counted from history, so a restart keeps them), the canary's
// share and the analysis verdicts, no series left of a retired instance, and the same on an
// nginx edge (no proxy families there). examples/monitoring/ is checked by promtool too, and
// every metric its rules and dashboard name is in a real scrape.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { before, describe, it, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { mergeMetrics, parseFamilies } from '../src/metrics/text.js';
import { processMetrics } from '../src/metrics/process.js';
import { Service } from './helpers/app-daemon.js';
import { ensureBuilt, tempDir } from './helpers/cli.js';
import { waitFor } from './helpers/index.js';
import { startNginx } from './helpers/nginx.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MONITORING = path.join(ROOT, 'examples/monitoring');

const hasPromtool = spawnSync('promtool', ['--version'], { stdio: 'ignore' }).status === 0;
// In CI promtool is installed (.ci/run): missing there is a failure, not a skip.
const skip =
  hasPromtool || process.env.CI ? false : 'promtool missing: apt-get install prometheus (.ci/run does)';

function promtool(args: string[], input?: string): { code: number | null; out: string } {
  const r = spawnSync('promtool', args, {
    cwd: MONITORING,
    encoding: 'utf8',
    timeout: 30_000,
    ...(input !== undefined ? { input } : {}),
  });
  if (r.error) throw new Error(`promtool ${args.join(' ')}: ${r.error.message} (apt-get install prometheus)`);
  return { code: r.status, out: r.stdout + r.stderr };
}

/** `promtool check metrics` on the text: exit 0 and nothing to say. */
function assertPromtoolClean(text: string): void {
  const r = promtool(['check', 'metrics'], text);
  assert.equal(r.code, 0, `promtool check metrics:\n${r.out}\non:\n${text}`);
  assert.equal(r.out, '', `promtool check metrics has remarks:\n${r.out}`);
}

async function scrape(svc: Service): Promise<string> {
  const res = await request(`http://127.0.0.1:${svc.adminPort}/metrics`, { reset: true });
  const text = await res.body.text();
  assert.equal(res.statusCode, 200, text);
  assert.match(String(res.headers['content-type']), /^text\/plain; version=0\.0\.4/);
  return text;
}

interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

function samples(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

/** The samples of `name` whose labels include `labels`. */
function find(text: string, name: string, labels: Record<string, string> = {}): Sample[] {
  return samples(text).filter(
    (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
}

/** The one sample of `name` with these labels. */
function value(text: string, name: string, labels: Record<string, string> = {}): number {
  const found = find(text, name, labels);
  assert.equal(
    found.length,
    1,
    `one ${name}${JSON.stringify(labels)} expected, found ${found.length} in:\n${text}`,
  );
  return found[0]!.value;
}

function assertNoFamilyTwice(text: string): void {
  const names = [...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!);
  assert.deepEqual(
    names.filter((n, i) => names.indexOf(n) !== i),
    [],
    'a family appears twice',
  );
}

/** The Grafana dashboard's queries (panels and annotations). */
function dashboardExprs(): string[] {
  const d = JSON.parse(readFileSync(path.join(MONITORING, 'grafana-dashboard.json'), 'utf8')) as {
    panels: { targets?: { expr: string }[] }[];
    annotations: { list: { expr?: string }[] };
  };
  return [
    ...d.panels.flatMap((p) => (p.targets ?? []).map((q) => q.expr)),
    ...d.annotations.list.flatMap((a) => (a.expr ? [a.expr] : [])),
  ];
}

/** Metric names of Baton's (baton_*, process_*, nodejs_*) in the alert rules and the dashboard. */
function metricNamesUsed(): string[] {
  const text = [readFileSync(path.join(MONITORING, 'alerts.yml'), 'utf8'), ...dashboardExprs()].join('\n');
  return [...new Set(text.match(/\b(?:baton|process|nodejs)_[a-z0-9_]+/g) ?? [])].sort();
}

/** Names not in the scrape: neither a family nor a histogram's _bucket / _sum / _count. */
function missingNames(text: string, names: readonly string[]): string[] {
  const families = parseFamilies(text);
  const known = new Set(families.map((f) => f.name));
  for (const f of families) {
    if (f.type === 'histogram' || f.type === 'summary')
      for (const suffix of ['_bucket', '_sum', '_count']) known.add(f.name + suffix);
  }
  return names.filter((n) => !known.has(n));
}

/** Waits for the canary at `percent`, paused (a pause step waiting for `baton promote`). */
const pausedAt = (svc: Service, percent: number) =>
  waitFor(
    async () => {
      const s = await svc.status();
      return s.deployment?.step === 'paused' && s.deployment.canary?.canary.percent === percent;
    },
    { timeout: 15_000, interval: 50, what: `the canary paused at ${percent}%` },
  );

async function post(svc: Service, urlPath: string, body: unknown): Promise<void> {
  const res = await request(`http://127.0.0.1:${svc.adminPort}${urlPath}`, {
    method: 'POST',
    reset: true,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await res.body.text();
  assert.equal(res.statusCode, 200, text);
}

const restart = async (svc: Service): Promise<void> => {
  svc.daemon.child.kill('SIGTERM');
  const { code } = await svc.daemon.exited;
  assert.equal(code, 0, svc.daemon.stderr());
  await svc.start();
};

describe('/metrics', { skip }, () => {
  before(() => ensureBuilt());

  it('built-in edge: promtool-clean, deploy metrics, no series of a retired instance, counters kept over a restart', async (t: TestContext) => {
    const svc = await Service.create(t);
    await svc.start();
    await svc.deployApi('1.0.0');
    assert.deepEqual(await svc.versionsServed(4), ['1.0.0']);
    const first = await scrape(svc);
    assert.equal(find(first, 'baton_target_up', { version: '1.0.0' }).length, 2, first);

    await svc.deployApi('1.0.1');
    assert.deepEqual(await svc.versionsServed(5), ['1.0.1']);
    const text = await scrape(svc);
    assertPromtoolClean(text);
    assertNoFamilyTwice(text);

    // Deploys, by strategy and result; every combination there from the start.
    const web = { service: 'web' };
    assert.equal(
      value(text, 'baton_deploys_total', { ...web, strategy: 'blue-green', result: 'succeeded' }),
      2,
    );
    assert.equal(
      value(text, 'baton_deploys_total', { ...web, strategy: 'canary', result: 'rolled-back' }),
      0,
    );
    assert.equal(find(text, 'baton_deploys_total').length, 5 * 3, 'every strategy x result');
    assert.equal(
      value(text, 'baton_deploy_duration_seconds_count', {
        ...web,
        strategy: 'blue-green',
        result: 'succeeded',
      }),
      2,
    );
    assert.ok(
      value(text, 'baton_deploy_duration_seconds_sum', { strategy: 'blue-green', result: 'succeeded' }) > 0,
    );
    assert.deepEqual(
      find(text, 'baton_live_info').map((s) => [s.labels.version, s.value]),
      [['1.0.1', 1]],
    );
    assert.equal(value(text, 'baton_canary_weight', web), 0);
    for (const verdict of ['pass', 'fail', 'inconclusive'])
      assert.equal(value(text, 'baton_analysis_verdicts_total', { ...web, verdict }), 0);

    // The retired instances (1.0.0, drained and stopped) left no series behind.
    assert.deepEqual(
      samples(text).filter((s) => s.labels.version === '1.0.0'),
      [],
      'series of the retired 1.0.0 targets are still there',
    );
    const up = find(text, 'baton_target_up', { version: '1.0.1' });
    assert.deepEqual(
      up.map((s) => s.value),
      [1, 1],
    );
    const served = find(text, 'baton_requests_total', { version: '1.0.1', class: '2xx' });
    assert.equal(
      served.reduce((a, s) => a + s.value, 0),
      5,
      'the five requests through the proxy',
    );

    // Process metrics under the standard names, once; none of prom-client's *_total gauges.
    assert.equal(find(text, 'process_cpu_seconds_total').length, 1);
    assert.doesNotMatch(text, /^baton_process_/m);
    assert.doesNotMatch(text, /^# TYPE \S+_total gauge$/m);

    // Every metric the example rules and dashboard use is in a real scrape.
    const used = metricNamesUsed();
    assert.ok(used.length >= 10, used.join(' '));
    assert.deepEqual(missingNames(text, used), []);

    // A new controller (the data plane and the instances serve on): the deploys are counted
    // from history, not from zero.
    await restart(svc);
    const again = await scrape(svc);
    assertPromtoolClean(again);
    assert.equal(value(again, 'baton_deploys_total', { strategy: 'blue-green', result: 'succeeded' }), 2);
    assert.equal(
      value(again, 'baton_deploy_duration_seconds_count', { strategy: 'blue-green', result: 'succeeded' }),
      2,
    );
    assert.deepEqual(
      find(again, 'baton_live_info').map((s) => s.labels.version),
      ['1.0.1'],
    );
  });

  it('canary: its share while it runs, stable as live, every analysis verdict counted', async (t: TestContext) => {
    const svc = await Service.create(t, {
      strategy: [
        '  type: canary',
        '  canaryInstances: 1',
        '  steps:',
        '    - setWeight: 30',
        '    - pause: {}',
        '  analysis: { interval: 150ms, failureLimit: 5, minRequests: 1, successRate: 90 }',
      ],
    });
    await svc.start();
    await svc.deployApi('1.0.0');
    const deploying = svc.deploy('2.0.0', ['--allow-manual-pause'], 60_000);
    await pausedAt(svc, 30);
    // A verdict or two while paused (no traffic: inconclusive ones).
    await waitFor(
      async () => find(await scrape(svc), 'baton_analysis_verdicts_total').some((s) => s.value > 0),
      {
        timeout: 10_000,
        what: 'an analysis verdict in /metrics',
      },
    );
    const during = await scrape(svc);
    assertPromtoolClean(during);
    assert.equal(value(during, 'baton_canary_weight', { service: 'web' }), 30);
    assert.deepEqual(
      find(during, 'baton_live_info').map((s) => [s.labels.version, s.value]),
      [['1.0.0', 1]],
      'stable is live until promotion',
    );
    assert.equal(find(during, 'baton_target_up', { version: '2.0.0' }).length, 1, 'the canary instance');

    await post(svc, '/v1/promote', { full: true });
    const run = await deploying;
    assert.equal(run.done?.result, 'succeeded', run.stdout + run.stderr);
    const after = await scrape(svc);
    assertPromtoolClean(after);
    assert.equal(value(after, 'baton_canary_weight', { service: 'web' }), 0);
    assert.deepEqual(
      find(after, 'baton_live_info').map((s) => s.labels.version),
      ['2.0.0'],
    );
    // The first deploy (of 1.0.0) ran with the configured strategy too.
    assert.equal(value(after, 'baton_deploys_total', { strategy: 'canary', result: 'succeeded' }), 2);
    // Each verdict the deploy reported is counted, by its result.
    for (const verdict of ['pass', 'fail', 'inconclusive']) {
      const reported = run.events.filter((e) => e.message.startsWith(`analysis ${verdict}:`)).length;
      assert.equal(value(after, 'baton_analysis_verdicts_total', { verdict }), reported, verdict);
    }
    assert.ok(
      run.events.some((e) => e.message.startsWith('analysis ')),
      'the deploy had verdicts',
    );
    assert.deepEqual(
      samples(after).filter((s) => s.labels.version === '1.0.0'),
      [],
      'no series of the retired stable instances',
    );
  });

  it('nginx edge: /metrics answers with the deploy and process metrics, promtool-clean', async (t: TestContext) => {
    const nginx = await startNginx(t);
    const svc = await Service.create(t, {
      edge: { lines: [`edge: ${JSON.stringify(nginx.edgeConfig)}`], url: `http://127.0.0.1:${nginx.port}` },
    });
    await svc.start();
    await svc.deployApi('1.0.0');
    assert.deepEqual(await svc.versionsServed(2), ['1.0.0']);
    const text = await scrape(svc);
    assertPromtoolClean(text);
    assertNoFamilyTwice(text);
    assert.equal(value(text, 'baton_deploys_total', { strategy: 'blue-green', result: 'succeeded' }), 1);
    assert.deepEqual(
      find(text, 'baton_live_info').map((s) => s.labels.version),
      ['1.0.0'],
    );
    assert.equal(find(text, 'process_resident_memory_bytes').length, 1);
    // nginx keeps no per-target counters for Baton: no proxy family at all.
    assert.doesNotMatch(text, /^# TYPE baton_target_up /m);
  });

  it('examples/monitoring: the rules, their unit tests, the config and the dashboard queries pass promtool', (t) => {
    for (const args of [
      ['check', 'rules', 'alerts.yml'],
      ['test', 'rules', 'alerts.test.yml'],
      ['check', 'config', 'prometheus.yml'],
    ]) {
      const r = promtool(args);
      assert.equal(r.code, 0, `promtool ${args.join(' ')}:\n${r.out}`);
    }
    // Each dashboard query, its Grafana variables given values, as a recording rule: promtool
    // parses every one of them.
    const exprs = dashboardExprs();
    assert.ok(exprs.length >= 15);
    const concrete = exprs.map((e) =>
      e
        .replaceAll('$__rate_interval', '1m')
        .replaceAll('$__range', '1h')
        .replaceAll('$service', '.*')
        .replaceAll('$job', 'baton'),
    );
    assert.deepEqual(
      concrete.filter((e) => e.includes('$')),
      [],
      'a Grafana variable without a value here',
    );
    const file = path.join(tempDir(t), 'dashboard-rules.yml');
    const rules = concrete.map(
      (e, i) => `      - record: dashboard:query${i}\n        expr: ${JSON.stringify(e)}`,
    );
    writeFileSync(file, `groups:\n  - name: dashboard\n    rules:\n${rules.join('\n')}\n`);
    const r = promtool(['check', 'rules', file]);
    assert.equal(r.code, 0, `the dashboard's queries:\n${r.out}`);
  });
});

describe('metrics text', () => {
  it('a family given by two sources comes once, from the first', () => {
    const a =
      '# HELP x_total X.\n# TYPE x_total counter\nx_total 1\n# HELP up_g U.\n# TYPE up_g gauge\nup_g 1\n';
    const b =
      '# HELP x_total X again.\n# TYPE x_total counter\nx_total 7\n# HELP h H.\n# TYPE h histogram\nh_bucket{le="+Inf"} 1\nh_sum 2\nh_count 1\n';
    const merged = mergeMetrics([a, b]);
    assert.equal(
      merged,
      '# HELP x_total X.\n# TYPE x_total counter\nx_total 1\n# HELP up_g U.\n# TYPE up_g gauge\nup_g 1\n# HELP h H.\n# TYPE h histogram\nh_bucket{le="+Inf"} 1\nh_sum 2\nh_count 1\n',
    );
    assert.deepEqual(
      parseFamilies(merged).map((f) => [f.name, f.type, f.lines.length]),
      [
        ['x_total', 'counter', 3],
        ['up_g', 'gauge', 3],
        ['h', 'histogram', 5],
      ],
    );
  });

  it("process metrics: standard names, and none of prom-client's gauges named *_total", async () => {
    const text = await processMetrics();
    const families = parseFamilies(text);
    assert.ok(families.some((f) => f.name === 'process_cpu_seconds_total' && f.type === 'counter'));
    assert.ok(families.some((f) => f.name === 'nodejs_active_handles' && f.type === 'gauge'));
    assert.deepEqual(
      families.filter((f) => f.type !== 'counter' && f.name.endsWith('_total')).map((f) => f.name),
      [],
    );
    assert.ok(text.endsWith('\n'));
  });
});
