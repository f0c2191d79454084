// Requests llhttp parses but a target must not get as they are, sent as raw bytes over TCP: two
// Host headers, a target that is not a path (`OPTIONS *`, CONNECT, other schemes), transfer
// codings other than chunked, absolute-form targets naming another host, and header names with
// `_`. Each is refused, answered or rewritten by the proxy, never counted against the target.
import assert from 'node:assert/strict';
import http, { type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import { it, type TestContext } from 'node:test';
import { Exchange, type ExchangeHost } from '../src/edge/builtin/exchange.js';
import { Target } from '../src/edge/builtin/target.js';
import type { BuiltinProxy } from '../src/edge/builtin/proxy.js';
import {
  type Backend,
  config,
  eachEngine,
  refusedConfig,
  route,
  startBackend,
  startProxy,
} from './helpers/index.js';

// --- raw client ----------------------------------------------------------------------------

/** Sends `data` on a new connection; resolves with all the proxy sent once it closes it. */
async function send(t: TestContext, port: number, data: string, timeout = 3000): Promise<string> {
  const socket = net.connect(port, '127.0.0.1');
  t.after(() => void socket.destroy());
  let text = '';
  socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
  socket.on('error', () => undefined);
  const closed = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no close within ${timeout}ms; got ${JSON.stringify(text)}`)),
      timeout,
    );
    socket.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
  socket.write(data);
  await closed;
  return text;
}

interface Answer {
  readonly statusLine: string;
  readonly headers: Map<string, string>;
  readonly body: string;
}

/** The responses in a raw answer, in order (each body read by its Content-Length). */
function parseAll(raw: string): Answer[] {
  const out: Answer[] = [];
  let rest = raw;
  while (rest.length > 0) {
    const end = rest.indexOf('\r\n\r\n');
    assert.ok(end > 0, `no complete response head in ${JSON.stringify(rest)}`);
    const [statusLine = '', ...lines] = rest.slice(0, end).split('\r\n');
    const headers = new Map<string, string>();
    for (const l of lines) {
      const colon = l.indexOf(':');
      headers.set(l.slice(0, colon).toLowerCase(), l.slice(colon + 1).trim());
    }
    const length = Number(headers.get('content-length') ?? rest.length - end - 4);
    out.push({ statusLine, headers, body: rest.slice(end + 4, end + 4 + length) });
    rest = rest.slice(end + 4 + length);
  }
  return out;
}

function parseOne(raw: string): Answer {
  const all = parseAll(raw);
  assert.equal(all.length, 1, `one response, got ${JSON.stringify(raw)}`);
  return all[0]!;
}

// --- a backend recording every request head that reached it ---------------------------------

interface Spy {
  readonly backend: Backend;
  readonly arrived: IncomingMessage[];
  lines(): string[];
}

async function spyBackend(t: TestContext): Promise<Spy> {
  const backend = await startBackend(t, 'b');
  const arrived: IncomingMessage[] = [];
  backend.server.on('request', (req: IncomingMessage) => arrived.push(req));
  return { backend, arrived, lines: () => arrived.map((r) => `${r.method} ${r.url}`) };
}

const PIPELINED = 'GET /pipelined HTTP/1.1\r\nHost: app\r\n\r\n';

/**
 * A good request after the bad one is served by the target, which the bad one left up: not
 * passively down, no failure, and no request of its own in the target's stats.
 */
async function assertTargetUntouched(
  t: TestContext,
  proxy: BuiltinProxy,
  port: number,
  spy: Spy,
  servedBefore: number,
): Promise<void> {
  const a = parseOne(await send(t, port, 'GET /after HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n'));
  assert.equal(a.statusLine, 'HTTP/1.1 200 OK');
  assert.equal(a.body, 'b');
  assert.equal(spy.lines().at(-1), 'GET /after');
  const [view] = proxy.view();
  assert.equal(view!.passiveDownUntil, null, "the target is not blamed for the client's request");
  assert.equal(view!.requests, servedBefore + 1, 'the refused request is not in the target stats');
  assert.equal(proxy.target(view!.id)!.fails, 0);
}

// --- cases ---------------------------------------------------------------------------------

eachEngine('requests the proxy cannot map to a target', () => {
  const refused: [name: string, bytes: string, statusLine: string][] = [
    ['two Host headers', 'GET /x HTTP/1.1\r\nHost: app\r\nHost: other\r\n\r\n', 'HTTP/1.1 400 Bad Request'],
    [
      'two Host headers on OPTIONS *',
      'OPTIONS * HTTP/1.1\r\nHost: app\r\nHost: other\r\n\r\n',
      'HTTP/1.1 400 Bad Request',
    ],
    ['an asterisk target on GET', 'GET * HTTP/1.1\r\nHost: app\r\n\r\n', 'HTTP/1.1 400 Bad Request'],
    [
      'an absolute-form target with another scheme',
      'GET ftp://other.example/x HTTP/1.1\r\nHost: app\r\n\r\n',
      'HTTP/1.1 400 Bad Request',
    ],
    [
      'an absolute-form target with userinfo',
      'GET http://user@other.example/x HTTP/1.1\r\nHost: app\r\n\r\n',
      'HTTP/1.1 400 Bad Request',
    ],
    [
      'an absolute-form target with no host',
      'GET http:///x HTTP/1.1\r\nHost: app\r\n\r\n',
      'HTTP/1.1 400 Bad Request',
    ],
    ['a Host with a path in it', 'GET /x HTTP/1.1\r\nHost: a/b\r\n\r\n', 'HTTP/1.1 400 Bad Request'],
    ['a Host with userinfo', 'GET /x HTTP/1.1\r\nHost: user@app\r\n\r\n', 'HTTP/1.1 400 Bad Request'],
    [
      'a Host with a port that is not a number',
      'GET /x HTTP/1.1\r\nHost: app:x\r\n\r\n',
      'HTTP/1.1 400 Bad Request',
    ],
    ['an empty Host on HTTP/1.1', 'GET /x HTTP/1.1\r\nHost:\r\n\r\n', 'HTTP/1.1 400 Bad Request'],
    [
      // Refused before the body is sent: no 100 Continue first.
      'two Host headers with Expect: 100-continue',
      'POST /x HTTP/1.1\r\nHost: app\r\nHost: other\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n',
      'HTTP/1.1 400 Bad Request',
    ],
    [
      'CONNECT (authority-form)',
      'CONNECT other.example:443 HTTP/1.1\r\nHost: other.example:443\r\n\r\n',
      'HTTP/1.1 405 Method Not Allowed',
    ],
  ];

  it('refuses each at the proxy, forwards nothing after it, and leaves the target up', async (t) => {
    const spy = await spyBackend(t);
    const { proxy, port } = await startProxy(t, [route(spy.backend.port)]);
    let served = 0;
    for (const [name, bytes, statusLine] of refused) {
      await t.test(name, async (st) => {
        const from = spy.arrived.length;
        const a = parseOne(await send(st, port, bytes + PIPELINED));
        assert.equal(a.statusLine, statusLine);
        assert.equal(a.headers.get('connection'), 'close');
        assert.match(a.body, / \(baton\)\n$/);
        await assertTargetUntouched(st, proxy, port, spy, served++);
        assert.deepEqual(spy.lines().slice(from), ['GET /after'], 'the backend got nothing else');
      });
    }
  });

  it('answers OPTIONS * itself (it asks about the server, and has no path) and keeps the connection', async (t) => {
    const spy = await spyBackend(t);
    const { proxy, port } = await startProxy(t, [route(spy.backend.port)]);
    const [options, next, ...more] = parseAll(
      await send(
        t,
        port,
        'OPTIONS * HTTP/1.1\r\nHost: app\r\n\r\nGET /next HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n',
      ),
    );
    assert.equal(options?.statusLine, 'HTTP/1.1 200 OK');
    assert.equal(options.headers.get('content-length'), '0');
    assert.equal(options.headers.get('x-backend'), undefined, 'from the proxy, not the target');
    assert.equal(next?.statusLine, 'HTTP/1.1 200 OK', 'the same connection serves the next request');
    assert.equal(next.body, 'b');
    assert.deepEqual(more, []);
    assert.deepEqual(spy.lines(), ['GET /next'], 'the backend never saw OPTIONS *');
    await assertTargetUntouched(t, proxy, port, spy, 1);
  });

  it('takes a request undici refuses to send as the client fault: 400, no strike, no retry, no stats', async (t) => {
    // No client bytes reach this since the proxy checks Host itself; an exchange given a header
    // list undici refuses (two Hosts) stands for any request the proxy could not encode.
    const spy = await spyBackend(t);
    const target = new Target(
      {
        id: 'b',
        host: '127.0.0.1',
        port: spy.backend.port,
        maxFails: 1,
        failTimeoutMs: 60_000,
        slowStartMs: 0,
        version: '',
      },
      { connectTimeoutMs: 1000, headersTimeoutMs: 1000, bodyTimeoutMs: 1000, idleTimeoutMs: 1000 },
    );
    t.after(() => target.pool.destroy());
    let picks = 0;
    const finished: Exchange[] = [];
    const host: ExchangeHost = {
      pickTarget: () => (picks++ === 0 ? target : undefined),
      laneFor: () => null,
      maxAttempts: 3,
      retryTimeoutMs: 10_000,
      clientBodyTimeoutMs: 10_000,
      clientSendTimeoutMs: 10_000,
      versionHeader: false,
      clientTimedOut: () => undefined,
      finished: (ex) => void finished.push(ex),
    };
    const front = http.createServer((req, res) => {
      const now = Date.now();
      new Exchange(host, req, res, ['host', 'app', 'host', 'other'], 'rid-1', null, now).start(now);
    });
    await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve));
    t.after(() => new Promise<void>((resolve) => front.close(() => resolve())));
    const port = (front.address() as AddressInfo).port;

    const a = parseOne(await send(t, port, 'GET /x HTTP/1.1\r\nHost: app\r\n\r\n'));
    assert.equal(a.statusLine, 'HTTP/1.1 400 Bad Request');
    assert.equal(a.body, 'bad request: duplicate host header (baton, request rid-1)\n');
    assert.equal(picks, 1, 'not retried on another target');
    assert.equal(finished.length, 1);
    assert.equal(finished[0]!.failure, 'bad-request');
    assert.equal(finished[0]!.target, undefined, 'counted against no target');
    assert.equal(target.downUntil, 0, 'not passively down');
    assert.equal(target.fails, 0);
    assert.equal(target.inflight, 0);
    assert.deepEqual(spy.lines(), []);
  });
});

eachEngine('transfer codings', () => {
  const body = '5\r\nhello\r\n0\r\n\r\n';
  const cases: [name: string, head: string, statusLine: string][] = [
    // As nginx: the proxy cannot undo the coding, so it cannot find the body's end.
    ['gzip, chunked', 'Transfer-Encoding: gzip, chunked', 'HTTP/1.1 501 Not Implemented'],
    ['identity, chunked', 'Transfer-Encoding: identity, chunked', 'HTTP/1.1 501 Not Implemented'],
    [
      'gzip and chunked on two lines',
      'Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked',
      'HTTP/1.1 501 Not Implemented',
    ],
    // RFC 9112 §6.3: chunked not last leaves the length unknown, which must be a 400 (llhttp's).
    ['chunked, gzip', 'Transfer-Encoding: chunked, gzip', 'HTTP/1.1 400 Bad Request'],
    ['chunked twice', 'Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked', 'HTTP/1.1 400 Bad Request'],
    ['an empty Transfer-Encoding', 'Transfer-Encoding: ', 'HTTP/1.1 400 Bad Request'],
  ];

  it('refuses anything but chunked alone, never forwarded', async (t) => {
    const spy = await spyBackend(t);
    const { proxy, port } = await startProxy(t, [route(spy.backend.port)]);
    let served = 0;
    for (const [name, head, statusLine] of cases) {
      await t.test(name, async (st) => {
        const from = spy.arrived.length;
        const a = parseOne(
          await send(st, port, `POST /x HTTP/1.1\r\nHost: app\r\n${head}\r\n\r\n${body}${PIPELINED}`),
        );
        assert.equal(a.statusLine, statusLine);
        await assertTargetUntouched(st, proxy, port, spy, served++);
        assert.deepEqual(spy.lines().slice(from), ['GET /after'], 'the backend got nothing else');
      });
    }
  });

  it('refuses Transfer-Encoding on HTTP/1.0 with 400 (RFC 9112 §6.1: faulty framing)', async (t) => {
    const spy = await spyBackend(t);
    const { proxy, port } = await startProxy(t, [route(spy.backend.port)]);
    const a = parseOne(
      await send(t, port, `POST /x HTTP/1.0\r\nHost: app\r\nTransfer-Encoding: chunked\r\n\r\n${body}`),
    );
    assert.equal(a.statusLine, 'HTTP/1.1 400 Bad Request');
    assert.match(a.body, /HTTP\/1\.0/);
    await assertTargetUntouched(t, proxy, port, spy, 0);
    assert.deepEqual(spy.lines(), ['GET /after']);
  });

  it('still forwards chunked, in any letter case', async (t) => {
    const spy = await spyBackend(t);
    const { port } = await startProxy(t, [route(spy.backend.port)]);
    for (const coding of ['chunked', 'Chunked']) {
      const a = parseOne(
        await send(
          t,
          port,
          `POST /c HTTP/1.1\r\nHost: app\r\nTransfer-Encoding: ${coding}\r\nConnection: close\r\n\r\n${body}`,
        ),
      );
      assert.equal(a.statusLine, 'HTTP/1.1 200 OK');
      assert.equal(spy.backend.seen.at(-1)?.body, 'hello');
    }
  });
});

eachEngine('absolute-form targets', () => {
  it('go upstream in origin-form with Host from the target, whatever Host the client sent', async (t) => {
    const spy = await spyBackend(t);
    const { port } = await startProxy(t, [route(spy.backend.port)]);
    const cases: [target: string, url: string, host: string][] = [
      ['http://other.example/x?q=1', '/x?q=1', 'other.example'],
      ['HTTPS://Other.example:8443', '/', 'Other.example:8443'],
      ['http://other.example?q=1', '/?q=1', 'other.example'],
      ['http://[::1]:8080/v6', '/v6', '[::1]:8080'],
    ];
    for (const [target, url, host] of cases) {
      const a = parseOne(
        await send(t, port, `GET ${target} HTTP/1.1\r\nHost: mysite\r\nConnection: close\r\n\r\n`),
      );
      assert.equal(a.statusLine, 'HTTP/1.1 200 OK', target);
      const seen = spy.arrived.at(-1)!;
      assert.equal(seen.url, url, target);
      assert.equal(seen.headers.host, host, target);
      assert.equal(seen.headers['x-forwarded-host'], host, target);
      assert.equal(
        seen.rawHeaders.filter((_, i) => i % 2 === 0 && /^host$/i.test(seen.rawHeaders[i]!)).length,
        1,
      );
    }
    // HTTP/1.0 may send no Host at all: the target's authority is the Host.
    const a = parseOne(await send(t, port, 'GET http://other.example/ten HTTP/1.0\r\n\r\n'));
    assert.equal(a.statusLine, 'HTTP/1.1 200 OK');
    assert.equal(spy.arrived.at(-1)!.headers.host, 'other.example');
    assert.equal(spy.arrived.at(-1)!.url, '/ten');
  });

  it('passes valid Host forms untouched', async (t) => {
    const spy = await spyBackend(t);
    const { port } = await startProxy(t, [route(spy.backend.port)]);
    for (const host of [
      'app',
      'app.example:8080',
      '10.0.0.1:80',
      '[::1]',
      '[2001:db8::1]:443',
      'xn--bcher-kva.example',
      'a%41b',
    ]) {
      const a = parseOne(
        await send(t, port, `GET /h HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`),
      );
      assert.equal(a.statusLine, 'HTTP/1.1 200 OK', host);
      assert.equal(spy.arrived.at(-1)!.headers.host, host);
    }
  });
});

eachEngine('header names with underscores', () => {
  const request =
    'GET /u HTTP/1.1\r\nHost: app\r\nX_Forwarded_For: 6.6.6.6\r\nX_Real_IP: 6.6.6.6\r\nX-Custom_Name: v\r\nX-Kept: k\r\nConnection: close\r\n\r\n';

  it('are dropped by default, as nginx does (CGI/WSGI apps read them as the dashed names)', async (t) => {
    const spy = await spyBackend(t);
    const { port } = await startProxy(t, [route(spy.backend.port)]);
    assert.equal(parseOne(await send(t, port, request)).statusLine, 'HTTP/1.1 200 OK');
    const seen = spy.arrived.at(-1)!;
    assert.equal(seen.headers.x_forwarded_for, undefined);
    assert.equal(seen.headers.x_real_ip, undefined);
    assert.equal(seen.headers['x-custom_name'], undefined);
    assert.equal(seen.headers['x-kept'], 'k');
    assert.equal(seen.headers['x-forwarded-for'], '127.0.0.1');
    assert.equal(seen.headers['x-real-ip'], '127.0.0.1');
  });

  it('are kept with proxy.allowUnderscoresInHeaders: true', async (t) => {
    const spy = await spyBackend(t);
    const { port } = await startProxy(
      t,
      [route(spy.backend.port)],
      'proxy:\n  allowUnderscoresInHeaders: true\n',
    );
    assert.equal(parseOne(await send(t, port, request)).statusLine, 'HTTP/1.1 200 OK');
    const seen = spy.arrived.at(-1)!;
    assert.equal(seen.headers.x_forwarded_for, '6.6.6.6');
    assert.equal(seen.headers.x_real_ip, '6.6.6.6');
    assert.equal(seen.headers['x-custom_name'], 'v');
    // The proxy's own forwarding headers are still the ones with dashes.
    assert.equal(seen.headers['x-forwarded-for'], '127.0.0.1');
  });

  it('the option defaults to false and takes only a boolean', () => {
    const base = 'service: web\nlisten: 127.0.0.1:0\n';
    assert.equal(config(base).proxy.allowUnderscoresInHeaders, false);
    assert.equal(
      config(`${base}proxy:\n  allowUnderscoresInHeaders: true\n`).proxy.allowUnderscoresInHeaders,
      true,
    );
    assert.match(
      refusedConfig(`${base}proxy:\n  allowUnderscoresInHeaders: sure\n`),
      /allowUnderscoresInHeaders/,
    );
  });
});
