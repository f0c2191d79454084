// The built-in proxy against malformed, oversized and too-slow requests, sent as raw bytes over
// TCP: each gets its exact status line from the proxy itself, the backend never sees it, and a
// normal request still gets 200 afterwards.
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import net from 'node:net';
import { it, type TestContext } from 'node:test';
import {
  type Backend,
  eachEngine,
  type Handler,
  route,
  startBackend,
  startProxy,
  waitFor,
} from './helpers/index.js';

// --- raw client ----------------------------------------------------------------------------

interface Raw {
  /** Everything the proxy sent so far (latin1). */
  text(): string;
  closed(): boolean;
  send(data: string | Buffer): void;
  /** Waits until `check(text)` holds; returns the text. */
  until(check: (text: string) => boolean, what: string, timeout?: number): Promise<string>;
  /** Waits for the proxy to close the connection; returns everything it sent. */
  untilClosed(timeout?: number): Promise<string>;
}

async function rawConnect(t: TestContext, port: number): Promise<Raw> {
  const socket = net.connect(port, '127.0.0.1');
  let text = '';
  let closed = false;
  socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
  socket.on('close', () => (closed = true));
  socket.on('error', () => undefined);
  t.after(() => void socket.destroy());
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const raw: Raw = {
    text: () => text,
    closed: () => closed,
    send: (data) => void socket.write(data),
    until: async (check, what, timeout = 2000) => {
      await waitFor(() => check(text), {
        timeout,
        interval: 5,
        what: `${what}; got ${JSON.stringify(text)}`,
      });
      return text;
    },
    untilClosed: (timeout = 2000) => raw.until(() => closed, 'the proxy to close the connection', timeout),
  };
  return raw;
}

/** Sends `data` on a new connection and returns all the proxy sent before closing it. */
async function exchange(
  t: TestContext,
  port: number,
  data: string | Buffer,
  timeout?: number,
): Promise<string> {
  const raw = await rawConnect(t, port);
  raw.send(data);
  return raw.untilClosed(timeout);
}

interface Answer {
  readonly statusLine: string;
  readonly headers: Map<string, string>;
  readonly body: string;
}

function parse(answer: string): Answer {
  const end = answer.indexOf('\r\n\r\n');
  assert.ok(end > 0, `no complete response head in ${JSON.stringify(answer)}`);
  const [statusLine = '', ...lines] = answer.slice(0, end).split('\r\n');
  const headers = new Map<string, string>();
  for (const l of lines)
    headers.set(l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim());
  return { statusLine, headers, body: answer.slice(end + 4) };
}

/** Number of responses in a raw answer (a pipelined request answered too would show here). */
function responses(answer: string): number {
  return answer.split('HTTP/1.1 ').length - 1;
}

// --- backend with a record of every request whose head arrived -------------------------------

interface Spy {
  readonly backend: Backend;
  /** Every request that reached the backend, complete or not, in order. */
  readonly arrived: { readonly line: string; readonly req: IncomingMessage; bytes: number }[];
  lines(): string[];
}

async function spyBackend(t: TestContext, handler?: Handler, opts?: { readBody?: boolean }): Promise<Spy> {
  const backend = await startBackend(t, 'b', handler, opts);
  const arrived: Spy['arrived'] = [];
  backend.server.on('request', (req: IncomingMessage) => {
    const a = { line: `${req.method} ${req.url}`, req, bytes: 0 };
    arrived.push(a);
    req.on('data', (c: Buffer) => (a.bytes += c.length));
  });
  return { backend, arrived, lines: () => arrived.map((a) => a.line) };
}

/** A normal request gets 200 from the backend (the proxy still works). */
async function assertServes(t: TestContext, port: number, spy: Spy): Promise<void> {
  const a = parse(await exchange(t, port, 'GET /after HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n'));
  assert.equal(a.statusLine, 'HTTP/1.1 200 OK');
  assert.equal(a.body, 'b');
  assert.equal(spy.lines().at(-1), 'GET /after');
}

const SMUGGLED = 'GET /smuggled HTTP/1.1\r\nHost: app\r\n\r\n';

// --- cases ---------------------------------------------------------------------------------

