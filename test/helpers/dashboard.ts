// Helpers for the dashboard's tests: Debian's Chromium driven by playwright-core (skipped when
// it is missing), screenshots kept in the test's folder (and docs/dashboard.png with
// UPDATE_SCREENSHOTS=1), and a load client that counts answers by the version that gave them.
import { copyFileSync, existsSync, statSync } from 'node:fs';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { Agent, request } from 'undici';
import { ROOT, waitFor } from './index.js';

export const CHROMIUM = '/usr/bin/chromium';
export const NO_CHROMIUM = existsSync(CHROMIUM)
  ? false
  : `${CHROMIUM} missing: apt-get install chromium (.ci/run does)`;

export async function launch(t: TestContext): Promise<Browser> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  t.after(() => browser.close());
  return browser;
}

/** Every error the page logs or throws, to assert none. */
export function pageErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  return errors;
}

/**
 * A full-page screenshot in `dir`; with UPDATE_SCREENSHOTS=1 also copied to `docs/<asDoc>`.
 * Returns its size in bytes.
 */
export async function screenshot(page: Page, dir: string, name: string, asDoc?: string): Promise<number> {
  const file = path.join(dir, name);
  await page.screenshot({ path: file, fullPage: true });
  if (asDoc && process.env.UPDATE_SCREENSHOTS === '1') copyFileSync(file, path.join(ROOT, 'docs', asDoc));
  return statSync(file).size;
}

export interface VersionCounts {
  sent: number;
  /** 2xx answers by x-version. */
  ok: Map<string, number>;
  /** Non-2xx answers by x-version ('' when none), and requests with no answer ('none'). */
  failed: Map<string, number>;
  samples: string[];
}

/**
 * An independent load client through the edge: `concurrency` workers on keep-alive
 * connections, paced, bounded in time and count, counting answers by their x-version.
 */
export function versionLoad(
  url: string,
  { concurrency = 4, maxMs = 90_000, maxRequests = 40_000 } = {},
): { stop: () => Promise<VersionCounts>; counts: VersionCounts } {
  const counts: VersionCounts = { sent: 0, ok: new Map(), failed: new Map(), samples: [] };
  const agent = new Agent({ connections: concurrency, keepAliveTimeout: 30_000 });
  const add = (m: Map<string, number>, k: string): void => void m.set(k, (m.get(k) ?? 0) + 1);
  const deadline = Date.now() + maxMs;
  let stopped = false;
  const worker = async (): Promise<void> => {
    while (!stopped && Date.now() < deadline && counts.sent < maxRequests) {
      counts.sent++;
      try {
        const res = await request(url, { dispatcher: agent, headersTimeout: 10_000, bodyTimeout: 10_000 });
        const body = await res.body.text();
        const version = String(res.headers['x-version'] ?? '');
        if (res.statusCode >= 200 && res.statusCode < 300) add(counts.ok, version);
        else {
          add(counts.failed, version);
          if (counts.samples.length < 10) counts.samples.push(`${res.statusCode} ${version} ${body.trim()}`);
        }
      } catch (err) {
        add(counts.failed, 'none');
        if (counts.samples.length < 10) counts.samples.push(String(err));
      }
      await new Promise((r) => setTimeout(r, 5));
    }
  };
  const workers = Array.from({ length: concurrency }, () => worker());
  let stopping: Promise<VersionCounts> | null = null;
  return {
    counts,
    stop: () =>
      (stopping ??= (async () => {
        stopped = true;
        await Promise.all(workers);
        await agent.close();
        return counts;
      })()),
  };
}

/** Clicks the button named `label`, then Confirm in the dialog; resolves with the result line. */
export async function confirmAction(page: Page, label: string, reason?: string): Promise<string> {
  const before = await page.textContent('#result');
  await page.getByRole('button', { name: label, exact: true }).click();
  const dialog = page.locator('dialog#confirm');
  await dialog.waitFor({ state: 'visible' });
  if (reason !== undefined) await page.fill('#confirm-reason', reason);
  await page.click('#confirm-ok');
  // Polled from here: the page's CSP refuses the string evaluation waitForFunction would use.
  return waitFor(
    async () => {
      const text = (await page.textContent('#result')) ?? '';
      return text !== before && /^(Done|Refused): (?!sent )/.test(text) ? text : null;
    },
    { timeout: 30_000, interval: 50, what: `the answer to ${label}` },
  );
}
