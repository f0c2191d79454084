// The dashboard with BATON_ADMIN_TOKEN set, in Debian's Chromium: the page asks for the token
// (a wrong one refused, late), the right one buys an HttpOnly SameSite=Strict session cookie;
// a POST of the session without its CSRF token is refused, so is one from another origin (the
// cookie goes with it: same site), and bearer-token clients work as before. Nothing of the
// service is shown or pushed without the session.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { before, describe, it } from 'node:test';
import { request } from 'undici';
import type { FreezeView } from '../src/api/freeze.js';
import { ensureBuilt, tempDir } from './helpers/cli.js';
import { Service } from './helpers/app-daemon.js';
import { confirmAction, launch, NO_CHROMIUM, screenshot } from './helpers/dashboard.js';
import { waitFor } from './helpers/index.js';

const TOKEN = 'dashboard-test-token-3f9a61c2';

describe('the dashboard with a token', { skip: NO_CHROMIUM }, () => {
  before(() => ensureBuilt());

  it('asks for the token, refuses a wrong one, a CSRF-less POST and a foreign origin; bearer clients work', async (t) => {
    const dir = tempDir(t);
    const svc = await Service.create(t, { instances: 1 });
    await svc.start({ BATON_ADMIN_TOKEN: TOKEN });
    const admin = `http://127.0.0.1:${svc.adminPort}`;
    const bearer = { authorization: `Bearer ${TOKEN}` };
    const api = async (
      path: string,
      init: { method?: string; headers?: Record<string, string>; body?: string } = {},
    ): Promise<{ status: number; body: string }> => {
      const res = await request(admin + path, { reset: true, ...(init as object) });
      return { status: res.statusCode, body: await res.body.text() };
    };
    const freeze = async (): Promise<FreezeView> =>
      JSON.parse((await api('/v1/freeze', { headers: bearer })).body) as FreezeView;

    // Bearer clients as before; nothing without the token.
    assert.equal((await api('/v1/status', { headers: bearer })).status, 200);
    assert.equal((await api('/v1/status')).status, 401);
    assert.equal((await api('/v1/events')).status, 401);
    const shell = await api('/');
    assert.equal(shell.status, 200);
    assert.match(shell.body, /name="baton-session"/);
    assert.doesNotMatch(shell.body, /baton-csrf|web-/, 'the page shell holds nothing of the service');
    const login = await api('/?login');
    assert.equal(login.status, 200);
    assert.match(login.body, /Admin token/);
    assert.doesNotMatch(login.body, /baton-csrf|web-/, 'the login page shows nothing of the service');

    const browser = await launch(t);
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    await page.goto(`${admin}/`);
    await page.locator('#token').waitFor();
    await screenshot(page, dir, 'login.png');

    // A wrong token: 401, and the page says so.
    await page.fill('#token', 'not-the-token');
    const wrong = page.waitForResponse((r) => r.url().endsWith('/v1/session'));
    await page.click('button[type=submit]');
    assert.equal((await wrong).status(), 401);
    await waitFor(async () => /wrong admin token/.test((await page.textContent('#login-error')) ?? ''), {
      what: 'the login page to say the token is wrong',
    });
    assert.deepEqual(await context.cookies(), [], 'no cookie for a wrong token');

    // The right one: a session cookie, HttpOnly, SameSite=Strict, Path=/.
    await page.fill('#token', TOKEN);
    await page.click('button[type=submit]');
    await page.locator('#connection.good').waitFor({ timeout: 15_000 });
    const cookies = await context.cookies();
    assert.equal(cookies.length, 1, JSON.stringify(cookies));
    const cookie = cookies[0]!;
    assert.equal(cookie.name, `baton_session_${svc.adminPort}`);
    assert.equal(cookie.httpOnly, true);
    assert.equal(cookie.sameSite, 'Strict');
    assert.equal(cookie.path, '/');
    assert.equal(cookie.secure, false, 'plain http: no Secure flag');
    assert.ok(cookie.value.length >= 40, 'a long random session id');
    assert.equal(await page.evaluate<string>('document.cookie'), '', 'the script cannot read it');
    await waitFor(async () => /Live version\s+\S/.test(await page.locator('#service').innerText()), {
      timeout: 15_000,
      what: 'the service shown after login',
    });

    // The CSRF token is in this origin's localStorage only: a new tab finds it there.
    const csrf = await page.evaluate<string | null>("localStorage.getItem('baton-csrf')");
    assert.ok(csrf && csrf.length >= 40, 'the login kept the CSRF token');
    const tab = await context.newPage();
    await tab.goto(`${admin}/`);
    await tab.locator('#connection.good').waitFor({ timeout: 15_000 });

    // The session without its CSRF token: 403, nothing changed.
    const noCsrf = await page.evaluate(async () => {
      const r = await fetch('/v1/freeze', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ reason: 'no csrf' }),
      });
      return { status: r.status, body: await r.text() };
    });
    assert.equal(noCsrf.status, 403, noCsrf.body);
    assert.match(noCsrf.body, /BATON_E_FORBIDDEN[\s\S]*CSRF/);
    assert.equal((await freeze()).freeze, null);

    // The same from the buttons (with the CSRF token): freeze, then unfreeze.
    assert.match(await confirmAction(page, 'Freeze deploys', 'release party'), /^Done: freeze: /);
    assert.equal((await freeze()).freeze?.reason, 'release party');
    await waitFor(async () => /FROZEN by dashboard/.test(await page.locator('#service').innerText()), {
      what: 'the page to show the freeze',
    });
    await screenshot(page, dir, 'frozen.png');
    assert.match(await confirmAction(page, 'Unfreeze'), /^Done: unfreeze: /);
    assert.equal((await freeze()).freeze, null);

    // Another origin on the same host (same site: the cookie goes along): refused.
    const other = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<!doctype html><title>elsewhere</title>');
    });
    await new Promise<void>((r) => other.listen(0, '127.0.0.1', r));
    t.after(() => new Promise<void>((r) => other.close(() => r())));
    const foreign = await context.newPage();
    await foreign.goto(`http://127.0.0.1:${(other.address() as AddressInfo).port}/`);
    const cross = await foreign.evaluate(async (url) => {
      const simple = await fetch(`${url}/v1/freeze`, {
        method: 'POST',
        mode: 'no-cors',
        credentials: 'include',
        headers: { 'content-type': 'text/plain' },
        body: JSON.stringify({ reason: 'cross-site' }),
      }).then(
        (r) => r.type,
        (e: unknown) => String(e),
      );
      const cors = await fetch(`${url}/v1/freeze`, {
        method: 'POST',
        credentials: 'include',
        headers: { 'content-type': 'application/json', 'x-baton-csrf': 'guess' },
        body: JSON.stringify({ reason: 'cross-site' }),
      }).then(
        (r) => `answered ${r.status}`,
        (e: unknown) => `refused: ${String(e)}`,
      );
      return { simple, cors };
    }, admin);
    assert.match(cross.cors, /^refused/, 'the preflight is not granted');
    assert.equal(
      (await freeze()).freeze,
      null,
      `nothing frozen from another origin (${JSON.stringify(cross)})`,
    );
    // And with the cookie and even the right CSRF token, a foreign Origin is refused by the guard.
    const spoofed = await api('/v1/freeze', {
      method: 'POST',
      headers: {
        cookie: `${cookie.name}=${cookie.value}`,
        'x-baton-csrf': csrf ?? '',
        origin: 'http://evil.example',
        'content-type': 'application/json',
      },
      body: JSON.stringify({ reason: 'spoofed' }),
    });
    assert.equal(spoofed.status, 403, spoofed.body);
    // The control: the same request from the admin's own origin goes through.
    const own = await api('/v1/freeze', {
      method: 'POST',
      headers: {
        cookie: `${cookie.name}=${cookie.value}`,
        'x-baton-csrf': csrf ?? '',
        origin: admin,
        'content-type': 'application/json',
      },
      body: JSON.stringify({ reason: 'own origin' }),
    });
    assert.equal(own.status, 200, own.body);
    assert.equal((await api('/v1/freeze', { method: 'DELETE', headers: bearer })).status, 200);

    // Log out: the session is gone, the login page is back.
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.locator('#token').waitFor();
    // The other tab's feed ended with the session: it shows the login too.
    await tab.locator('#token').waitFor({ timeout: 15_000 });
    const after = await api('/v1/status', { headers: { cookie: `${cookie.name}=${cookie.value}` } });
    assert.equal(after.status, 401, 'the old cookie no longer works');

    // Guessing is limited: after a few wrong tokens even the right one waits.
    for (let i = 0; i < 5; i++) {
      const r = await api('/v1/session', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ token: `guess-${i}` }),
      });
      assert.equal(r.status, 401);
    }
    const blocked = await api('/v1/session', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ token: TOKEN }),
    });
    assert.equal(blocked.status, 401);
    assert.match(blocked.body, /too many wrong tokens/);
    // Bearer clients are not affected.
    assert.equal((await api('/v1/status', { headers: bearer })).status, 200);
  });
});
