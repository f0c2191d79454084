// The built-in proxy against clients and apps that misuse a connection, on raw sockets: an
// upgrade the app declines (the connection must stay HTTP, parsed by the proxy, never a raw
// tunnel), clients that abandon requests (counted apart, never as the version's errors, so a
// healthy canary is not rolled back for them), and clients that stall while sending a body or
// reading an answer (let go after clientBodyTimeout / clientSendTimeout).
import assert from 'node:assert/strict';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import net from 'node:net';
import { Writable } from 'node:stream';
import { before, describe, it, type TestContext } from 'node:test';
import { pino } from 'pino';
import { request } from 'undici';
import { BuiltinEdge } from '../src/edge/builtin/edge.js';
import { ProxyMetrics } from '../src/edge/builtin/metrics.js';
import { BuiltinProxy, type AccessLogEntry } from '../src/edge/builtin/proxy.js';
import type { RouteSpec, SplitSpec } from '../src/edge/edge.js';
import type { StatusView } from '../src/api/status.js';
import { Analysis } from '../src/strategies/analysis.js';
import { canaryStrategy, Service, type DeployRun } from './helpers/app-daemon.js';
import { ensureBuilt } from './helpers/cli.js';
import {
  config,
  eachEngine,
  testEngine,
  type Handler,
  refusedConfig,
  route,
  startBackend,
  waitFor,
} from './helpers/index.js';

// --- a proxy with its log and access log kept --------------------------------------------------

interface Started {
  readonly proxy: BuiltinProxy;
  readonly port: number;
  /** The proxy's log lines (JSON), as written. */
  readonly logs: { msg: string; [k: string]: unknown }[];
  readonly access: AccessLogEntry[];
}

async function startReviewProxy(
  t: TestContext,
  routes: RouteSpec[],
  proxyYaml = '',
  split: SplitSpec | null = null,
): Promise<Started> {
  const cfg = config(`service: test\nlisten: 127.0.0.1:0\n${proxyYaml ? `proxy: { ${proxyYaml} }\n` : ''}`);
  const logs: Started['logs'] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n')) if (line) logs.push(JSON.parse(line) as never);
      cb();
    },
  });
  const access: AccessLogEntry[] = [];
  const proxy = new BuiltinProxy({
    listen: cfg.listen!,
    proxy: { ...cfg.proxy, engine: testEngine() },
    balance: cfg.balance,
    log: pino({ level: 'info' }, sink),
    accessLog: (e) => void access.push(e),
  });
  proxy.setRoutes(routes, split);
  const a = await proxy.listen();
  if (a.kind !== 'tcp') throw new Error('expected tcp');
  t.after(() => proxy.close(1000));
  return { proxy, port: a.port, logs, access };
}

// --- raw client --------------------------------------------------------------------------------

interface Raw {
  readonly socket: net.Socket;
  text(): string;
  closed(): boolean;
  send(data: string | Buffer): void;
  until(check: (text: string) => boolean, what: string, timeout?: number): Promise<string>;
}

async function rawConnect(t: TestContext, port: number, read = true): Promise<Raw> {
  const socket = net.connect(port, '127.0.0.1');
  let text = '';
  let closed = false;
  if (read) socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
  socket.on('close', () => (closed = true));
  socket.on('error', () => undefined);
  t.after(() => void socket.destroy());
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return {
    socket,
    text: () => text,
    closed: () => closed,
    send: (data) => void socket.write(data),
    until: async (check, what, timeout = 3000) => {
      await waitFor(() => check(text), {
        timeout,
        interval: 5,
        what: `${what}; got ${JSON.stringify(text)}`,
      });
      return text;
    },
  };
}

interface Answer {
  readonly statusLine: string;
  readonly headers: Map<string, string>;
  readonly body: string;
}