eachEngine('malformed requests: 400 from the proxy, never forwarded', () => {
  // [name, bytes, body-level]: a body-level error shows after the (valid) head went upstream,
  // so the backend may see that head, but never a complete request.
  const cases: [string, string, boolean][] = [
    [
      'Content-Length and Transfer-Encoding both present',
      'POST /x HTTP/1.1\r\nHost: app\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
      false,
    ],
    [
      'a chunk size that is not hex',
      'POST /x HTTP/1.1\r\nHost: app\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n',
      true,
    ],
    [
      'chunk data longer than its size',
      'POST /x HTTP/1.1\r\nHost: app\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcdef\r\n0\r\n\r\n',
      true,
    ],
    ['a space in a header name', 'GET /x HTTP/1.1\r\nHost: app\r\nBad Name: v\r\n\r\n', false],
    ['a control character in a header value', 'GET /x HTTP/1.1\r\nHost: app\r\nX-A: a\x01b\r\n\r\n', false],
    ['a NUL in a header value', 'GET /x HTTP/1.1\r\nHost: app\r\nX-A: a\x00b\r\n\r\n', false],
    ['no Host on HTTP/1.1', 'GET /x HTTP/1.1\r\nX-A: 1\r\n\r\n', false],
    [
      'two different Content-Length values',
      'POST /x HTTP/1.1\r\nHost: app\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd',
      false,
    ],
    ['an obs-folded header line', 'GET /x HTTP/1.1\r\nHost: app\r\nX-A: a\r\n  b\r\n\r\n', false],
    ['a request line without a space before the target', 'GET/x HTTP/1.1\r\nHost: app\r\n\r\n', false],
    ['a request line with an unknown HTTP version', 'GET /x HTTP/9.9\r\nHost: app\r\n\r\n', false],
    ['a request line with a trailing token', 'GET /x HTTP/1.1 extra\r\nHost: app\r\n\r\n', false],
  ];

  it('answers each with 400, forwards nothing (not even a pipelined request) and keeps serving', async (t) => {
    const spy = await spyBackend(t);
    const { proxy, port } = await startProxy(t, [route(spy.backend.port)]);
    await assertServes(t, port, spy); // control: the same path works when well formed
    for (const [name, bytes, bodyLevel] of cases) {
      await t.test(name, async (st) => {
        const from = spy.arrived.length;
        const seen = spy.backend.seen.length;
        const answer = await exchange(st, port, bytes + SMUGGLED);
        assert.equal(parse(answer).statusLine, 'HTTP/1.1 400 Bad Request');
        assert.equal(responses(answer), 1, `only the 400, nothing for the pipelined request: ${answer}`);
        // Anything the proxy had sent upstream for the bad request reaches the backend before
        // this later request does.
        await assertServes(st, port, spy);
        const got = spy.arrived.slice(from, -1);
        if (bodyLevel) {
          assert.ok(
            got.length <= 1 && got.every((a) => a.line === 'POST /x'),
            `the backend got ${spy.lines().join(', ')}`,
          );
          await waitFor(() => got.every((a) => a.req.destroyed), {
            what: 'the upstream request to be aborted',
          });
          assert.ok(got.every((a) => !a.req.complete));
        } else {
          assert.deepEqual(
            got.map((a) => a.line),
            [],
            'the backend got nothing',
          );
        }
        assert.equal(spy.backend.seen.length, seen + 1, 'the backend completed no request but GET /after');
        assert.equal(
          proxy.view()[0]!.passiveDownUntil,
          null,
          "the target is not blamed for the client's bytes",
        );
      });
    }
  });

  it('answers a request in full before the 400 for bad bytes pipelined behind it', async (t) => {
    const spy = await spyBackend(t, (req, res) => setTimeout(() => res.end(`answer ${req.url}`), 30));
    const { port } = await startProxy(t, [route(spy.backend.port)]);
    const answer = await exchange(
      t,
      port,
      'POST /a HTTP/1.1\r\nHost: app\r\nContent-Length: 0\r\n\r\nGET /b HTTP/1.1\r\nHost: app\r\nBad Name: v\r\n\r\n',
    );
    const [first = '', second = ''] = answer.split(/(?=HTTP\/1\.1 )/);
    assert.equal(parse(first).statusLine, 'HTTP/1.1 200 OK');
    assert.equal(parse(first).body, 'answer /a');
    assert.equal(parse(second).statusLine, 'HTTP/1.1 400 Bad Request');
    assert.deepEqual(spy.lines(), ['POST /a']);
  });

  it('answers a Connection: close request and ignores what is pipelined after it', async (t) => {
    const spy = await spyBackend(t, (req, res) => setTimeout(() => res.end(`answer ${req.url}`), 30));
    const { port } = await startProxy(t, [route(spy.backend.port)]);
    const answer = await exchange(
      t,
      port,
      'GET /a HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\nPOST /b HTTP/1.1\r\nHost: app\r\nContent-Length: 0\r\n\r\n',
    );
    assert.equal(responses(answer), 1, answer);
    assert.equal(parse(answer).statusLine, 'HTTP/1.1 200 OK');
    assert.equal(parse(answer).body, 'answer /a');
    assert.deepEqual(spy.lines(), ['GET /a']);
  });
});

