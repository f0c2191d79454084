// HTTP/2 to clients at the built-in proxy (#17): a real `baton up` with tls: (and the raw
// engine, which leaves h2 connections to node:http2), one target made here that records what
// it gets. curl --http2 and node:http2 as clients: ALPN, Host from :authority, cookie crumbs
// joined, X-Forwarded-Proto, HSTS, connection-specific fields of the target's answer dropped,
// bodies without Content-Length, maxBodySize, a second Host, CONNECT, a header list over
// maxHeaderSize, a client that stops reading. Hand-written frames for the floods: rapid reset
// (CVE-2023-44487), PING and SETTINGS floods, more streams than maxConcurrentStreams; each with
// its control (the same, under the budget, goes on).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import http2, { type ClientHttp2Session } from 'node:http2';
import path from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { promisify } from 'node:util';
import {
  connectRawH2,
  emptySettings,
  ERROR,
  FRAME,
  getHeaders,
  ping,
  rst,
  type RawH2,
} from './helpers/h2-frames.js';
import { installLeaf, issue, makeCa, type TestCa } from './helpers/certs.js';
import { startDaemon, tempDir, writeFile } from './helpers/cli.js';
import { startBackend, waitFor, type Backend } from './helpers/index.js';

const run = promisify(execFile);

interface Setup {
  readonly port: number;
  readonly ca: TestCa;
  readonly backend: Backend;
  readonly log: () => string;
  /** Requests the target has begun (slow ones included, before they are answered). */
  readonly begun: () => number;
  /** Slow requests whose connection the proxy closed before their answer (abandoned upstream). */
  readonly abandoned: () => number;
}

async function setup(t: TestContext, tlsExtra = ''): Promise<Setup> {
  const dir = tempDir(t);
  const ca = makeCa(dir);
  installLeaf(issue(ca, dir, ['a.test'], 'A1A1A1'), path.join(dir, 'a.crt'), path.join(dir, 'a.key'));
  let begun = 0;
  let abandoned = 0;
  const backend = await startBackend(
    t,
    'app',
    (req, res, body) => {
      const url = req.url ?? '';
      if (url.startsWith('/slow')) {
        const timer = setTimeout(() => res.end('slow'), 3000);
        res.on('close', () => {
          clearTimeout(timer);
          if (!res.writableFinished) abandoned++;
        });
        return;
      }
      if (url === '/dup') {
        // Fields node:http2 takes once: an h2 client gets the first, as HTTP/1.1 clients read it.
        res.setHeader('ETag', ['"first"', '"second"']);
        res.setHeader('X-Content-Type-Options', ['nosniff', 'nosniff']);
        res.end('dup');
        return;
      }
      if (url === '/status-600') {
        res.writeHead(600);
        res.end('no such status');
        return;
      }
      if (url === '/big') {
        // 4 MiB: more than any window the client gives.
        res.writeHead(200, { 'content-length': String(4 << 20) });
        res.end(Buffer.alloc(4 << 20, 97));
        return;
      }
      // Fields HTTP/2 forbids (RFC 9113 §8.2.2): the proxy must drop them, not fail.
      res.setHeader('Keep-Alive', 'timeout=5');
      res.setHeader('X-Upper-Case', 'Yes');
      res.end(
        JSON.stringify({ body, framing: req.headers['transfer-encoding'] ?? req.headers['content-length'] }),
      );
    },
    {},
  );
  const onRequest = (): void => void begun++;
  backend.server.on('request', onRequest);
  const file = writeFile(
    dir,
    'baton.yaml',
    [
      'service: web',
      'listen: 127.0.0.1:0',
      'stateDir: state',
      'targets:',
      `  - address: 127.0.0.1:${backend.port}`,
      `tls: { cert: a.crt, key: a.key, maxConcurrentStreams: 16${tlsExtra} }`,
      'hsts: true',
      'proxy: { engine: raw, maxBodySize: 1k, clientSendTimeout: 1s }',
      '',
    ].join('\n'),
  );
  const d = await startDaemon(t, file, { admin: false });
  const log = (): string => d.stdout() + d.stderr();
  return { port: d.port, ca, backend, log, begun: () => begun, abandoned: () => abandoned };
}

function connect(
  t: TestContext,
  s: Setup,
  options: http2.SecureClientSessionOptions = {},
): ClientHttp2Session {
  const c = http2.connect(`https://127.0.0.1:${s.port}`, { ca: s.ca.pem, servername: 'a.test', ...options });
  c.on('error', () => undefined);
  t.after(() => c.destroy());
  return c;
}

