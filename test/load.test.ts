// `baton load`: the configured rate within 2% and zero failures against a healthy server; the
// failures when the server dies mid-run; the HTML report drawn in a real headless Chromium.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { chromium } from 'playwright-core';
import { renderReport } from '../src/load/report.js';
import { runLoad } from '../src/load/runner.js';
import { BATON, spawnApp, waitFor } from './helpers/index.js';

const CHROMIUM = '/usr/bin/chromium';

describe('baton load', () => {
  it('holds the configured rate within 2% with zero failures against a healthy server', async (t) => {
    const app = await spawnApp(t, 'v1');
    const r = await runLoad({ url: `http://127.0.0.1:${app.port}/`, rate: 300, durationMs: 3000 });
    assert.equal(r.failed, 0, r.samples.join('; '));
    assert.ok(Math.abs(r.sent - 900) / 900 <= 0.02, `sent ${r.sent}, expected 900 ± 2%`);
    assert.ok(Math.abs(r.achievedRate - 300) / 300 <= 0.02, `rate ${r.achievedRate}/s`);
    assert.equal(r.completed, r.sent);
    assert.deepEqual(Object.keys(r.versions), ['v1'], 'reads the version header');
    assert.ok(r.latencyMs.p50 > 0 && r.latencyMs.p99 >= r.latencyMs.p50);
    assert.equal(r.timeline.length, 3);
  });

  it('reports the failures, by kind, when the server is killed mid-run', async (t) => {
    const app = await spawnApp(t, 'v1');
    const run = runLoad({
      url: `http://127.0.0.1:${app.port}/`,
      rate: 200,
      durationMs: 2500,
      timeoutMs: 2000,
    });
    await waitFor(() => existsSync(`/proc/${app.child.pid}`), { what: 'app running' });
    setTimeout(() => app.child.kill('SIGKILL'), 1000);
    const r = await run;
    assert.ok(r.ok > 100, `requests before the kill succeeded (${r.ok})`);
    assert.ok(r.failures.refused > 100, `refused after the kill: ${JSON.stringify(r.failures)}`);
    assert.equal(r.failed, r.sent - r.ok);
  });

  it('the CLI exits 12 past --max-failures and prints a summary', async (t) => {
    const app = await spawnApp(t, 'v9');
    const url = `http://127.0.0.1:${app.port}/`;
    const good = spawnSync(process.execPath, [BATON, 'load', url, '--rate', '50', '--duration', '1s'], {
      encoding: 'utf8',
    });
    assert.equal(good.status, 0, good.stderr);
    assert.match(good.stdout, /0 failed requests/);
    assert.match(good.stdout, /v9 100\.00%/);
    app.child.kill('SIGKILL');
    await waitFor(() => app.child.exitCode !== null || app.child.signalCode !== null, { what: 'app gone' });
    const bad = spawnSync(
      process.execPath,
      [BATON, 'load', url, '--rate', '50', '--duration', '1s', '--json'],
      {
        encoding: 'utf8',
      },
    );
    assert.equal(bad.status, 12);
    const json = JSON.parse(bad.stdout) as { failed: number; failures: { refused: number } };
    assert.ok(json.failed > 0 && json.failures.refused === json.failed);
    const usage = spawnSync(
      process.execPath,
      [BATON, 'load', 'not a url', '--rate', '5', '--duration', '1s'],
      {
        encoding: 'utf8',
      },
    );
    assert.equal(usage.status, 2);
    assert.match(usage.stderr, /is not a URL/);
  });

  it(
    'writes an HTML report whose charts draw in a real headless Chromium',
    { skip: existsSync(CHROMIUM) ? false : `${CHROMIUM} missing: apt-get install chromium (.ci/run does)` },
    async (t) => {
      const app = await spawnApp(t, 'v2');
      const r = await runLoad({ url: `http://127.0.0.1:${app.port}/`, rate: 100, durationMs: 2000 });
      const dir = mkdtempSync(path.join(os.tmpdir(), 'baton-report-'));
      t.after(() => rmSync(dir, { recursive: true, force: true }));
      const file = path.join(dir, 'report.html');
      const { writeFileSync } = await import('node:fs');
      writeFileSync(file, renderReport(r));
      assert.doesNotMatch(readFileSync(file, 'utf8'), /<script src=/, 'self-contained: no external script');
      const browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: [
          '--no-sandbox',
          '--disable-gpu',
          '--disable-background-networking',
          '--disable-component-update',
          '--no-first-run',
        ],
      });
      t.after(() => browser.close());
      const page = await browser.newPage();
      const requests: string[] = [];
      page.on('request', (req) => requests.push(req.url()));
      await page.goto(`file://${file}`);
      await page.waitForFunction('window.batonCharts === 4');
      // Each canvas has coloured pixels: the charts were really drawn, not just created.
      // (Page code as a string: the tests are type-checked without the DOM library.)
      const drawn = await page.evaluate<number[]>(`[...document.querySelectorAll('canvas')].map((c) => {
        const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let coloured = 0;
        for (let i = 0; i < px.length; i += 4) if (px[i + 3] > 0 && (px[i] !== px[i + 1] || px[i + 1] !== px[i + 2])) coloured++;
        return coloured;
      })`);
      assert.equal(drawn.length, 4);
      for (const n of drawn) assert.ok(n > 100, `a chart drew ${n} coloured pixels`);
      assert.deepEqual(
        requests.filter((u) => !u.startsWith('file:')),
        [],
        'no network request',
      );
    },
  );
});
