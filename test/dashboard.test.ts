// The dashboard at the admin API's `/`, in Debian's Chromium: it renders the live status of a
// real daemon (no token: loopback only, no login), watches a canary under load from an
// independent client, promotes it from the buttons (next step, then full) with no request
// failed, and aborts a bad canary (30% 5xx) from the button with its verdicts and their numbers
// on the page, no request failed on the stable side while the canary's failures are seen.
// Screenshots go to the test's folder (docs/dashboard.png with UPDATE_SCREENSHOTS=1).
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { request } from 'undici';
import { ensureBuilt, tempDir } from './helpers/cli.js';
import { Service } from './helpers/app-daemon.js';
import {
  confirmAction,
  launch,
  NO_CHROMIUM,
  pageErrors,
  screenshot,
  versionLoad,
} from './helpers/dashboard.js';
import { waitFor } from './helpers/index.js';

const CANARY = [
  '  type: canary',
  '  canaryInstances: 1',
  '  steps:',
  '    - setWeight: 20',
  '    - pause: {}',
  '    - setWeight: 50',
  '    - pause: {}',
  '  analysis: { interval: 300ms, failureLimit: 2, minRequests: 3, successRate: 95 }',
];

/** Waits until the page's text (innerText of `selector`) matches. */
async function pageShows(page: Page, selector: string, re: RegExp, timeout = 20_000): Promise<void> {
  await waitFor(async () => re.test(await page.locator(selector).innerText()), {
    timeout,
    interval: 100,
    what: `${selector} to show ${re}`,
  }).catch(async (err: unknown) => {
    throw new Error(`${String(err)}\n${selector} shows:\n${await page.locator(selector).innerText()}`);
  });
}

