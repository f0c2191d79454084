// The proof with every deploy, against a real daemon (its built-in proxy in the data plane
// process, read over its unix socket): an independent client (closed-loop workers over undici,
// every request's start and end recorded) loads the proxy through a deploy; the proof's request
// count matches what the client saw finish between the proof's start and end, within the
// requests the client had in flight at those two moments (counted from its own records), and
// nothing failed. A bad canary that analysis rolls back: its 5xx are counted under its version,
// none under the stable one. The proof is in `baton history --json`, GET /v1/history, the end
// line of `baton deploy`, the webhook payload (a real local receiver) and `baton report`'s
// self-contained HTML (parsed, and rendered in Debian's Chromium). nginx: the proof says unknown.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { before, describe, it, type TestContext } from 'node:test';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import { Agent, request } from 'undici';
import type { HistoryAnswer, HistoryEntry } from '../src/api/deploy.js';
import { proofLines, type DeployProof } from '../src/api/proof.js';
import { TRAFFIC_BUCKETS } from '../src/edge/edge.js';
import { TrafficCounters } from '../src/edge/builtin/stats.js';
import { slackMessage } from '../src/notify/slack.js';
import { percentileMs, trafficBucketOf, trafficBucketUpperMs, trafficDiff } from '../src/edge/traffic.js';
import { startBackend, waitFor } from './helpers/index.js';
import { ensureBuilt, runBaton, tempDir } from './helpers/cli.js';
import { Service } from './helpers/app-daemon.js';
import { startHaproxy } from './helpers/haproxy.js';
import { startNginx } from './helpers/nginx.js';

const CHROMIUM = '/usr/bin/chromium';
const NO_CHROMIUM = existsSync(CHROMIUM) ? false : `${CHROMIUM} missing: apt-get install chromium`;
const NO_CI = { CI: '', GITHUB_ACTIONS: '', GITLAB_CI: '', JENKINS_URL: '', GITHUB_ACTOR: '' };
/** Closed-loop workers of the client: never more requests than this in flight. */
const WORKERS = 4;

interface Sent {
  readonly start: number;
  readonly end: number;
  readonly status: number;
  readonly body: string;
}

/**
 * The independent client: WORKERS loops, each one GET at a time on keep-alive connections,
 * bounded by `max` requests and `maxMs`. Times are epoch ms with sub-ms precision.
 */
function startClient(
  url: string,
  max = 40_000,
  maxMs = 90_000,
): { sent: Sent[]; stop: () => Promise<Sent[]> } {
  const sent: Sent[] = [];
  const agent = new Agent({ connections: WORKERS });
  const now = (): number => performance.timeOrigin + performance.now();
  const deadline = Date.now() + maxMs;
  let stopped = false;
  const worker = async (): Promise<void> => {
    while (!stopped && sent.length < max && Date.now() < deadline) {
      const start = now();
      try {
        const res = await request(url, { dispatcher: agent, headersTimeout: 5000, bodyTimeout: 5000 });
        const body = (await res.body.text()).trim();
        sent.push({ start, end: now(), status: res.statusCode, body });
      } catch {
        sent.push({ start, end: now(), status: 0, body: '' });
      }
    }
  };
  const running = Promise.all(Array.from({ length: WORKERS }, worker));
  return {
    sent,
    stop: async () => {
      stopped = true;
      await running;
      await agent.close();
      return sent;
    },
  };
}

/**
 * What the client saw between the proof's start and end: requests that ended inside, and the
 * ones in flight at either moment (±1 ms: the edge stamps its snapshots in whole ms), which
 * either side may count.
 */
function clientWindow(sent: readonly Sent[], p: DeployProof): { inside: Sent[]; inflight: number } {
  const s = Date.parse(p.startedAt);
  const e = Date.parse(p.endedAt);
  const across = (x: Sent, at: number): boolean => x.start <= at + 1 && x.end >= at - 1;
  return {
    inside: sent.filter((x) => x.end >= s && x.end <= e),
    inflight: sent.filter((x) => across(x, s) || across(x, e)).length,
  };
}