/** The complete responses (Content-Length framed) in a raw answer, in order. */
function answers(text: string): Answer[] {
  const out: Answer[] = [];
  let at = 0;
  for (;;) {
    const end = text.indexOf('\r\n\r\n', at);
    if (end < 0) return out;
    const [statusLine = '', ...lines] = text.slice(at, end).split('\r\n');
    const headers = new Map<string, string>();
    for (const l of lines) {
      const colon = l.indexOf(':');
      headers.set(l.slice(0, colon).toLowerCase(), l.slice(colon + 1).trim());
    }
    const length = Number(headers.get('content-length') ?? 0);
    if (text.length < end + 4 + length) return out;
    out.push({ statusLine, headers, body: text.slice(end + 4, end + 4 + length) });
    at = end + 4 + length;
  }
}

// --- an app that declines upgrades and keeps the connection ------------------------------------

interface Declining {
  readonly port: number;
  readonly seen: { url: string; headers: IncomingHttpHeaders }[];
  /** Per upgrade request the app got: what arrived on its socket after the request head. */
  readonly upgrades: { url: string; after: string; closed: boolean }[];
}

/** `answer` gets the request's body (its Content-Length bytes) and returns the raw answer. */
async function decliningApp(
  t: TestContext,
  answer: (body: string) => string,
  handler?: Handler,
): Promise<Declining> {
  const b = await startBackend(t, 'b', handler);
  const upgrades: Declining['upgrades'] = [];
  b.server.on('upgrade', (req: IncomingMessage, socket: net.Socket, head: Buffer) => {
    const u = { url: req.url ?? '', after: head.toString('latin1'), closed: false };
    upgrades.push(u);
    const bodyBytes = Number(req.headers['content-length'] ?? 0);
    socket.on('error', () => undefined);
    // Half-open sockets (allowHalfOpen): the proxy's FIN shows as 'end'.
    socket.on('end', () => (u.closed = true));
    socket.on('close', () => (u.closed = true));
    let answered = false;
    const maybeAnswer = (): void => {
      if (answered || u.after.length < bodyBytes) return;
      answered = true;
      // No 101: an ordinary answer, and the connection kept open (as a plain HTTP app may).
      socket.write(answer(u.after.slice(0, bodyBytes)));
    };
    socket.on('data', (c: Buffer) => {
      u.after += c.toString('latin1');
      maybeAnswer();
    });
    maybeAnswer();
  });
  return { port: b.port, seen: b.seen, upgrades };
}

const UPGRADE =
  'GET /ws HTTP/1.1\r\nHost: app\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: a\r\n\r\n';
const SPOOFED = (path: string): string =>
  `GET ${path} HTTP/1.1\r\nHost: app\r\nX-Forwarded-For: 6.6.6.6\r\nX-Real-IP: 6.6.6.6\r\n\r\n`;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