eachEngine('size limits', () => {
  const LIMITS = 'proxy:\n  maxHeaderSize: 4k\n  maxBodySize: 1k\n';

  it('answers 431 to a head over maxHeaderSize, and passes one under it', async (t) => {
    const spy = await spyBackend(t);
    const { port } = await startProxy(t, [route(spy.backend.port)], LIMITS);
    const under = parse(
      await exchange(
        t,
        port,
        `GET /under HTTP/1.1\r\nHost: app\r\nX-Big: ${'a'.repeat(3000)}\r\nConnection: close\r\n\r\n`,
      ),
    );
    assert.equal(under.statusLine, 'HTTP/1.1 200 OK');
    const from = spy.arrived.length;
    const answer = await exchange(
      t,
      port,
      `GET /over HTTP/1.1\r\nHost: app\r\nX-Big: ${'a'.repeat(5000)}\r\n\r\n`,
    );
    assert.equal(parse(answer).statusLine, 'HTTP/1.1 431 Request Header Fields Too Large');
    await assertServes(t, port, spy);
    assert.deepEqual(spy.lines().slice(from), ['GET /after'], 'the backend got nothing else');
  });

  it('answers 413 to a Content-Length over maxBodySize without forwarding it, and passes one at the limit', async (t) => {
    const spy = await spyBackend(t);
    const { port } = await startProxy(t, [route(spy.backend.port)], LIMITS);
    const at = parse(
      await exchange(
        t,
        port,
        `POST /at HTTP/1.1\r\nHost: app\r\nContent-Length: 1024\r\nConnection: close\r\n\r\n${'a'.repeat(1024)}`,
      ),
    );
    assert.equal(at.statusLine, 'HTTP/1.1 200 OK');
    assert.equal(spy.backend.seen.at(-1)?.body.length, 1024);
    const from = spy.arrived.length;
    // The head alone is enough: the proxy answers (and closes) before reading any of the body.
    const answer = await exchange(
      t,
      port,
      'POST /over HTTP/1.1\r\nHost: app\r\nContent-Length: 1025\r\n\r\n',
    );
    const a = parse(answer);
    assert.equal(a.statusLine, 'HTTP/1.1 413 Content Too Large');
    assert.match(a.body, /larger than 1024 bytes/);
    await assertServes(t, port, spy);
    assert.deepEqual(spy.lines().slice(from), ['GET /after'], 'the backend got nothing else');
  });

  it('answers 413 to a chunked body over maxBodySize; the backend never gets a complete request', async (t) => {
    const spy = await spyBackend(t);
    const { proxy, port } = await startProxy(t, [route(spy.backend.port)], LIMITS);
    const seen = spy.backend.seen.length;

    // All at once.
    const chunk = (n: number): string => `${n.toString(16)}\r\n${'a'.repeat(n)}\r\n`;
    const answer = await exchange(
      t,
      port,
      `POST /whole HTTP/1.1\r\nHost: app\r\nTransfer-Encoding: chunked\r\n\r\n${chunk(2000)}0\r\n\r\n`,
    );
    assert.equal(parse(answer).statusLine, 'HTTP/1.1 413 Content Too Large');
    assert.equal(responses(answer), 1);

    // Streamed: the first 600 bytes reach the backend, the next 600 pass the limit.
    const raw = await rawConnect(t, port);
    raw.send(`POST /streamed HTTP/1.1\r\nHost: app\r\nTransfer-Encoding: chunked\r\n\r\n${chunk(600)}`);
    const upstream = await waitFor(
      () => spy.arrived.find((a) => a.line === 'POST /streamed' && a.bytes >= 600),
      {
        what: 'the first 600 bytes at the backend',
      },
    );
    assert.equal(raw.text(), '', 'no answer before the limit is passed');
    raw.send(chunk(600));
    const streamed = parse(await raw.untilClosed());
    assert.equal(streamed.statusLine, 'HTTP/1.1 413 Content Too Large');
    assert.match(streamed.body, /larger than 1024 bytes/);
    await waitFor(() => upstream.req.destroyed, { what: 'the upstream request to be aborted' });
    assert.equal(upstream.req.complete, false);
    assert.ok(upstream.bytes <= 1024, `the backend got ${upstream.bytes} bytes`);

    assert.equal(spy.backend.seen.length, seen, 'the backend completed no request');
    assert.equal(proxy.view()[0]!.passiveDownUntil, null, "the target is not blamed for the client's body");
    await assertServes(t, port, spy);
  });

  it('after the backend answered, a chunked body passing maxBodySize gets no 413 and goes no further', async (t) => {
    // The backend answers at once without reading the body.
    const spy = await spyBackend(t, (req, res) => res.end(req.url === '/early' ? 'early' : 'b'), {
      readBody: false,
    });
    const { port } = await startProxy(t, [route(spy.backend.port)], LIMITS);
    const raw = await rawConnect(t, port);
    raw.send(
      'POST /early HTTP/1.1\r\nHost: app\r\nTransfer-Encoding: chunked\r\n\r\n258\r\n' +
        'a'.repeat(600) +
        '\r\n',
    );
    await raw.until((s) => s.endsWith('\r\n\r\nearly'), "the backend's answer");
    raw.send(`258\r\n${'a'.repeat(600)}\r\n258\r\n${'a'.repeat(600)}\r\n0\r\n\r\n`);
    // Then a pipelined request: it gets its answer or the connection closes; either way no 413
    // follows an answer already given.
    raw.send('GET /next HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n');
    const answer = await raw.until((s) => raw.closed() || responses(s) > 1, 'the next answer or a close');
    const first = parse(answer);
    assert.equal(first.statusLine, 'HTTP/1.1 200 OK');
    assert.ok(first.body.startsWith('early'));
    assert.doesNotMatch(answer, /HTTP\/1\.1 413/);
    const early = spy.arrived.find((a) => a.line === 'POST /early')!;
    assert.ok(early.bytes <= 1024, `the backend got ${early.bytes} body bytes`);
    await assertServes(t, port, spy);
  });
});