interface Answer {
  readonly status: number;
  readonly headers: http2.IncomingHttpHeaders;
  readonly body: string;
}

function h2request(
  c: ClientHttp2Session,
  headers: http2.OutgoingHttpHeaders,
  body?: (Buffer | string)[],
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const r = c.request(headers, { endStream: body === undefined });
    let got = '';
    let head: http2.IncomingHttpHeaders = {};
    r.on('response', (h) => (head = h));
    r.setEncoding('utf8');
    r.on('data', (chunk: string) => (got += chunk));
    r.on('end', () => resolve({ status: Number(head[':status']), headers: head, body: got }));
    r.on('error', (err: Error) =>
      reject(new Error(`${String(headers[':method'] ?? 'GET')} ${String(headers[':path'])}: ${err.message}`)),
    );
    if (body !== undefined) {
      for (const b of body) r.write(b);
      r.end();
    }
  });
}

/** Waits for the connection to end; the GOAWAY the server sent (null: none). */
async function ended(c: RawH2, what: string): Promise<{ code: number; lastStream: number } | null> {
  await waitFor(() => c.closed(), { timeout: 10_000, what });
  return c.goaway();
}

describe('HTTP/2 to clients at the built-in proxy', () => {
  it('speaks h2 by ALPN beside HTTP/1.1: headers, bodies, limits, a stalled reader', async (t) => {
    const s = await setup(t);
    const curl = (args: string[]): Promise<{ stdout: string }> =>
      run('curl', ['-sS', '--cacert', s.ca.certFile, '--resolve', `a.test:${s.port}:127.0.0.1`, ...args]);

    // curl --http2: h2 negotiated; the target gets HTTP/1.1 with Host from :authority, one
    // Cookie line, X-Forwarded-Proto https; the answer has HSTS and none of Keep-Alive.
    const url = `https://a.test:${s.port}`;
    const c2 = await curl([
      '--http2',
      '-D',
      '-',
      '-H',
      'Cookie: a=1',
      '-H',
      'Cookie: b=2',
      '-d',
      'hello',
      `${url}/p?q=1`,
    ]);
    assert.match(c2.stdout, /^HTTP\/2 200/);
    assert.match(c2.stdout, /strict-transport-security: max-age=31536000/);
    assert.match(c2.stdout, /x-upper-case: Yes/);
    assert.doesNotMatch(c2.stdout, /keep-alive/i);
    const seen = s.backend.seen.at(-1)!;
    assert.equal(seen.url, '/p?q=1');
    assert.equal(seen.body, 'hello');
    assert.equal(seen.headers.host, `a.test:${s.port}`);
    assert.equal(seen.headers.cookie, 'a=1; b=2');
    assert.equal(seen.headers['x-forwarded-proto'], 'https');
    assert.equal(seen.headers['x-forwarded-host'], `a.test:${s.port}`);
    // The same listener still speaks HTTP/1.1 (the raw engine's path) to those who ask for it.
    const c1 = await curl(['--http1.1', '-D', '-', `${url}/one`]);
    assert.match(c1.stdout, /^HTTP\/1\.1 200/);

    const c = connect(t, s);
    const settings = await new Promise<http2.Settings>((r) => c.once('remoteSettings', r));
    assert.equal(settings.maxConcurrentStreams, 16, 'tls.maxConcurrentStreams is advertised');
    assert.equal(settings.maxHeaderListSize, 16 * 1024, 'proxy.maxHeaderSize is the header list limit');

    // A body without Content-Length (DATA frames until END_STREAM) goes upstream chunked.
    const streamed = await h2request(c, { ':method': 'POST', ':path': '/up' }, ['abc', 'def']);
    assert.equal(streamed.status, 200);
    // (or with the length undici counted, when the whole body was in before it sent the head)
    const framed = JSON.parse(streamed.body) as { body: string; framing: string };
    assert.equal(framed.body, 'abcdef');
    assert.ok(framed.framing === 'chunked' || framed.framing === '6', framed.framing);
    // maxBodySize (1k), declared or counted; the connection goes on after each.
    const declared = await h2request(c, { ':method': 'POST', ':path': '/up', 'content-length': '2000' }, [
      'x'.repeat(2000),
    ]);
    assert.equal(declared.status, 413);
    const counted = await h2request(c, { ':method': 'POST', ':path': '/up' }, [
      'x'.repeat(800),
      'x'.repeat(800),
    ]);
    assert.equal(counted.status, 413);
    // :authority and a Host naming something else: refused, as a second Host.
    const twoHosts = await h2request(c, { ':path': '/', ':authority': 'a.test', host: 'evil.test' });
    assert.equal(twoHosts.status, 400);
    assert.match(twoHosts.body, /more than one Host/);
    // CONNECT (and so WebSocket over h2): refused; WebSockets use HTTP/1.1.
    const connectAnswer = await h2request(c, { ':method': 'CONNECT', ':authority': 'a.test:443' });
    assert.equal(connectAnswer.status, 405);
    // A header list over proxy.maxHeaderSize: refused, never forwarded (nghttp2 resets the
    // stream with ENHANCE_YOUR_CALM once the client knows the limit; 431 if it sent it before).
    const before = s.backend.seen.length;
    const big = await h2request(c, { ':path': '/big-head', 'x-big': 'a'.repeat(20_000) }).catch(
      (e: Error) => e,
    );
    if (big instanceof Error) assert.match(big.message, /ENHANCE_YOUR_CALM/);
    else assert.equal(big.status, 431);
    assert.equal(s.backend.seen.length, before);
    // The target's answer, made fit for h2: a repeated single-value field once; a status h2
    // cannot carry is the proxy's 502, without the target's fields.
    const dup = await h2request(c, { ':path': '/dup' });
    assert.equal(dup.status, 200);
    assert.equal(dup.headers.etag, '"first"');
    const odd = await h2request(c, { ':path': '/status-600' });
    assert.equal(odd.status, 502);
    // An upload refused halfway (the client still sending): 413, and the stream ends at once.
    const half = c.request({ ':method': 'POST', ':path': '/up' });
    half.on('error', () => undefined);
    half.write('x'.repeat(1500));
    const halfStatus = await new Promise<number>((r) =>
      half.once('response', (h) => r(Number(h[':status']))),
    );
    assert.equal(halfStatus, 413);
    half.resume();
    await new Promise<void>((r) => half.once('close', () => r()));
    // A HEAD the client resets while the target works on it: the upstream request is abandoned
    // at once (node:http2 does not close a HEAD's response on a reset; the stream tells).
    const headsBefore = s.begun();
    const abandonedBefore = s.abandoned();
    const head = c.request({ ':method': 'HEAD', ':path': '/slow-head' });
    head.on('error', () => undefined);
    await waitFor(() => s.begun() > headsBefore, { what: 'the HEAD at the target' });
    head.close(http2.constants.NGHTTP2_CANCEL);
    await waitFor(() => s.abandoned() > abandonedBefore, {
      timeout: 2000,
      what: 'the HEAD abandoned upstream',
    });
    const after = await h2request(c, { ':path': '/after' });
    assert.equal(after.status, 200, 'the connection serves on');
    assert.equal(after.headers['strict-transport-security'], 'max-age=31536000');

    // A client whose flow control takes nothing: its stream is reset after clientSendTimeout
    // (1s) and the upstream request abandoned; the session is not the measure.
    const slow = connect(t, s, { settings: { initialWindowSize: 1024 } });
    const stalled = slow.request({ ':path': '/big' });
    stalled.on('error', () => undefined);
    stalled.pause();
    const closed = new Promise<number>((r) => stalled.once('close', () => r(stalled.rstCode ?? -1)));
    await waitFor(() => /client took none of the response for proxy\.clientSendTimeout/.test(s.log()), {
      timeout: 10_000,
      what: 'the send-timeout warning',
    });
    // Reset with CANCEL; what came is far from the 4 MiB.
    let received = 0;
    stalled.on('data', (chunk: Buffer) => (received += chunk.length));
    stalled.resume();
    assert.equal(await closed, http2.constants.NGHTTP2_CANCEL);
    assert.ok(received < 1 << 20, `${received} bytes`);
  });

  it('tls.http2: false offers HTTP/1.1 only (the control for ALPN)', async (t) => {
    const s = await setup(t, ', http2: false');
    const r = await run('curl', [
      '-sS',
      '--http2',
      '--cacert',
      s.ca.certFile,
      '--resolve',
      `a.test:${s.port}:127.0.0.1`,
      '-D',
      '-',
      `https://a.test:${s.port}/`,
    ]);
    assert.match(r.stdout, /^HTTP\/1\.1 200/);
  });

  it('ends a connection that floods: rapid reset, PING, SETTINGS; refuses streams past the limit', async (t) => {
    const s = await setup(t);
    const raw = (): Promise<RawH2> => connectRawH2(s.port, 'a.test');

    // Rapid reset: streams opened, forwarded, then reset by the client, in batches of 16 (the
    // most the connection may have open).
    const resets = async (n: number): Promise<RawH2> => {
      const c = await raw();
      for (let id = 1, sent = 0; sent < n && !c.closed();) {
        const batch: number[] = [];
        const begun = s.begun();
        for (let i = 0; i < 16 && sent < n; i++, sent++, id += 2) {
          batch.push(id);
          c.write(getHeaders(id, 'a.test', `/slow-${id}`));
        }
        // Each reached the target: the reset costs the proxy an upstream request.
        await waitFor(() => s.begun() >= begun + batch.length || c.closed(), {
          what: 'the batch at the target',
        });
        for (const b of batch) c.write(rst(b));
      }
      return c;
    };
    const calm = await resets(150);
    const probe = 1001;
    calm.write(getHeaders(probe, 'a.test', '/probe'));
    await waitFor(() => calm.frames.some((f) => f.type === FRAME.HEADERS && f.stream === probe), {
      what: 'an answer after 150 resets (under the budget)',
    });
    assert.equal(calm.goaway(), null);
    calm.socket.destroy();
    const flood = await resets(400);
    const g = await ended(flood, 'the rapid-reset connection to end');
    assert.equal(g?.code, ERROR.ENHANCE_YOUR_CALM);
    assert.ok(g.lastStream < 2 * 300, `stopped after ${(g.lastStream + 1) / 2} streams`);
    await waitFor(() => /GOAWAY ENHANCE_YOUR_CALM: more than 200 streams reset by the client/.test(s.log()), {
      what: 'the rapid-reset warning',
    });

    // PING and SETTINGS floods: each frame wants an acknowledgement.
    for (const [what, make] of [
      ['PING', ping],
      ['SETTINGS', emptySettings],
    ] as const) {
      const ok = await raw();
      ok.write(Buffer.concat(Array.from({ length: 150 }, (_, i) => make(i))));
      const ackType = what === 'PING' ? FRAME.PING : FRAME.SETTINGS;
      await waitFor(() => ok.frames.filter((f) => f.type === ackType && f.flags & 1).length >= 150, {
        what: `150 ${what} acknowledgements (under the budget)`,
      });
      assert.equal(ok.goaway(), null);
      ok.socket.destroy();
      const bad = await raw();
      bad.write(Buffer.concat(Array.from({ length: 2000 }, (_, i) => make(i))));
      assert.equal((await ended(bad, `the ${what} flood to end`))?.code, ERROR.ENHANCE_YOUR_CALM);
    }
    await waitFor(() => /more than 200 SETTINGS\/PING frames/.test(s.log()), { what: 'the flood warning' });

    // maxConcurrentStreams 16: 40 slow requests at once, 16 taken, 24 refused (REFUSED_STREAM,
    // which a client may retry: nothing of them reached the target).
    const many = await raw();
    const begun = s.begun();
    many.write(
      Buffer.concat(Array.from({ length: 40 }, (_, i) => getHeaders(1 + 2 * i, 'a.test', `/slow-c${i}`))),
    );
    await waitFor(() => many.frames.filter((f) => f.type === FRAME.RST_STREAM).length >= 24, {
      what: '24 refused streams',
    });
    const refused = many.frames.filter((f) => f.type === FRAME.RST_STREAM);
    assert.ok(refused.every((f) => f.payload.readUInt32BE(0) === ERROR.REFUSED_STREAM));
    await waitFor(() => s.begun() >= begun + 16, { what: '16 at the target' });
    assert.equal(s.begun(), begun + 16);
    many.socket.destroy();

    // HEADERS (Expect: 100-continue, body to come) and RST_STREAM in one write, 50 times: the
    // proxy sees each stream closed already: no answer, nothing forwarded, no crash.
    const begunBefore = s.begun();
    const pairs = await raw();
    pairs.write(
      Buffer.concat(
        Array.from({ length: 50 }, (_, i) => [
          getHeaders(1 + 2 * i, 'a.test', `/expect-${i}`, [['expect', '100-continue']], false),
          rst(1 + 2 * i),
        ]).flat(),
      ),
    );
    const probeId = 1 + 2 * 50;
    pairs.write(getHeaders(probeId, 'a.test', '/probe-after-pairs'));
    await waitFor(() => pairs.frames.some((f) => f.type === FRAME.HEADERS && f.stream === probeId), {
      what: 'an answer after 50 HEADERS+RST pairs',
    });
    assert.equal(s.begun(), begunBefore + 1, 'only the probe reached the target');
    pairs.socket.destroy();

    // After all that, a new client is served.
    const c = connect(t, s);
    assert.equal((await h2request(c, { ':path': '/fine' })).status, 200);
  });
});