eachEngine('upgrades the app declines', () => {
  it('relays a 200 to an Upgrade as an ordinary answer and parses what follows on the connection', async (t) => {
    const app = await decliningApp(
      t,
      () =>
        'HTTP/1.1 200 OK\r\nContent-Length: 9\r\nX-App: declined\r\nConnection: keep-alive\r\n\r\nno thanks',
    );
    const { proxy, port, access } = await startReviewProxy(t, [route(app.port)]);
    const c = await rawConnect(t, port);
    // The second request rides in the same packet as the upgrade; the third comes later.
    c.send(UPGRADE + SPOOFED('/second'));
    await c.until((text) => answers(text).length === 2, 'the declined upgrade and /second answered');
    c.send(SPOOFED('/third'));
    const text = await c.until((x) => answers(x).length === 3, '/third answered on the same connection');
    const [declined, second, third] = answers(text);
    assert.equal(declined!.statusLine, 'HTTP/1.1 200 OK');
    assert.equal(declined!.body, 'no thanks');
    assert.equal(declined!.headers.get('x-app'), 'declined');
    assert.match(
      declined!.headers.get('x-request-id') ?? '',
      UUID,
      'response header handling as for any answer',
    );
    assert.equal(
      declined!.headers.get('connection'),
      'keep-alive',
      'the connection stays an HTTP connection',
    );
    assert.equal(second!.body, 'b');
    assert.equal(third!.body, 'b');
    assert.equal(c.closed(), false);

    // Nothing unparsed reached the app: not one byte after the upgrade request on its socket,
    // which the proxy closed; the next requests came through the proxy, their headers rewritten.
    assert.equal(app.upgrades.length, 1);
    assert.equal(app.upgrades[0]!.after, '', 'no raw bytes behind the declined upgrade');
    await waitFor(() => app.upgrades[0]!.closed, {
      what: 'the proxy to close the declined upstream connection',
    });
    assert.deepEqual(
      app.seen.map((s) => s.url),
      ['/second', '/third'],
    );
    for (const s of app.seen) {
      assert.equal(s.headers['x-forwarded-for'], '127.0.0.1', `${s.url}: client X-Forwarded-For replaced`);
      assert.equal(s.headers['x-real-ip'], '127.0.0.1', `${s.url}: client X-Real-IP replaced`);
      assert.match(String(s.headers['x-request-id']), UUID, `${s.url}: X-Request-Id set`);
    }
    // Counted and logged like any request.
    const target = proxy.target(`127.0.0.1:${app.port}`)!;
    assert.equal(target.stats.byClass[1], 3, '3 answers in 2xx');
    assert.deepEqual(
      access.map((e) => `${e.url} ${e.status}`),
      ['/ws 200', '/second 200', '/third 200'],
    );
    assert.equal(access[0]!.requestId, declined!.headers.get('x-request-id'));
  });

  it('forwards exactly the Content-Length body of an upgrade; a client asking to close is closed', async (t) => {
    const app = await decliningApp(
      t,
      (body) => `HTTP/1.1 403 Forbidden\r\nContent-Length: ${body.length + 6}\r\n\r\nnope: ${body}`,
    );
    const { port } = await startReviewProxy(t, [route(app.port)]);
    const c = await rawConnect(t, port);
    c.send(
      'POST /ws HTTP/1.1\r\nHost: app\r\nUpgrade: h2c\r\nConnection: Upgrade\r\nContent-Length: 5\r\n\r\nhello' +
        SPOOFED('/after'),
    );
    const text = await c.until((x) => answers(x).length === 2, 'the 403 and /after answered');
    const [declined, after] = answers(text);
    assert.equal(declined!.statusLine, 'HTTP/1.1 403 Forbidden');
    assert.equal(declined!.body, 'nope: hello');
    assert.equal(after!.body, 'b');
    assert.equal(app.upgrades[0]!.after, 'hello', 'the body, and nothing after it, reached the app');
    assert.equal(app.seen.at(-1)?.headers['x-forwarded-for'], '127.0.0.1');

    // `Connection: close` on the upgrade request: answered with close, the rest never forwarded.
    const d = await rawConnect(t, port);
    d.send(UPGRADE.replace('Connection: Upgrade', 'Connection: Upgrade, close') + SPOOFED('/never'));
    await d.until(() => d.closed(), 'the proxy to close the connection');
    const only = answers(d.text());
    assert.equal(only.length, 1, d.text());
    assert.equal(only[0]!.headers.get('connection'), 'close');
    assert.ok(!app.seen.some((s) => s.url === '/never'), 'nothing after the closing answer was forwarded');
    assert.equal(app.upgrades[1]!.after, '');
  });

  it('refuses an upgrade with a chunked body (its end is unknown to a tunnel): 501, nothing sent', async (t) => {
    const app = await decliningApp(t, () => 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n');
    const { port } = await startReviewProxy(t, [route(app.port)]);
    const c = await rawConnect(t, port);
    c.send(
      'POST /ws HTTP/1.1\r\nHost: app\r\nUpgrade: h2c\r\nConnection: Upgrade\r\nTransfer-Encoding: chunked\r\n\r\n' +
        `${SPOOFED('/smuggled').length.toString(16)}\r\n${SPOOFED('/smuggled')}\r\n0\r\n\r\n`,
    );
    await c.until(() => c.closed(), 'the proxy to close the connection');
    assert.match(c.text(), /^HTTP\/1\.1 501 Not Implemented\r\n/);
    assert.deepEqual(app.upgrades, []);
    assert.deepEqual(app.seen, []);
  });

  it('holds an upgrade pipelined behind a slow answer until that answer went out', async (t) => {
    const app = await decliningApp(
      t,
      () => 'HTTP/1.1 426 Upgrade Required\r\nContent-Length: 2\r\n\r\nno',
      (_req, res) => void setTimeout(() => res.end('slow'), 200),
    );
    const { port } = await startReviewProxy(t, [route(app.port)]);
    const c = await rawConnect(t, port);
    c.send(`GET /slow HTTP/1.1\r\nHost: app\r\n\r\n${UPGRADE}${SPOOFED('/last')}`);
    const text = await c.until((x) => answers(x).length === 3, 'three answers, in order');
    assert.deepEqual(
      answers(text).map((a) => `${a.statusLine} ${a.body}`),
      ['HTTP/1.1 200 OK slow', 'HTTP/1.1 426 Upgrade Required no', 'HTTP/1.1 200 OK slow'],
    );
    assert.deepEqual(
      app.seen.map((s) => `${s.url} ${String(s.headers['x-forwarded-for'])}`),
      ['/slow 127.0.0.1', '/last 127.0.0.1'],
    );
    assert.equal(app.upgrades[0]!.after, '');
  });

  it('still tunnels a real WebSocket once the app answers 101', async (t) => {
    const b = await startBackend(t, 'ws');
    b.server.on('upgrade', (_req: IncomingMessage, socket: net.Socket, head: Buffer) => {
      // The 101 and a first frame from the app in one write, then an echo of raw bytes.
      socket.write(
        Buffer.concat([
          Buffer.from(
            'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n',
          ),
          Buffer.from([0x81, 0x05, ...Buffer.from('hello')]),
        ]),
      );
      if (head.length) socket.write(head);
      socket.on('data', (c: Buffer) => socket.write(c));
    });
    const { proxy, port } = await startReviewProxy(t, [route(b.port)]);
    const c = await rawConnect(t, port);
    // A masked "hi" sent right behind the handshake: held until the 101, then delivered.
    const hi = Buffer.from([0x81, 0x82, 0, 0, 0, 0, 0x68, 0x69]);
    c.send(Buffer.concat([Buffer.from(UPGRADE), hi]));
    const got = await c.until((x) => x.endsWith('\x81\x82\0\0\0\0hi'), 'the 101, the app frame and the echo');
    assert.match(got, /^HTTP\/1\.1 101 Switching Protocols\r\n/);
    assert.ok(got.includes('\x81\x05hello'), 'the frame sent with the 101');
    c.send(hi);
    await c.until((x) => x.split('\x81\x82\0\0\0\0hi').length === 3, 'a second echo through the tunnel');
    assert.equal(proxy.target(`127.0.0.1:${b.port}`)!.tunnels.size, 1);
    assert.equal(b.seen.length, 0, 'the upgrade did not go through the request handler');
  });
});

// --- client aborts -----------------------------------------------------------------------------

/** /slow answers after 5s (unless the client left); /half sends its head and part of a body. */
function slowHandler(name: string) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    if (req.url?.startsWith('/slow')) {
      const timer = setTimeout(() => res.end(`${name} slow`), 5000);
      res.on('close', () => clearTimeout(timer));
      return;
    }
    if (req.url === '/half') {
      res.writeHead(200, { 'content-length': '100' });
      res.write('x'.repeat(10));
      return;
    }
    res.setHeader('x-backend', name);
    res.end(name);
  };
}