eachEngine('Expect: 100-continue', () => {
  it('answers 413 without 100 Continue to a Content-Length over the limit', async (t) => {
    const spy = await spyBackend(t);
    const { port } = await startProxy(t, [route(spy.backend.port)], 'proxy:\n  maxBodySize: 1k\n');
    const answer = await exchange(
      t,
      port,
      'POST /x HTTP/1.1\r\nHost: app\r\nContent-Length: 2000\r\nExpect: 100-continue\r\n\r\n',
    );
    assert.equal(parse(answer).statusLine, 'HTTP/1.1 413 Content Too Large');
    assert.doesNotMatch(answer, /100 Continue/);
    await assertServes(t, port, spy);
    assert.deepEqual(spy.lines(), ['GET /after'], 'the backend got nothing else');
  });

  it('answers 100 Continue to an acceptable one, then the real answer', async (t) => {
    const spy = await spyBackend(t, (req, res, body) =>
      res.end(`${req.headers.expect ?? 'no-expect'}:${body}`),
    );
    const { port } = await startProxy(t, [route(spy.backend.port)], 'proxy:\n  maxBodySize: 1k\n');
    const raw = await rawConnect(t, port);
    raw.send(
      'POST /x HTTP/1.1\r\nHost: app\r\nContent-Length: 5\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n',
    );
    assert.equal(
      await raw.until((s) => s.includes('\r\n\r\n'), '100 Continue'),
      'HTTP/1.1 100 Continue\r\n\r\n',
    );
    raw.send('hello');
    const answer = await raw.untilClosed();
    const final = parse(answer.slice('HTTP/1.1 100 Continue\r\n\r\n'.length));
    assert.equal(final.statusLine, 'HTTP/1.1 200 OK');
    assert.equal(final.body, 'no-expect:hello', 'the body reached the backend, without the Expect header');
  });
});

