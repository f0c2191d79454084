// The HTML report of `baton load`: versions named by the built-in proxy (proxy.versionHeader),
// the app's x-version as the fallback; a colour per version, all different; the daemon's
// deploys as start / switch / end markers and a step table. The end-to-end case runs a real
// daemon, deploys during `baton load -c ... --report`, and checks the page in headless Chromium.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { before, describe, it, type TestContext } from 'node:test';
import { pathToFileURL } from 'node:url';
import { chromium, type Page } from 'playwright-core';
import { request } from 'undici';
import type { HistoryEntry, ProgressEvent } from '../src/api/deploy.js';
import type { TargetsAnswer } from '../src/api/targets.js';
import { VERSION_HEADER } from '../src/edge/builtin/headers.js';
import { deployTimeline } from '../src/load/deploys.js';
import { FIXED_COLOURS, NO_VERSION_COLOUR, versionColours } from '../src/load/palette.js';
import { MARK_STYLE } from '../src/load/report-page.js';
import { NO_DEPLOYS_NOTE, renderReport } from '../src/load/report.js';
import { runLoad } from '../src/load/runner.js';
import { APP, config, route, startBackend, startProxy, waitFor } from './helpers/index.js';
import { ensureBuilt, freePort, runBaton, startDaemon, tempDir, writeFile } from './helpers/cli.js';

const CHROMIUM = '/usr/bin/chromium';
const NO_CHROMIUM = existsSync(CHROMIUM)
  ? false
  : `${CHROMIUM} missing: apt-get install chromium (.ci/run does)`;