/** Sends a request on a new connection and destroys it once `ready` holds (before the answer). */
async function abandon(
  t: TestContext,
  port: number,
  path: string,
  ready: (client: Raw) => boolean,
  cookie = '',
): Promise<void> {
  const c = await rawConnect(t, port);
  c.send(`GET ${path} HTTP/1.1\r\nHost: app\r\n${cookie ? `Cookie: ${cookie}\r\n` : ''}\r\n`);
  await waitFor(() => ready(c), { what: `${path} to reach the app` });
  c.socket.destroy();
}

eachEngine('requests the client abandons', () => {
  it('are counted as client aborts: not 5xx, not errors, not requests; in /metrics and the snapshot', async (t) => {
    const b = await startBackend(t, 'b', slowHandler('b'));
    const { proxy, port, access } = await startReviewProxy(t, [route(b.port, 1, { version: '2.0.0' })]);
    const target = proxy.target(`127.0.0.1:${b.port}`)!;
    for (let i = 0; i < 5; i++) await abandon(t, port, `/slow?${i}`, () => target.inflight === 1);
    // One more after the answer began: its head reached the client, the body never completed.
    await abandon(t, port, '/half', (c) => c.text().includes('\r\n\r\n'));
    await waitFor(() => target.inflight === 0 && access.length === 6, {
      what: 'the aborted requests to end',
    });
    const ok = await request(`http://127.0.0.1:${port}/`, { reset: true });
    assert.equal(await ok.body.text(), 'b');

    assert.equal(target.stats.clientAborts, 6);
    assert.deepEqual([...target.stats.byClass], [0, 1, 0, 0, 0, 0], 'only the answered request in a class');
    assert.equal(target.stats.requests, 1);
    assert.equal(
      target.stats.buckets.reduce((a, n) => a + n, 0),
      1,
      'no latency sample for abandoned requests',
    );
    assert.equal(target.fails, 0, 'no passive-health strike');
    assert.equal(proxy.view()[0]!.clientAborts, 6);
    const snap = await new BuiltinEdge(proxy).stats([target.spec.id]);
    assert.equal(snap.clientAborts, 6);
    assert.deepEqual(snap.byClass, [0, 1, 0, 0, 0, 0]);
    const metrics = await new ProxyMetrics(proxy, 'test').render();
    const labels = `service="test",target="${target.spec.id}",version="2.0.0"`;
    assert.ok(metrics.includes(`baton_client_aborts_total{${labels}} 6\n`), metrics);
    assert.ok(metrics.includes(`baton_requests_total{${labels},class="error"} 0\n`));
    assert.ok(metrics.includes(`baton_requests_total{${labels},class="5xx"} 0\n`));
    assert.deepEqual(
      access.slice(0, 6).map((e) => `${e.status} ${e.failure ?? ''}`),
      new Array(6).fill('499 client-closed'),
    );
  });

  it('leave a canary analysis judging only the answers: a healthy canary still passes', async (t) => {
    const stable = await startBackend(t, 'stable', slowHandler('stable'));
    const canary = await startBackend(t, 'canary', slowHandler('canary'));
    const { proxy, port } = await startReviewProxy(
      t,
      [route(stable.port), route(canary.port, 1, { canary: true })],
      '',
      { canaryPercent: 10, rules: [], sticky: 'baton' },
    );
    const edge = new BuiltinEdge(proxy);
    const cfg = config(
      'service: web\nlisten: 127.0.0.1:0\napp: { command: x }\nstrategy:\n  type: canary\n  steps: [{ setWeight: 10 }]\n  analysis: { interval: 1m, failureLimit: 1, minRequests: 5, successRate: 95 }\n',
    );
    if (cfg.strategy.type !== 'canary' || !cfg.strategy.analysis) return assert.fail('no analysis');
    const limits: string[] = [];
    const analysis = new Analysis(
      cfg.strategy.analysis,
      () => edge.stats([`127.0.0.1:${canary.port}`]),
      () => edge.stats([`127.0.0.1:${stable.port}`]),
      () => undefined,
      (reason) => limits.push(reason),
    );
    await analysis.start();
    t.after(() => analysis.stop());
    // Bucket 0 is on the canary side at any share: this client is pinned to the canary.
    const pinned = 'baton_canary=0';
    for (let i = 0; i < 10; i++) {
      const res = await request(`http://127.0.0.1:${port}/`, { headers: { cookie: pinned }, reset: true });
      assert.equal(await res.body.text(), 'canary');
    }
    const target = proxy.target(`127.0.0.1:${canary.port}`)!;
    for (let i = 0; i < 20; i++) await abandon(t, port, '/slow', () => target.inflight === 1, pinned);
    await waitFor(() => target.inflight === 0 && target.stats.clientAborts === 20, {
      what: 'the 20 abandoned canary requests to be counted',
    });
    const v = await analysis.check();
    assert.equal(v.result, 'pass', v.reason);
    assert.equal(v.successRate, 100);
    assert.equal(v.requests, 10, 'abandoned requests are not in the judged requests');
    assert.equal(v.clientAborts, 20);
    assert.match(v.reason, /over 10 request\(s\); 20 abandoned by their client, not counted$/);
    assert.deepEqual(limits, []);
  });
});