describe('the dashboard', { skip: NO_CHROMIUM }, () => {
  before(() => ensureBuilt());

  it('shows the live service, watches a canary under load and promotes it from the buttons: 0 failed', async (t) => {
    const dir = tempDir(t);
    const svc = await Service.create(t, { instances: 2, strategy: CANARY });
    await svc.start();
    await svc.deployApi('1.0.0');
    const browser = await launch(t);
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const errors = pageErrors(page);
    const admin = `http://127.0.0.1:${svc.adminPort}/`;

    const res = await request(admin, { reset: true });
    assert.equal(res.statusCode, 200);
    assert.match(String(res.headers['content-security-policy']), /script-src 'self'/);
    assert.equal(res.headers['x-frame-options'], 'DENY');
    assert.equal(res.headers['x-content-type-options'], 'nosniff');
    assert.equal(res.headers['referrer-policy'], 'no-referrer');
    assert.doesNotMatch(await res.body.text(), /<script(?![^>]*\ssrc=)|\son[a-z]+=/i, 'no inline script');

    await page.goto(admin);
    await pageShows(page, '#connection', /live/);
    await pageShows(page, '#service', /Live version\s+1\.0\.0/);
    await pageShows(page, '#instances', /1\.0\.0[\s\S]*healthy[\s\S]*1\.0\.0[\s\S]*healthy/);
    await pageShows(page, '#deploy', /No deploy is running/);
    await pageShows(page, '#history', /1\.0\.0[\s\S]*succeeded/);

    const load = versionLoad(svc.url);
    t.after(() => load.stop());
    const deploying = svc.deploy('2.0.0', ['--allow-manual-pause'], 90_000);
    // Watched live: the step, both shares, a verdict with its numbers, what comes next.
    await pageShows(page, '#deploy', /Deploying 2\.0\.0 \(from 1\.0\.0\)/);
    await pageShows(page, '.steps li.current', /pause until promote/);
    await pageShows(page, '#deploy table.traffic', /1\.0\.0\s+stable\s+80%[\s\S]*2\.0\.0\s+canary\s+20%/);
    await pageShows(page, '#deploy table.verdicts', /pass\s+\d+\s+100% \(threshold >= 95%\)/);
    await pageShows(page, '#deploy .next', /waiting for `baton promote`/);
    // Rates are per second over the last seconds: both sides get traffic.
    await pageShows(
      page,
      '#deploy table.traffic',
      /stable\s+80%\s+[\d.]+%\s+[\d.]+\s[\s\S]*canary\s+20%\s+[\d.]+%\s+[\d.]+\s/,
    );
    const big = await screenshot(page, dir, 'canary-1280.png', 'dashboard.png');
    assert.ok(big > 40_000, `the 1280px screenshot has ${big} bytes`);

    const phone = await browser.newPage({ viewport: { width: 375, height: 800 }, isMobile: true });
    await phone.goto(admin);
    await pageShows(phone, '.steps li.current', /pause until promote/);
    const small = await screenshot(phone, dir, 'canary-375.png');
    assert.ok(small > 20_000, `the 375px screenshot has ${small} bytes`);
    const width = await phone.evaluate<number>('document.scrollingElement.scrollWidth');
    assert.ok(width <= 375, `no horizontal scroll at 375px (scrollWidth ${width})`);
    await phone.close();

    assert.match(await confirmAction(page, 'Promote: next step'), /^Done: promote-step: .*"full":false/);
    await pageShows(page, '.steps li.current', /setWeight 50%|pause until promote/);
    await waitFor(async () => (await svc.status()).deployment?.canary?.canary.percent === 50, {
      timeout: 10_000,
      what: 'the canary at 50%',
    });
    await pageShows(page, '#deploy table.traffic', /1\.0\.0\s+stable\s+50%[\s\S]*2\.0\.0\s+canary\s+50%/);
    assert.match(await confirmAction(page, 'Promote: full'), /^Done: promote-full: .*"full":true/);
    const run = await deploying;
    assert.equal(run.done?.result, 'succeeded', run.stdout);
    await pageShows(page, '#deploy', /No deploy is running/);
    await pageShows(page, '#service', /Live version\s+2\.0\.0/);
    await pageShows(
      page,
      '#history',
      /2\.0\.0\s+1\.0\.0\s+succeeded[\s\S]*dashboard|2\.0\.0\s+1\.0\.0\s+succeeded/,
    );
    await screenshot(page, dir, 'promoted-1280.png');

    // The deploy's report, one click from its history row: the proof, under its own policy.
    const link = page
      .locator('#history tr', { hasText: /2\.0\.0\s*1\.0\.0succeeded/ })
      .getByRole('link', { name: 'report' });
    const report = await browser.newPage();
    const reportErrors = pageErrors(report);
    const answer = await report.goto(new URL((await link.getAttribute('href'))!, admin).href);
    assert.equal(answer?.status(), 200);
    assert.match((await answer?.allHeaders())?.['content-security-policy'] ?? '', /script-src 'sha256-/);
    assert.match(await report.locator('#headline').innerText(), /^0 of [\d,]+ requests failed/);
    assert.deepEqual(reportErrors, [], 'the report runs under its policy');
    await screenshot(report, dir, 'report.png');
    await report.close();

    // Roll back from the button: a deploy of 1.0.0 with the canary's steps, watched and promoted.
    assert.match(await confirmAction(page, 'Roll back'), /^Done: rollback: started \w+: /);
    await pageShows(page, '#deploy', /Rolling back to 1\.0\.0 \(from 2\.0\.0\)/);
    await pageShows(page, '.steps li.current', /pause until promote/);
    assert.match(await confirmAction(page, 'Promote: full'), /^Done: promote-full: /);
    await pageShows(page, '#service', /Live version\s+1\.0\.0/);
    await pageShows(page, '#history', /1\.0\.0 \(rollback\)\s+2\.0\.0\s+succeeded/);

    const counts = await load.stop();
    assert.ok(
      (counts.ok.get('1.0.0') ?? 0) > 50 && (counts.ok.get('2.0.0') ?? 0) > 50,
      JSON.stringify([...counts.ok]),
    );
    assert.equal(
      [...counts.failed.values()].reduce((a, b) => a + b, 0),
      0,
      counts.samples.join('\n'),
    );
    assert.deepEqual(errors, []);
  });

  it('aborts a bad canary from the button, its failing verdicts shown with their numbers', async (t) => {
    const dir = tempDir(t);
    const svc = await Service.create(t, {
      instances: 2,
      // A failure limit the analysis does not reach first: the button aborts.
      strategy: [
        '  type: canary',
        '  canaryInstances: 1',
        '  steps: [{ setWeight: 50 }, { pause: {} }]',
        '  analysis: { interval: 300ms, failureLimit: 1000, minRequests: 3, successRate: 95 }',
      ],
    });
    await svc.start();
    await svc.deployApi('1.0.0');
    const browser = await launch(t);
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const errors = pageErrors(page);
    await page.goto(`http://127.0.0.1:${svc.adminPort}/`);
    await pageShows(page, '#connection', /live/);

    const load = versionLoad(svc.url);
    t.after(() => load.stop());
    // "*-errors" versions of the example app answer 30% of requests with 500.
    const deploying = svc.deploy('2.0.0-errors', ['--allow-manual-pause'], 90_000);
    await pageShows(page, '#deploy table.verdicts', /fail\s+\d+\s+\d+(\.\d)?% \(threshold >= 95%\)/);
    const verdicts = await page.locator('#deploy table.verdicts').innerText();
    const rate = Number(/fail\s+\d+\s+(\d+(?:\.\d)?)%/.exec(verdicts)![1]);
    assert.ok(rate < 95, `a failing verdict's success rate (${rate}%) is under the threshold`);
    assert.match(verdicts, /success rate \d+(\.\d+)?% < 95%|below|under|95%/);
    await screenshot(page, dir, 'bad-canary-1280.png');

    const answer = await confirmAction(page, 'Abort');
    assert.match(answer, /^Done: abort: .*"aborting"/);
    const run = await deploying;
    assert.equal(run.done?.result, 'rolled-back', run.stdout);
    await pageShows(page, '#history', /2\.0\.0-errors\s+1\.0\.0\s+rolled-back/);
    await pageShows(page, '#service', /Live version\s+1\.0\.0/);
    await screenshot(page, dir, 'aborted-1280.png');

    const counts = await load.stop();
    const failedOn = (v: string): number => counts.failed.get(v) ?? 0;
    // The control: the canary's failures are seen by this client...
    assert.ok(
      failedOn('2.0.0-errors') > 0,
      `the client saw the canary's 5xx: ${JSON.stringify([...counts.failed])}`,
    );
    // ...and none on the stable side, nor a request with no answer.
    assert.equal(failedOn('1.0.0'), 0, counts.samples.join('\n'));
    assert.equal(failedOn('none') + failedOn(''), 0, counts.samples.join('\n'));
    assert.ok((counts.ok.get('1.0.0') ?? 0) > 50);
    assert.deepEqual(errors, []);
  });
});
