// The review of the dashboard's sessions: the cookie alone (browsers send it to every port of
// the host, the app's behind the proxy too) gives nothing, and the proxy does not forward it;
// slow login bodies get no more guesses; wrong tokens are limited over all addresses and the
// addresses remembered are capped; a session's feed ends with it; a reader that does not read
// is cut off; the feed's history is kept in memory.
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import http, { type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import { before, describe, it, type TestContext } from 'node:test';
import { request } from 'undici';
import type { HistoryEntry, ProgressEvent } from '../src/api/deploy.js';
import { PATHS } from '../src/api/paths.js';
import { AdminServer } from '../src/admin/server.js';
import { Persistence } from '../src/controller/persist.js';
import { StateStore, type DeploymentState } from '../src/controller/state.js';
import { DashboardFeed, MAX_BUFFERED_BYTES, type FeedHost } from '../src/dashboard/feed.js';
import { MAX_FAILURES, Sessions } from '../src/dashboard/sessions.js';
import { withoutSessionCookies } from '../src/edge/builtin/headers.js';
import { silentLogger } from '../src/log.js';
import { Service } from './helpers/app-daemon.js';
import { ensureBuilt, tempDir } from './helpers/cli.js';
import { eachEngine, route, startBackend, startProxy, waitFor } from './helpers/index.js';

const TOKEN = 'isolation-test-token-8c41d07e';

function req(headers: Record<string, string>): IncomingMessage {
  return { headers, socket: {} } as unknown as IncomingMessage;
}

describe('dashboard sessions, limits', () => {
  it('limits wrong tokens over all addresses, and forgets the oldest address past the cap', () => {
    const s = new Sessions(undefined, { global: 50, addresses: 1000 });
    for (let i = 0; i < 49; i++) s.failed(`10.1.0.${i}`);
    assert.equal(s.blockedFor('10.2.0.1'), 0, 'under the global limit');
    s.failed('10.1.1.1');
    assert.ok(s.blockedFor('10.2.0.1') > 50_000, 'a fresh address waits too');
    // A right token undoes its attempt (counted before the body was read).
    s.succeeded('10.1.1.1');
    assert.equal(s.blockedFor('10.2.0.1'), 0);

    const capped = new Sessions(undefined, { global: Infinity, addresses: 100 });
    for (let i = 0; i < MAX_FAILURES; i++) capped.failed('10.9.9.9');
    assert.ok(capped.blockedFor('10.9.9.9') > 0);
    for (let i = 0; i < 100; i++) capped.failed(`10.3.0.${i}`);
    assert.equal(capped.blockedFor('10.9.9.9'), 0, 'the oldest address was forgotten');
    assert.equal(capped.blockedFor('10.3.0.99'), 0);
  });

  it("ends a session's streams at logout, and says it is over once it expired", () => {
    const s = new Sessions();
    const login = req({ host: '127.0.0.1:9901', origin: 'http://127.0.0.1:9901' });
    const cookie = s.create(login).cookie.split(';')[0]!;
    const of = req({ host: '127.0.0.1:9901', cookie });
    let ended = 0;
    const w = s.watch(of, () => ended++)!;
    assert.equal(w.alive(), true);
    s.end(of);
    assert.equal(ended, 1);
    assert.equal(w.alive(), false);
    assert.equal(
      s.watch(of, () => ended++),
      null,
      'no session, nothing to watch',
    );

    const short = new Sessions(0);
    const c = short.create(login).cookie.split(';')[0]!;
    assert.equal(
      short.watch(req({ host: '127.0.0.1:9901', cookie: c }), () => undefined),
      null,
    );
  });
});

eachEngine('the proxy and the dashboard cookie', () => {
  it('drops baton_session* cookie pairs, keeps the others', async (t) => {
    assert.equal(withoutSessionCookies('a=1; baton_session_9901=x; b=2'), 'a=1; b=2');
    assert.equal(withoutSessionCookies('baton_session=x'), '');
    const backend = await startBackend(t, 'app');
    const { port } = await startProxy(t, [route(backend.port)]);
    const get = async (cookie: string): Promise<string | undefined> => {
      const res = await request(`http://127.0.0.1:${port}/`, { headers: { cookie }, reset: true });
      await res.body.text();
      return backend.seen.at(-1)!.headers.cookie;
    };
    assert.equal(await get('theme=dark; baton_session_9901=secret; lang=en'), 'theme=dark; lang=en');
    assert.equal(await get('baton_session_9901=secret'), undefined, 'nothing left: no Cookie line');
    // The control: other cookies pass as sent.
    assert.equal(await get('theme=dark; lang=en'), 'theme=dark; lang=en');
  });
});

describe('the feed', () => {
  it('cuts off a reader that does not read', async (t) => {
    const host = {
      config: () => {
        throw new Error('not needed here');
      },
    } as unknown as FeedHost;
    const feed = new DashboardFeed(host);
    t.after(() => feed.close());
    const server = http.createServer((_req, res) => void feed.attach(res));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    t.after(() => new Promise<void>((r) => server.close(() => r())));
    const socket = net.connect((server.address() as AddressInfo).port, '127.0.0.1');
    socket.on('error', () => undefined);
    t.after(() => void socket.destroy());
    let got = 0;
    socket.once('data', (c: Buffer) => {
      got += c.length;
      socket.pause(); // and never read again
    });
    socket.write('GET /v1/events HTTP/1.1\r\nHost: x\r\n\r\n');
    await waitFor(() => got > 0, { what: 'the stream to start' });
    let closed = false;
    socket.once('close', () => (closed = true));
    const line = { kind: 'log', message: 'x'.repeat(64 * 1024) } as unknown as ProgressEvent;
    // Far more than the socket buffers and the limit together, in bounded rounds.
    for (let round = 0; round < 40 && !closed; round++) {
      for (let i = 0; i < 50; i++) feed.extension().onEvent?.(line, {} as DeploymentState);
      await new Promise((r) => setTimeout(r, 50));
    }
    await waitFor(() => closed, { what: `the stalled reader cut off past ${MAX_BUFFERED_BYTES} bytes` });
  });

  it('is closed with the admin API (daemon shutdown): its streams end, not cut', async (t) => {
    const run = async (closeFeed: boolean): Promise<string> => {
      const feed = new DashboardFeed({ config: () => ({}) } as unknown as FeedHost);
      const admin = new AdminServer({ kind: 'tcp', host: '127.0.0.1', port: 0 }, silentLogger(), {
        token: '',
      });
      admin.stream('GET', PATHS.events, (_r, res) => feed.attach(res));
      if (closeFeed) admin.onClose(() => feed.close());
      const bound = await admin.listen();
      t.after(() => admin.close());
      const port = bound.kind === 'tcp' ? bound.port : 0;
      const res = await request(`http://127.0.0.1:${port}${PATHS.events}`, { reset: true });
      const it = res.body[Symbol.asyncIterator]();
      await it.next();
      const rest = (async () => {
        while (!(await it.next()).done);
        return 'ended';
      })().catch((e: unknown) => `cut: ${String(e)}`);
      await admin.close();
      return rest;
    };
    assert.equal(await run(true), 'ended');
    // The control: without it, the shutdown cuts the stream.
    assert.match(await run(false), /^cut/);
  });

  it('answers history from memory once read (the feed asks every tick)', (t) => {
    const dir = tempDir(t);
    const store = new StateStore(dir);
    const p = new Persistence(store, silentLogger());
    assert.deepEqual(p.history(20), []);
    const entry = (id: string): HistoryEntry => ({
      id,
      version: id,
      previousVersion: null,
      strategy: 'rolling',
      actor: 'test',
      rollback: false,
      startedAt: new Date().toISOString(),
      endedAt: new Date().toISOString(),
      durationMs: 1,
      result: 'succeeded',
      reason: null,
    });
    for (const id of ['d1', 'd2', 'd3']) p.appendHistory(entry(id));
    assert.deepEqual(
      store.history(20).map((h) => h.id),
      ['d3', 'd2', 'd1'],
      'written to the file',
    );
    // The file gone: history() did not read it.
    rmSync(store.historyFile);
    assert.deepEqual(
      p.history(20).map((h) => h.id),
      ['d3', 'd2', 'd1'],
    );
    assert.deepEqual(
      p.history(2).map((h) => h.id),
      ['d3', 'd2'],
    );
  });
});

describe('a session over HTTP, with a token', () => {
  before(() => ensureBuilt());

  it('needs its CSRF token on GETs too, the page holds none, its feed ends at logout; slow bodies get no extra guesses', async (t: TestContext) => {
    const svc = await Service.create(t, { instances: 1 });
    await svc.start({ BATON_ADMIN_TOKEN: TOKEN });
    const admin = `http://127.0.0.1:${svc.adminPort}`;
    const login = await request(`${admin}/v1/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: admin },
      body: JSON.stringify({ token: TOKEN }),
      reset: true,
    });
    assert.equal(login.statusCode, 200);
    const { csrf } = (await login.body.json()) as { csrf: string };
    const cookie = String(login.headers['set-cookie']).split(';')[0]!;
    const get = async (path: string, headers: Record<string, string> = {}) => {
      const res = await request(admin + path, { headers: { cookie, ...headers }, reset: true });
      return { status: res.statusCode, body: await res.body.text() };
    };

    // The page (with the cookie) holds no CSRF token; the cookie alone reads nothing.
    const page = await get('/');
    assert.equal(page.status, 200);
    assert.ok(!page.body.includes(csrf), 'no CSRF token in the page');
    assert.doesNotMatch(page.body, /baton-csrf/);
    assert.equal((await get('/v1/status')).status, 403);
    assert.equal((await get('/v1/history')).status, 403);
    assert.equal((await get('/v1/events')).status, 403);
    // The control: with its CSRF token, it does.
    assert.equal((await get('/v1/status', { 'x-baton-csrf': csrf })).status, 200);
    // The login page and the assets need nothing.
    assert.match((await get('/?login')).body, /Admin token/);
    assert.equal((await get(PATHS.dashboardScript)).status, 200);

    // The feed, then logout: the stream ends.
    const feed = await request(`${admin}/v1/events`, {
      headers: { cookie, 'x-baton-csrf': csrf },
      reset: true,
    });
    assert.equal(feed.statusCode, 200);
    let ended = false;
    let text = '';
    const reading = (async () => {
      for await (const c of feed.body) text += String(c);
      ended = true;
    })().catch(() => (ended = true));
    await waitFor(() => text.includes('event: snapshot'), { timeout: 15_000, what: 'a snapshot' });
    const out = await request(`${admin}/v1/session`, {
      method: 'DELETE',
      headers: { cookie, 'x-baton-csrf': csrf, origin: admin },
      reset: true,
    });
    assert.equal(out.statusCode, 200, await out.body.text());
    await waitFor(() => ended, { timeout: 10_000, what: 'the feed to end at logout' });
    await reading;

    // Slow bodies on many connections, each started before any failed: at most MAX_FAILURES
    // of them are tried, the rest refused as too many.
    const n = MAX_FAILURES + 4;
    const sockets = await Promise.all(
      Array.from({ length: n }, async (_, i) => {
        const body = JSON.stringify({ token: `guess-${i}` });
        const s = net.connect(svc.adminPort, '127.0.0.1');
        t.after(() => void s.destroy());
        let answer = '';
        s.on('data', (c: Buffer) => (answer += c.toString()));
        s.on('error', () => undefined);
        await new Promise<void>((r) => s.once('connect', r));
        s.write(
          `POST /v1/session HTTP/1.1\r\nHost: 127.0.0.1:${svc.adminPort}\r\nContent-Type: application/json\r\n` +
            `Content-Length: ${body.length}\r\nConnection: close\r\n\r\n${body.slice(0, 3)}`,
        );
        return { s, body, answer: () => answer };
      }),
    );
    // Each counted before its body: past MAX_FAILURES, refused before sending it.
    const tooMany = (): number => sockets.filter((x) => /too many wrong tokens/.test(x.answer())).length;
    await waitFor(() => tooMany() >= n - MAX_FAILURES, {
      timeout: 10_000,
      what: `${n - MAX_FAILURES} slow logins refused before their bodies`,
    });
    for (const { s, body } of sockets) s.write(body.slice(3));
    await waitFor(() => sockets.every((x) => /\r\n\r\n[\s\S]*\}/.test(x.answer())), {
      timeout: 20_000,
      what: 'every login answered',
    });
    const tried = sockets.filter((x) => /wrong admin token/.test(x.answer())).length;
    const refused = sockets.filter((x) => /too many wrong tokens/.test(x.answer())).length;
    assert.ok(tried <= MAX_FAILURES, `${tried} of ${n} slow guesses were tried`);
    assert.equal(tried + refused, n);
  });
});