describe('canary deploy with clients that abandon canary requests (daemon)', () => {
  before(() => ensureBuilt());

  it('promotes a healthy canary, and status shows the aborts per instance', async (t) => {
    const svc = await Service.create(t, {
      instances: 2,
      strategy: canaryStrategy(
        ['setWeight: 20', 'pause: 2s'],
        ['  analysis: { interval: 300ms, failureLimit: 2, minRequests: 3, successRate: 95 }'],
      ),
    });
    await svc.start();
    await svc.deployApi('1.0.0');
    const port = Number(new URL(svc.url).port);
    let stop = false;
    const failures: string[] = [];
    // Pinned to the canary side (buckets 0 and 1 of 10000): good requests, and requests to
    // /slow the client abandons after 50ms, four times as many as the canary's 5% error budget.
    const good = (async () => {
      while (!stop) {
        const res = await request(`${svc.url}/`, { headers: { cookie: 'baton_canary=1' } }).catch(
          (e: Error) => e,
        );
        if (res instanceof Error) failures.push(res.message);
        else if (res.statusCode !== 200) failures.push(`${res.statusCode} ${await res.body.text()}`);
        else await res.body.text();
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    const aborting = (async () => {
      while (!stop) {
        const s = net.connect(port, '127.0.0.1');
        s.on('error', () => undefined);
        s.write('GET /slow?ms=5000 HTTP/1.1\r\nHost: app\r\nCookie: baton_canary=0\r\n\r\n');
        await new Promise((r) => setTimeout(r, 50));
        s.destroy();
      }
    })();
    t.after(async () => {
      stop = true;
      await Promise.all([good, aborting]);
    });
    const deploying = svc.deploy('2.0.0');
    // Status while the canary runs: the aborts per instance, and a passing verdict that saw some.
    let seen: StatusView | null = null;
    let deployed = false;
    const watching = (async () => {
      while (!deployed && seen === null) {
        const s = await svc.status();
        const canaryAborts = s.live?.instances.find((i) => i.version === '2.0.0')?.clientAborts ?? 0;
        const verdicts = s.deployment?.canary?.verdicts ?? [];
        if (canaryAborts > 0 && verdicts.some((v) => v.result === 'pass' && (v.clientAborts ?? 0) > 0))
          seen = s;
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    const run: DeployRun = await deploying;
    deployed = true;
    stop = true;
    await watching;
    assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}`);
    assert.equal(run.done?.result, 'succeeded', run.done?.message);
    const infos = run.events.filter((e) => e.kind === 'info').map((e) => e.message);
    assert.ok(!infos.some((m) => m.startsWith('analysis fail')), infos.join('\n'));
    assert.ok(
      infos.some((m) => /^analysis pass: .*; \d+ abandoned by their client, not counted$/.test(m)),
      infos.join('\n'),
    );
    // Set in the watcher above (TypeScript cannot see that assignment).
    const shown = seen as StatusView | null;
    assert.ok(shown, 'status showed the canary instance with client aborts and a passing verdict');
    assert.ok(shown.live!.instances.every((i) => typeof i.clientAborts === 'number'));
    assert.deepEqual(failures, []);
  });
});

// --- clients that stall ------------------------------------------------------------------------

eachEngine('clients that stall', () => {
  it('refuses 0 for clientBodyTimeout and clientSendTimeout, and defaults both to 60s', () => {
    for (const key of ['clientBodyTimeout', 'clientSendTimeout']) {
      const msg = refusedConfig(
        `service: x\nlisten: 127.0.0.1:0\ntargets: [{ address: 127.0.0.1:1 }]\nproxy: { ${key}: 0 }\n`,
      );
      assert.match(msg, new RegExp(`proxy\\.${key}: "0" `));
    }
    const cfg = config('service: x\nlisten: 127.0.0.1:0\n');
    assert.equal(cfg.proxy.clientBodyTimeout, 60_000);
    assert.equal(cfg.proxy.clientSendTimeout, 60_000);
  });

  it('closes a client that stops reading a big answer after clientSendTimeout; the app request is aborted', async (t) => {
    let appClosedAt = 0;
    let sent = 0;
    const b = await startBackend(t, 'b', (_req, res) => {
      // Streams until the proxy goes away (64 MB at most): far more than socket buffers hold.
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      const chunk = Buffer.alloc(64 * 1024, 0x61);
      const pump = (): void => {
        while (sent < 64 * 1024 * 1024 && !res.destroyed) {
          sent += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end();
      };
      res.on('close', () => (appClosedAt = Date.now()));
      pump();
    });
    const { proxy, port, logs, access } = await startReviewProxy(
      t,
      [route(b.port)],
      'clientSendTimeout: 400ms',
    );
    const target = proxy.target(`127.0.0.1:${b.port}`)!;
    const c = await rawConnect(t, port, false); // never reads
    const t0 = Date.now();
    c.send('GET /big HTTP/1.1\r\nHost: app\r\n\r\n');
    await waitFor(() => target.inflight === 1, { what: 'the request in flight' });
    // Buffers fill up, the app's writes stop; from then on 400ms without progress.
    let lastSent = -1;
    await waitFor(
      async () => {
        const still = sent === lastSent;
        lastSent = sent;
        await new Promise((r) => setTimeout(r, 50));
        return still && sent > 0;
      },
      { what: 'the stream to stall' },
    );
    const stalledAt = Date.now();
    await waitFor(() => target.inflight === 0, { timeout: 5000, what: 'the proxy to give up on the client' });
    // Not before the timeout, and not long after the stall (clientRequestTimeout and the others: 60s).
    assert.ok(Date.now() - t0 >= 400, `gave up ${Date.now() - t0}ms after the request (timeout 400ms)`);
    assert.ok(Date.now() - stalledAt < 3000, `gave up ${Date.now() - stalledAt}ms after the stall`);
    await waitFor(() => appClosedAt > 0, { what: 'the app request to be aborted' });
    assert.ok(sent < 64 * 1024 * 1024, 'the app did not get to send it all');
    assert.equal(proxy.view()[0]!.inflight, 0);
    assert.equal(target.stats.clientAborts, 1, 'counted as a client abort');
    assert.deepEqual([...target.stats.byClass], [0, 0, 0, 0, 0, 0]);
    assert.equal(access[0]?.failure, 'client-timeout');
    assert.ok(
      logs.some((l) => l.msg.includes('proxy.clientSendTimeout') && l.requestId === access[0]?.requestId),
      JSON.stringify(logs),
    );
    // The client's side: once it reads, the answer breaks off (the proxy closed the connection).
    let got = 0;
    c.socket.on('data', (d: Buffer) => (got += d.length));
    await waitFor(() => c.closed(), { timeout: 10_000, what: 'the client to see the connection closed' });
    assert.ok(got < sent, `${got} bytes of ${sent}`);
  });

  it('lets a client that reads slowly but steadily get the whole answer', async (t) => {
    // 6 MB read in bursts 50ms apart (~1.3 MB/s): it takes more than twice the timeout in all,
    // while no write waits that long (the kernel's TCP window opens in bursts of up to ~1.5s on
    // loopback at this pace, hence not less than 2s).
    const size = 6 * 1024 * 1024;
    const b = await startBackend(t, 'b', (_req, res) => {
      res.writeHead(200, { 'content-length': String(size) });
      res.end(Buffer.alloc(size, 0x62));
    });
    const { proxy, port, logs } = await startReviewProxy(t, [route(b.port)], 'clientSendTimeout: 2s');
    const c = await rawConnect(t, port, false);
    let got = 0;
    c.socket.on('data', (d: Buffer) => {
      got += d.length;
      c.socket.pause();
      setTimeout(() => c.socket.resume(), 50);
    });
    const t0 = Date.now();
    c.send('GET /big HTTP/1.1\r\nHost: app\r\n\r\n');
    await waitFor(() => got >= size || c.closed(), {
      timeout: 60_000,
      interval: 50,
      what: 'the whole answer',
    });
    assert.ok(got >= size, `${got} of ${size} bytes, then closed: ${JSON.stringify(logs)}`);
    assert.ok(Date.now() - t0 > 4000, `read in ${Date.now() - t0}ms: not slow enough to show anything`);
    assert.equal(c.closed(), false);
    assert.equal(proxy.target(`127.0.0.1:${b.port}`)!.stats.clientAborts, 0);
  });

  it('answers 408 to a body that stops coming for clientBodyTimeout; a slow but steady one passes', async (t) => {
    const arrived: { bytes: number; complete: boolean; closed: boolean }[] = [];
    const b = await startBackend(t, 'b', (_req, res, body) => res.end(`got ${body.length}`));
    b.server.prependListener('request', (req: IncomingMessage) => {
      const a = { bytes: 0, complete: false, closed: false };
      arrived.push(a);
      req.on('data', (c: Buffer) => (a.bytes += c.length));
      req.on('end', () => (a.complete = true));
      req.on('close', () => (a.closed = true));
    });
    const { proxy, port, access, logs } = await startReviewProxy(
      t,
      [route(b.port)],
      'clientBodyTimeout: 400ms',
    );
    const target = proxy.target(`127.0.0.1:${b.port}`)!;

    // Sends 10 of 100 bytes, then nothing.
    const c = await rawConnect(t, port);
    const t0 = Date.now();
    c.send('POST /up HTTP/1.1\r\nHost: app\r\nContent-Length: 100\r\n\r\n0123456789');
    await c.until((x) => x.startsWith('HTTP/1.1 408') || c.closed(), '408 or a closed connection', 5000);
    const took = Date.now() - t0;
    assert.ok(took >= 350 && took < 3000, `${took}ms (clientBodyTimeout 400ms, clientRequestTimeout 60s)`);
    assert.match(c.text(), /^HTTP\/1\.1 408 Request Timeout\r\n/);
    assert.match(c.text(), /\r\nconnection: close\r\n/i);
    await c.until(() => c.closed(), 'the connection closed after the 408');
    await waitFor(() => arrived[0]?.closed, { what: 'the app request to be aborted' });
    assert.equal(arrived[0]!.complete, false);
    assert.equal(target.inflight, 0);
    assert.equal(target.stats.clientAborts, 1);
    assert.deepEqual([...target.stats.byClass], [0, 0, 0, 0, 0, 0], 'not the target error');
    assert.equal(access[0]?.status, 408);
    assert.equal(access[0]?.failure, 'client-timeout');
    assert.ok(logs.some((l) => l.msg.includes('proxy.clientBodyTimeout')));

    // A body that keeps coming, one byte each 100ms for 1.2s: idle time, not total time, counts.
    const d = await rawConnect(t, port);
    d.send('POST /up HTTP/1.1\r\nHost: app\r\nContent-Length: 12\r\n\r\n');
    for (let i = 0; i < 12; i++) {
      await new Promise((r) => setTimeout(r, 100));
      d.send('x');
    }
    await d.until((x) => x.endsWith('got 12'), 'the whole body answered');
    assert.match(d.text(), /^HTTP\/1\.1 200 OK\r\n/);
    assert.equal(target.stats.clientAborts, 1);
  });
});