eachEngine('timeouts', () => {
  it('answers 408 to headers slower than clientHeaderTimeout, serving other clients meanwhile', async (t) => {
    const spy = await spyBackend(t);
    const timeout = 400;
    const { port } = await startProxy(
      t,
      [route(spy.backend.port)],
      `proxy:\n  clientHeaderTimeout: ${timeout}ms\n`,
    );
    const started = Date.now();
    const slow = await Promise.all(Array.from({ length: 5 }, () => rawConnect(t, port)));
    for (const s of slow) s.send('GET /slow HTTP/1.1\r\nHost: app\r\nX-Slow: ');
    // Meanwhile, other clients are served at once.
    await assertServes(t, port, spy);
    await assertServes(t, port, spy);
    assert.ok(
      slow.every((s) => !s.closed() && s.text() === ''),
      'the slow connections are still open, unanswered',
    );
    for (const s of slow) {
      const a = parse(await s.untilClosed(timeout + 1500));
      assert.equal(a.statusLine, 'HTTP/1.1 408 Request Timeout');
    }
    const took = Date.now() - started;
    assert.ok(took >= timeout - 50, `408 after ${took}ms, before clientHeaderTimeout`);
    assert.ok(took <= timeout + 1000, `408 after ${took}ms, long after clientHeaderTimeout (${timeout}ms)`);
    await assertServes(t, port, spy);
    assert.deepEqual(
      spy.lines(),
      ['GET /after', 'GET /after', 'GET /after'],
      'the backend never saw the slow ones',
    );
  });

  it('answers 504 when the target does not send its headers within upstreamHeaderTimeout', async (t) => {
    const spy = await spyBackend(t, (req, res) => {
      if (req.url !== '/hang') res.end('b');
    });
    const { port } = await startProxy(
      t,
      [route(spy.backend.port)],
      'proxy:\n  upstreamHeaderTimeout: 300ms\n',
    );
    const started = Date.now();
    const a = parse(
      await exchange(t, port, 'GET /hang HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n', 3000),
    );
    const took = Date.now() - started;
    assert.equal(a.statusLine, 'HTTP/1.1 504 Gateway Timeout');
    assert.match(a.body, /^upstream timed out \(baton, request [\w-]+\)\n$/);
    assert.ok(took >= 250 && took < 2500, `504 after ${took}ms`);
    assert.deepEqual(spy.lines(), ['GET /hang'], 'sent once (there is no other target to retry on)');
    await assertServes(t, port, spy);
  });
});

eachEngine('no usable target', () => {
  it('answers 503 with a short, clear body when the route table is empty', async (t) => {
    const spy = await spyBackend(t);
    const { proxy, port } = await startProxy(t, []);
    const a = parse(await exchange(t, port, 'GET /x HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n'));
    assert.equal(a.statusLine, 'HTTP/1.1 503 Service Unavailable');
    const id = a.headers.get('x-request-id') ?? '';
    assert.ok(id.length > 0);
    assert.equal(a.body, `no target available (baton, request ${id})\n`);
    assert.equal(a.headers.get('content-length'), String(Buffer.byteLength(a.body)));
    proxy.setRoutes([route(spy.backend.port)]);
    await assertServes(t, port, spy);
  });

  it('answers 502 when the target refuses connections', async (t) => {
    const closedPort = await new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as net.AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
    const spy = await spyBackend(t);
    const { proxy, port } = await startProxy(t, [route(closedPort)]);
    const a = parse(await exchange(t, port, 'GET /x HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n'));
    assert.equal(a.statusLine, 'HTTP/1.1 502 Bad Gateway');
    assert.match(a.body, /^upstream failed \(baton, request [\w-]+\)\n$/);
    proxy.setRoutes([route(spy.backend.port)]);
    await assertServes(t, port, spy);
  });
});