async function deployUnderLoad(
  t: TestContext,
  svc: Service,
  version: string,
): Promise<{ stdout: string; code: number | null; sent: Sent[] }> {
  const client = startClient(svc.url);
  await waitFor(() => client.sent.length >= 100, { timeout: 10_000, what: 'the client under way' });
  const run = await runBaton(t, ['deploy', '-c', svc.file, '--version', version], {
    env: NO_CI,
    timeout: 60_000,
  });
  // Some more after the end, so the end is not the client's own end.
  const after = client.sent.length;
  await waitFor(() => client.sent.length >= after + 100, { timeout: 10_000, what: 'load after the deploy' });
  return { stdout: run.stdout, code: run.code, sent: await client.stop() };
}

function proofOf(entry: HistoryEntry | undefined): DeployProof {
  assert.ok(entry?.proof, `a proof in the history entry: ${JSON.stringify(entry)}`);
  return entry.proof;
}

const n = (x: number): string => x.toLocaleString('en-US');

describe('the proof with every deploy', () => {
  before(() => ensureBuilt());

  it('counts from log buckets, by version, outliving targets; a counter that went down counts from zero', () => {
    assert.equal(trafficBucketOf(0), 0);
    assert.equal(trafficBucketOf(0.1), 0);
    assert.equal(trafficBucketOf(1e9), TRAFFIC_BUCKETS - 1);
    for (const ms of [0.15, 1, 3.3, 12, 250, 9000]) {
      const i = trafficBucketOf(ms);
      assert.ok(trafficBucketUpperMs(i) >= ms && trafficBucketUpperMs(i - 1) < ms, `bucket of ${ms}`);
    }
    const c = new TrafficCounters(() => ['v1']);
    for (let i = 1; i <= 100; i++) c.finished('v1', 200, undefined, i);
    c.finished('v2', 500, undefined, 5);
    c.finished('v2', 502, 'upstream-error', 5);
    c.finished('', 503, 'no-target', 0);
    c.finished('v2', 200, 'client-closed', 5);
    const start = c.snapshot();
    const v1 = start.versions.find((v) => v.version === 'v1')!;
    // p50 of 1..100 ms is 50 ms: its bucket's upper bound, within a bucket's width (19%).
    const p50 = percentileMs(v1.buckets, 50)!;
    assert.ok(p50 >= 50 && p50 < 50 * 1.19, String(p50));
    assert.ok(percentileMs(v1.buckets, 99)! >= 99);
    const v2 = start.versions.find((v) => v.version === 'v2')!;
    assert.deepEqual([v2.requests, v2.status5xx, v2.proxyErrors, v2.clientAborts], [3, 1, 1, 1]);
    assert.equal(start.versions.find((v) => v.version === '')!.proxyErrors, 1);
    c.finished('v1', 200, undefined, 1);
    const diff = trafficDiff(c.snapshot(), start);
    assert.deepEqual(
      diff.map((v) => [v.version, v.requests]),
      [['v1', 1]],
    );
    const restarted = trafficDiff({ at: 0, versions: [{ ...v1, requests: 1 }], unknown: [] }, start);
    assert.equal(restarted[0]!.requests, 1);
    // Counters that started again (a data plane replaced meanwhile) count from their start.
    const later = c.snapshot();
    const replaced = trafficDiff({ ...later, since: later.since! + 1 }, start);
    assert.equal(replaced.find((v) => v.version === 'v1')!.requests, 101);
  });

  it('reads as a line, a line by kind when some failed, and unknown when the edge counts none', () => {
    const counts = {
      requests: 12431,
      status5xx: 31,
      proxyErrors: 6,
      clientAborts: 2,
      p50Ms: 3.2,
      p99Ms: 18.5,
    };
    const p: DeployProof = {
      ...counts,
      edge: 'builtin',
      startedAt: '2026-12-03T05:00:00.000Z',
      endedAt: '2026-12-03T05:00:30.000Z',
      failed: 37,
      versions: [
        { version: '2.0.0', ...counts, status5xx: 31, proxyErrors: 4 },
        { version: '', ...counts, status5xx: 0, proxyErrors: 2 },
      ],
      series: { intervalMs: 250, samples: [] },
      marks: [],
      unknown: [],
      note: null,
    };
    assert.deepEqual(proofLines(p, 'rollback'), [
      '37 of 12,431 requests failed during this rollback (p50 3.2ms, p99 18.5ms; 2 abandoned by the client, not counted as failed)',
      'failed: 31 5xx from the app (2.0.0 31); 6 proxy errors: 502/503/504 or cut answers (2.0.0 4, no target 2)',
    ]);
    const none = { ...p, requests: null, failed: null, unknown: ['requests'], note: 'nginx keeps none' };
    assert.deepEqual(proofLines(none), ['requests during this deploy: unknown (nginx keeps none)']);
    const { series: _s, marks: _m, ...summary } = p;
    const slack = JSON.stringify(
      slackMessage({
        event: 'rolled-back',
        service: 'web',
        time: p.endedAt,
        message: 'rolled back',
        deployment: {
          id: 'abc',
          version: '2.0.0',
          previousVersion: '1.0.0',
          strategy: 'canary',
          actor: 'ci',
          startedAt: p.startedAt,
          rollback: false,
          forced: false,
        },
        elapsedMs: 30_000,
        proof: summary,
      }),
    );
    assert.match(slack, /\*Proof\*\\n37 of 12,431 requests failed during this deploy/);
  });

  it('a good deploy under load: the count matches the client, 0 failed, in history, the end line, the webhook and the report', async (t) => {
    const receiver = await startBackend(t, 'hook', (_req, res) => res.end('ok'));
    const svc = await Service.create(t, {
      extra: ['notify:', '  webhook:', '    urlEnv: BATON_TEST_HOOK_URL'],
    });
    await svc.start({ BATON_TEST_HOOK_URL: `http://127.0.0.1:${receiver.port}/deploys` });
    await svc.deployApi('1.0.0');
    const run = await deployUnderLoad(t, svc, '1.1.0');
    assert.equal(run.code, 0, run.stdout);
    assert.deepEqual(
      run.sent.filter((x) => x.status !== 200),
      [],
      'the client saw no failure',
    );

    const [entry] = await svc.history();
    const p = proofOf(entry);
    assert.equal(p.edge, 'builtin');
    const { inside, inflight } = clientWindow(run.sent, p);
    t.diagnostic(`proof ${p.requests}, client ${inside.length}, in flight at start/end ${inflight}`);
    assert.ok(
      Math.abs(p.requests! - inside.length) <= inflight,
      `proof ${p.requests} vs client ${inside.length} (in flight at start and end: ${inflight})`,
    );
    assert.ok(p.requests! >= 50, String(p.requests));
    assert.deepEqual([p.failed, p.status5xx, p.proxyErrors, p.clientAborts], [0, 0, 0, 0]);
    assert.deepEqual(p.unknown, []);
    assert.ok(p.p50Ms! > 0 && p.p99Ms! >= p.p50Ms!, `${p.p50Ms} ${p.p99Ms}`);
    // Both versions answered during a blue-green switch under load; the versions add up.
    assert.deepEqual(p.versions.map((v) => v.version).sort(), ['1.0.0', '1.1.0']);
    assert.equal(
      p.versions.reduce((s, v) => s + v.requests!, 0),
      p.requests,
    );
    // The series: its intervals add up to the whole exactly (the last sample is the end's).
    const seriesTotal = p.series.samples.reduce(
      (s, x) => s + Object.values(x.requests).reduce((a, b) => a + b, 0),
      0,
    );
    assert.equal(seriesTotal, p.requests);
    assert.ok(p.series.samples.length >= 1);
    const kinds = p.marks.map((m) => m.kind);
    assert.equal(kinds[0], 'start');
    assert.equal(kinds.at(-1), 'done');
    assert.ok(
      p.marks.some((m) => m.kind === 'step' && m.label === 'switching'),
      JSON.stringify(p.marks),
    );

    // The end line of `baton deploy`.
    assert.match(
      run.stdout,
      new RegExp(` proof +0 of ${n(p.requests!)} requests failed during this deploy \\(p50 `),
    );
    // Printed just before the 'done' line, which stays the last, with its time like every line.
    const lines = run.stdout.trimEnd().split('\n');
    assert.match(lines.at(-1)!, /^\S+Z done +1\.1\.0 is live/);
    assert.match(lines.at(-2)!, /^\S+Z proof +0 of /);
    // `baton history --json` and the table.
    const h = await runBaton(t, ['history', '-c', svc.file, '--json']);
    assert.deepEqual((JSON.parse(h.stdout) as HistoryAnswer).history[0]!.proof, p);
    const table = await runBaton(t, ['history', '-c', svc.file]);
    assert.match(table.stdout, new RegExp(`\\b0/${p.requests}\\b`));

    // The webhook's result event carries it (without the series).
    type Hook = { event: string; deployment: { version: string }; proof?: DeployProof };
    const hookOf = (): Hook | undefined =>
      receiver.seen
        .map((s) => JSON.parse(s.body) as Hook)
        .find((b) => b.event === 'succeeded' && b.deployment.version === '1.1.0');
    const hook = await waitFor(hookOf, { what: 'the webhook result of 1.1.0' });
    assert.equal(hook.proof?.requests, p.requests);
    assert.equal(hook.proof?.failed, 0);
    assert.equal((hook.proof as Partial<DeployProof>).series, undefined);

    // `baton report <id prefix>`: one file, no external asset, the data the page draws.
    const dir = tempDir(t);
    const out = path.join(dir, 'r.html');
    const rep = await runBaton(t, ['report', entry!.id.slice(0, 6), '-c', svc.file, '-o', out]);
    assert.equal(rep.code, 0, rep.stderr);
    const html = readFileSync(out, 'utf8');
    assert.doesNotMatch(html, /<(script|link|img)[^>]+(src|href)=/i, 'no external assets');
    assert.match(html, new RegExp(`0 of ${n(p.requests!)} requests failed`));
    const data = JSON.parse(
      /<script type="application\/json" id="proof-data">([^<]*)<\/script>/.exec(html)![1]!,
    ) as {
      t: number[];
      marks: { kind: string }[];
      versions: { v: string }[];
    };
    assert.equal(data.t.length, p.series.samples.length + 1);
    assert.equal(data.marks.length, p.marks.length);
    assert.deepEqual(data.versions.map((v) => v.v).sort(), ['1.0.0', '1.1.0']);
    if (!NO_CHROMIUM) {
      const browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
      });
      t.after(() => browser.close());
      const page = await browser.newPage({ viewport: { width: 1280, height: 1200 } });
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(String(e)));
      await page.goto(pathToFileURL(out).href);
      await page.waitForFunction('window.batonProof && window.batonProof.charts === 2');
      const drawn = await page.evaluate<Record<string, { kind: string }[]>>('window.batonProof.marks');
      assert.ok(
        (drawn.share ?? []).some((m) => m.kind === 'step'),
        JSON.stringify(drawn),
      );
      assert.deepEqual(errors, []);
      // BATON_TEST_SHOTS=<dir>: keep the screenshot for review.
      const shot = path.join(process.env.BATON_TEST_SHOTS ?? dir, 'deploy-proof-report.png');
      await page.screenshot({ path: shot, fullPage: true });
    } else t.diagnostic(NO_CHROMIUM);

    // A rollback has its proof too, and says so.
    const back = await runBaton(t, ['rollback', '-c', svc.file], { env: NO_CI, timeout: 60_000 });
    assert.equal(back.code, 0, back.stdout + back.stderr);
    const [rb] = await svc.history();
    assert.ok(rb?.rollback, JSON.stringify(rb));
    assert.match(
      back.stdout,
      new RegExp(` proof +0 of ${n(proofOf(rb).requests!)} requests failed during this rollback`),
    );
  });

  it('a bad canary rolled back by analysis: its 5xx counted under its version, none under the stable one', async (t) => {
    const svc = await Service.create(t, {
      strategy: [
        '  type: canary',
        '  canaryInstances: 1',
        '  steps:',
        '    - setWeight: 50',
        '    - pause: 10s',
        '  analysis: { interval: 300ms, failureLimit: 2, minRequests: 5, successRate: 95 }',
      ],
    });
    await svc.start();
    await svc.deployApi('1.0.0');
    const run = await deployUnderLoad(t, svc, '2.0.0-errors');
    assert.equal(run.code, 10, run.stdout);
    const [entry] = await svc.history();
    assert.equal(entry?.result, 'rolled-back');
    const p = proofOf(entry);
    const bad = p.versions.find((v) => v.version === '2.0.0-errors');
    const stable = p.versions.find((v) => v.version === '1.0.0');
    assert.ok(bad && stable, JSON.stringify(p.versions));
    assert.ok(bad.status5xx! > 0, JSON.stringify(bad));
    assert.equal(stable.status5xx, 0);
    assert.deepEqual([p.proxyErrors, p.failed], [0, p.status5xx]);
    // The client's 500s (the app names its version in the body) match, within those in flight.
    const { inside, inflight } = clientWindow(run.sent, p);
    const clientBad = inside.filter((x) => x.status === 500).length;
    assert.equal(
      run.sent.filter((x) => x.status !== 200 && x.status !== 500).length,
      0,
      'no failure but the app 500s',
    );
    assert.ok(
      Math.abs(bad.status5xx! - clientBad) <= inflight,
      `proof ${bad.status5xx} vs client ${clientBad}`,
    );
    assert.ok(
      Math.abs(p.requests! - inside.length) <= inflight,
      `proof ${p.requests} vs client ${inside.length}`,
    );
    assert.ok(
      p.marks.some((m) => m.kind === 'verdict' && m.label === 'fail'),
      JSON.stringify(p.marks),
    );
    assert.match(
      run.stdout,
      new RegExp(` proof +${n(p.failed!)} of ${n(p.requests!)} requests failed during this deploy`),
    );
    assert.match(
      run.stdout,
      new RegExp(
        ` proof +failed: ${n(bad.status5xx!)} 5xx from the app \\(2\\.0\\.0-errors ${n(bad.status5xx!)}\\)`,
        'm',
      ),
    );
  });

  it('HAProxy: counted from show stat by version (latency unknown); 5xx of a bad version under it', async (t) => {
    const haproxy = await startHaproxy(t);
    const svc = await Service.create(t, {
      edge: { lines: [`edge: ${JSON.stringify(haproxy.edgeConfig)}`], url: haproxy.url },
    });
    await svc.start();
    await svc.deployApi('1.0.0');
    const good = await deployUnderLoad(t, svc, '1.1.0');
    assert.equal(good.code, 0, good.stdout);
    const p = proofOf((await svc.history())[0]);
    assert.equal(p.edge, 'haproxy');
    assert.deepEqual(p.unknown, ['p50Ms', 'p99Ms']);
    assert.deepEqual([p.p50Ms, p.p99Ms], [null, null]);
    const w = clientWindow(good.sent, p);
    t.diagnostic(`haproxy proof ${p.requests}, client ${w.inside.length}, in flight ${w.inflight}`);
    assert.ok(
      Math.abs(p.requests! - w.inside.length) <= w.inflight,
      `proof ${p.requests} vs client ${w.inside.length}`,
    );
    assert.deepEqual([p.failed, good.sent.filter((x) => x.status !== 200).length], [0, 0]);
    assert.deepEqual(p.versions.map((v) => v.version).sort(), ['1.0.0', '1.1.0']);
    assert.match(good.stdout, / proof +0 of [\d,]+ requests failed during this deploy \(latency unknown; /);

    // A version that answers 30% 500 (blue-green switches to it: its checks pass).
    const bad = await deployUnderLoad(t, svc, '1.2.0-errors');
    assert.equal(bad.code, 0, bad.stdout);
    const q = proofOf((await svc.history())[0]);
    const b = clientWindow(bad.sent, q);
    const v = q.versions.find((x) => x.version === '1.2.0-errors');
    assert.ok(v && v.status5xx! > 0, JSON.stringify(q.versions));
    assert.equal(q.versions.find((x) => x.version === '1.1.0')?.status5xx ?? 0, 0);
    const client500 = b.inside.filter((x) => x.status === 500).length;
    assert.ok(
      Math.abs(v.status5xx! - client500) <= b.inflight,
      `proof ${v.status5xx} vs client ${client500}`,
    );
  });

  it('nginx: the proof says what is unknown, never zeros', async (t) => {
    const nginx = await startNginx(t);
    const svc = await Service.create(t, {
      edge: { lines: [`edge: ${JSON.stringify(nginx.edgeConfig)}`], url: `http://127.0.0.1:${nginx.port}` },
    });
    await svc.start();
    await svc.deployApi('1.0.0');
    const run = await runBaton(t, ['deploy', '-c', svc.file, '--version', '1.1.0'], {
      env: NO_CI,
      timeout: 60_000,
    });
    assert.equal(run.code, 0, run.stdout);
    const p = proofOf((await svc.history())[0]);
    assert.equal(p.edge, 'nginx');
    assert.deepEqual(
      [p.requests, p.failed, p.status5xx, p.proxyErrors, p.p50Ms],
      [null, null, null, null, null],
    );
    assert.deepEqual(p.unknown, ['requests', 'status5xx', 'proxyErrors', 'clientAborts', 'p50Ms', 'p99Ms']);
    assert.match(p.note ?? '', /nginx/);
    assert.match(run.stdout, / proof +requests during this deploy: unknown \(.*nginx/);
  });
});