function rgb(hex: string): [number, number, number] {
  const n = Number.parseInt(hex.slice(1), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

function distance(a: string, b: string): number {
  const [x, y] = [rgb(a), rgb(b)];
  return Math.hypot(x[0] - y[0], x[1] - y[1], x[2] - y[2]);
}

describe('the palette', () => {
  it('gives N versions N different colours, twelve far apart, then generated; "-" is grey', () => {
    assert.equal(new Set(FIXED_COLOURS).size, 12);
    for (const [i, a] of FIXED_COLOURS.entries()) {
      assert.ok(distance(a, NO_VERSION_COLOUR) > 60, `${a} is not the no-version grey`);
      for (const b of FIXED_COLOURS.slice(i + 1))
        assert.ok(distance(a, b) > 60, `${a} and ${b} are far apart`);
    }
    const versions = Array.from({ length: 300 }, (_, i) => `1.${i}.0`);
    const colours = versionColours(versions);
    const all = versions.map((v) => colours[v]!);
    assert.equal(new Set(all).size, 300, 'no colour twice');
    assert.ok(all.every((c) => /^#[0-9a-f]{6}$/.test(c) && c !== NO_VERSION_COLOUR));
    assert.deepEqual(all.slice(0, 12), FIXED_COLOURS);
    assert.equal(versionColours(['-', 'a'])['-'], NO_VERSION_COLOUR);
    // The first seen keeps its colour (repeats ignored): stable within a report.
    assert.deepEqual(versionColours(['a', 'b', 'a', '-', 'c']), versionColours(['a', 'b', 'c', '-']));
  });
});

const T0 = Date.parse('2030-01-01T10:00:00.000Z');
const at = (s: number): string => new Date(T0 + s * 1000).toISOString();

function event(
  s: number,
  deployId: string,
  e: Partial<ProgressEvent> & Pick<ProgressEvent, 'kind'>,
): ProgressEvent {
  return { time: at(s), deployId, message: '', elapsedMs: 0, ...e };
}

function historyEntry(id: string, version: string, from: number, to: number): HistoryEntry {
  return {
    id,
    version,
    previousVersion: null,
    strategy: 'recreate',
    actor: 'ci',
    rollback: false,
    startedAt: at(from),
    endedAt: at(to),
    durationMs: (to - from) * 1000,
    result: 'succeeded',
    reason: null,
  };
}

describe('deploy markers', () => {
  it('marks start, every traffic move and end within the run; the table has every step', () => {
    const events: ProgressEvent[] = [
      event(-1, 'd1', { kind: 'start', message: 'deploying 1.1.0 (blue-green, replacing 1.0.0) for ci' }),
      event(1.5, 'd1', { kind: 'step', step: 'starting', message: 'starting 1 instance(s)' }),
      event(2.25, 'd1', { kind: 'step', step: 'switching', message: 'switching all traffic to 1.1.0' }),
      event(2.5, 'd1', { kind: 'info', message: 'a note' }),
      event(2.75, 'd1', { kind: 'step', step: 'draining', message: 'draining 1 old instance(s)' }),
      event(3, 'd1', { kind: 'done', result: 'succeeded', message: '1.1.0 is live' }),
      event(4, 'd2', { kind: 'start', message: 'deploying 1.2.0 (canary, replacing 1.1.0) for ci' }),
      event(4.5, 'd2', { kind: 'step', step: 'weight', message: '20% of traffic to 1.2.0' }),
      event(5, 'd2', { kind: 'step', step: 'rolling-back', message: 'all traffic back to 1.1.0' }),
      // After the run: in the table, not on the charts.
      event(12, 'd2', { kind: 'done', result: 'rolled-back', message: 'deploy rolled-back' }),
    ];
    const history = [
      historyEntry('d0', '0.9.0', -30, -20), // long before: left out
      historyEntry('d3', '1.3.0', 6, 6.5), // came and went between two looks
    ];
    const { marks, steps } = deployTimeline({ events, history, source: 'test' }, at(0), 10_000);
    assert.deepEqual(
      marks.map((m) => [m.t, m.kind, m.label]),
      [
        [2.25, 'switch', 'switch'],
        [3, 'end', 'end succeeded'],
        [4, 'start', 'start 1.2.0'],
        [4.5, 'switch', 'weight'],
        [5, 'switch', 'rolling-back'],
        [6, 'start', 'start 1.3.0'],
        [6.5, 'end', 'end succeeded'],
      ],
    );
    assert.equal(steps.length, events.length + 2);
    assert.deepEqual(steps[0], {
      t: -1,
      time: at(-1),
      version: '1.1.0',
      step: 'start',
      detail: 'deploying 1.1.0 (blue-green, replacing 1.0.0) for ci',
    });
    assert.deepEqual(
      steps.map((s) => [s.version, s.step]),
      [
        ['1.1.0', 'start'],
        ['1.1.0', 'starting'],
        ['1.1.0', 'switching'],
        ['1.1.0', 'info'],
        ['1.1.0', 'draining'],
        ['1.1.0', 'succeeded'],
        ['1.2.0', 'start'],
        ['1.2.0', 'weight'],
        ['1.2.0', 'rolling-back'],
        ['1.3.0', 'start'],
        ['1.3.0', 'succeeded'],
        ['1.2.0', 'rolled-back'],
      ],
    );
  });
});

describe('versions from the built-in proxy', () => {
  it('proxy.versionHeader: true names the target version, over what the app says; off by default', async (t) => {
    const app = await startBackend(t, 'app', (_req, res) => {
      res.setHeader('x-version', 'from-app');
      res.setHeader(VERSION_HEADER, 'spoofed');
      res.end('ok');
    });
    assert.equal(config('service: s\nlisten: 127.0.0.1:0\n').proxy.versionHeader, false);
    const on = await startProxy(
      t,
      [route(app.port, 1, { version: '2.0.0' })],
      'proxy:\n  versionHeader: true\n',
    );
    const res = await request(`${on.url}/`);
    await res.body.dump();
    assert.equal(res.headers[VERSION_HEADER], '2.0.0', "one header, the proxy's");
    const load = await runLoad({ url: `${on.url}/`, rate: 50, durationMs: 400 });
    assert.deepEqual(Object.keys(load.versions), ['2.0.0'], 'baton load reads it first');

    const off = await startProxy(t, [route(app.port, 1, { version: '2.0.0' })]);
    const plain = await request(`${off.url}/`);
    await plain.body.dump();
    assert.equal(plain.headers[VERSION_HEADER], 'spoofed', "off: the answer is the app's, untouched");
    const byApp = await runLoad({
      url: `${off.url}/`,
      rate: 50,
      durationMs: 400,
      versionHeader: 'x-version',
    });
    assert.deepEqual(Object.keys(byApp.versions), ['from-app'], '--version-header NAME reads that one');
  });

  it("falls back to the app's x-version, and says so when no answer names a version", async (t) => {
    const named = await startBackend(t, 'named', (_req, res) => {
      res.setHeader('x-version', 'v7');
      res.end('ok');
    });
    const r = await runLoad({ url: `http://127.0.0.1:${named.port}/`, rate: 50, durationMs: 400 });
    assert.deepEqual(Object.keys(r.versions), ['v7']);
    const anonymous = await startBackend(t, 'anonymous');
    const none = await runLoad({ url: `http://127.0.0.1:${anonymous.port}/`, rate: 50, durationMs: 400 });
    const html = renderReport(none);
    assert.match(html, /No answer named its version: with the built-in proxy set proxy\.versionHeader: true/);
    assert.ok(html.includes(NO_DEPLOYS_NOTE), 'no config: the report says deploys were not watched');
  });
});

// --- end to end: a daemon, a deploy during `baton load -c`, the report in Chromium -----------

/**
 * The example app, named by this file's path, told another version than Baton's: its x-version
 * says app-1.0.0 where the proxy's X-Baton-Version says 1.0.0, so the report shows which it read.
 */
const LAUNCHER = `// test launcher
const at = process.argv.indexOf('--version') + 1;
process.argv[at] = 'app-' + process.argv[at];
await import(${JSON.stringify(pathToFileURL(APP).href)});
`;

function pidsWith(needle: string): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${name}/cmdline`, 'utf8').includes(needle)) pids.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

async function openPage(t: TestContext, file: string): Promise<Page> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run'],
  });
  t.after(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1200, height: 1400 } });
  await page.goto(pathToFileURL(file).href);
  await page.waitForFunction('window.batonCharts === 4');
  return page;
}

interface DrawnMark {
  kind: keyof typeof MARK_STYLE;
  label: string;
  x: number;
  top: number;
  bottom: number;
}

/** Share of the pixels down a marker's column (±1px) in the marker's colour. */
function markerPixels(page: Page, canvas: string, m: DrawnMark): Promise<number> {
  const [r, g, b] = rgb(MARK_STYLE[m.kind].colour);
  // Page code as a string: the tests are type-checked without the DOM library.
  return page.evaluate<number>(`(() => {
    const c = document.getElementById(${JSON.stringify(canvas)});
    const scale = c.width / c.getBoundingClientRect().width;
    const x = Math.round(${m.x} * scale), top = Math.round(${m.top} * scale), bottom = Math.round(${m.bottom} * scale);
    const px = c.getContext('2d').getImageData(x - 1, top, 3, bottom - top).data;
    let hits = 0;
    for (let row = 0; row < bottom - top; row++) {
      for (let col = 0; col < 3; col++) {
        const i = (row * 3 + col) * 4;
        if (Math.abs(px[i] - ${r}) < 40 && Math.abs(px[i + 1] - ${g}) < 40 && Math.abs(px[i + 2] - ${b}) < 40 && px[i + 3] > 200) { hits++; break; }
      }
    }
    return hits / (bottom - top);
  })()`);
}

describe('baton load -c baton.yaml --report during a deploy', () => {
  before(() => ensureBuilt());

  it(
    'marks the deploy, lists its steps and charts each version in its own colour (Chromium)',
    { skip: NO_CHROMIUM },
    async (t) => {
      const dir = tempDir(t);
      const launcher = writeFile(dir, 'launch.mjs', LAUNCHER);
      t.after(() => {
        for (const pid of pidsWith(launcher)) process.kill(pid, 'SIGKILL');
      });
      const adminPort = await freePort();
      const file = writeFile(
        dir,
        'baton.yaml',
        [
          'service: web',
          'listen: 127.0.0.1:0',
          `admin: 127.0.0.1:${adminPort}`,
          'stateDir: state',
          'proxy: { versionHeader: true }',
          'app:',
          `  command: ${JSON.stringify(`"${process.execPath}" "${launcher}" --port {port} --version {version}`)}`,
          '  instances: 1',
          '  readyTimeout: 10s',
          '  drainTimeout: 2s',
          '  stopTimeout: 2s',
          '  health: { path: /health, interval: 100ms, timeout: 1s, healthyThreshold: 1, unhealthyThreshold: 2 }',
          // verify: the deploy lasts a second at least, so the watch (every 100ms) follows its steps.
          'strategy: { type: blue-green, verify: 1s, keepOld: 0s }',
          '',
        ].join('\n'),
      );
      const daemon = await startDaemon(t, file, { args: ['--stop-on-exit'] });
      const admin = `http://127.0.0.1:${adminPort}`;
      const deploy = async (version: string): Promise<void> => {
        const res = await request(`${admin}/v1/deploy`, {
          method: 'POST',
          body: JSON.stringify({ version, actor: 'test' }),
          headers: { 'content-type': 'application/json' },
        });
        const lines = (await res.body.text()).trimEnd().split('\n');
        assert.equal((JSON.parse(lines.at(-1)!) as ProgressEvent).result, 'succeeded', lines.join('\n'));
      };
      await deploy('1.0.0');
      const report = path.join(dir, 'report.html');
      const load = runBaton(
        t,
        ['load', `${daemon.url}/`, '--rate', '40', '--duration', '5s', '-c', file, '--report', report],
        { timeout: 30_000 },
      );
      // The load is running once the proxy counts its requests.
      await waitFor(
        async () => {
          const res = await request(`${admin}/v1/targets`);
          const answer = (await res.body.json()) as TargetsAnswer;
          return answer.targets.reduce((n, x) => n + x.requests, 0) >= 10;
        },
        { timeout: 10_000, interval: 50, what: 'baton load to send its first requests' },
      );
      await deploy('1.1.0');
      const r = await load;
      assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
      assert.match(r.stdout, /0 failed requests/);
      assert.match(r.stdout, /deploys {4}\+[\d.]+s start 1\.1\.0, \+[\d.]+s switch, \+[\d.]+s end succeeded/);

      const page = await openPage(t, report);
      const data = JSON.parse(
        await page.evaluate<string>(`document.getElementById('report-data').textContent`),
      ) as { versions: { v: string; colour: string }[]; marks: { kind: string }[] };
      assert.deepEqual(
        data.marks.map((m) => m.kind),
        ['start', 'switch', 'end'],
      );
      // The charts as Chart.js holds them: one series per version, in different colours.
      const series = await page.evaluate<[string, string][]>(
        `Chart.getChart('versions').data.datasets.map((d) => [d.label, d.backgroundColor])`,
      );
      const byVersion = Object.fromEntries(series);
      assert.deepEqual(
        Object.keys(byVersion).sort(),
        ['1.0.0', '1.1.0'],
        'both versions answered, named by the proxy',
      );
      assert.notEqual(byVersion['1.0.0'], byVersion['1.1.0']);
      // The markers were drawn on every chart, and are there in the pixels.
      const drawn = await page.evaluate<Record<string, DrawnMark[]>>('window.batonMarks');
      assert.deepEqual(Object.keys(drawn).sort(), ['errors', 'latency', 'rate', 'versions']);
      for (const [canvas, marks] of Object.entries(drawn)) {
        assert.deepEqual(
          marks.map((m) => m.kind),
          ['start', 'switch', 'end'],
          canvas,
        );
        for (const m of marks) {
          const share = await markerPixels(page, canvas, m);
          assert.ok(
            share > (m.kind === 'switch' ? 0.8 : 0.3),
            `${canvas}: ${m.kind} marker drawn (${share})`,
          );
        }
      }
      // The step table, in the DOM.
      const rows = await page.evaluate<string[][]>(
        `[...document.querySelectorAll('#steps tbody tr')].map((tr) => [...tr.cells].map((c) => c.textContent))`,
      );
      const steps = rows.map((row) => [row[2], row[3]]);
      for (const step of ['start', 'starting', 'switching', 'draining', 'succeeded'])
        assert.ok(
          steps.some(([v, s]) => v === '1.1.0' && s === step),
          `the table has ${step}: ${JSON.stringify(rows)}`,
        );
      assert.ok(
        rows.every((row) => /^\d\d:\d\d:\d\d\.\d{3}$/.test(row[0]!) && /^[+-]?\d+\.\ds$/.test(row[1]!)),
      );

      daemon.child.kill('SIGTERM');
      assert.deepEqual(await daemon.exited, { code: 0, signal: null });
      await waitFor(() => pidsWith(launcher).length === 0, { what: 'the instances to stop with the daemon' });
    },
  );

  it('is bounded without a daemon, and refuses bad flags', async (t) => {
    const app = await startBackend(t, 'app');
    const dir = tempDir(t);
    const report = path.join(dir, 'r.html');
    const nobody = await freePort();
    const url = `http://127.0.0.1:${app.port}/`;
    const started = Date.now();
    const r = await runBaton(t, [
      'load',
      url,
      '--rate',
      '20',
      '--duration',
      '1s',
      '--admin',
      `127.0.0.1:${nobody}`,
      '--report',
      report,
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(Date.now() - started < 10_000, 'it ends with the run');
    assert.match(
      r.stdout,
      /deploys {4}none during the run\n {2}deploys {4}partly seen: no Baton daemon answers/,
    );
    assert.match(
      readFileSync(report, 'utf8'),
      /Deploys from the daemon on 127\.0\.0\.1:\d+, partly: no Baton daemon answers/,
    );
    const both = await runBaton(t, [
      'load',
      url,
      '--rate',
      '5',
      '--duration',
      '1s',
      '--admin',
      '127.0.0.1:1',
      '-c',
      'x.yaml',
    ]);
    assert.equal(both.code, 2);
    assert.match(both.stderr, /not both/);
    const bad = await runBaton(t, ['load', url, '--rate', '5', '--duration', '1s', '--admin', 'nowhere']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--admin "nowhere" is not an admin address/);
  });
});
