// The built-in proxy against real servers: forwarding, headers, streaming, upgrades, balancing.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import net from 'node:net';
import { Readable } from 'node:stream';
import { it } from 'node:test';
import { request } from 'undici';
import { eachEngine, rawExchange, route, startBackend, startProxy, waitFor } from './helpers/index.js';

eachEngine('forwarding', () => {
  it('proxies GET and streams a POST body both ways, fixed-length and chunked', async (t) => {
    const b = await startBackend(t, 'a', (req, res, body) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ method: req.method, body, te: req.headers['transfer-encoding'] ?? null }));
    });
    const { url } = await startProxy(t, [route(b.port)]);
    const get = await request(`${url}/x?q=1`);
    assert.equal(get.statusCode, 200);
    assert.deepEqual(await get.body.json(), { method: 'GET', body: '', te: null });
    assert.equal(b.seen[0]!.url, '/x?q=1');

    const post = await request(`${url}/p`, { method: 'POST', body: 'hello' });
    assert.deepEqual(await post.body.json(), { method: 'POST', body: 'hello', te: null });

    async function* chunks(): AsyncGenerator<string> {
      yield 'one,';
      await new Promise((r) => setTimeout(r, 20));
      yield 'two';
    }
    const chunked = await request(`${url}/p`, { method: 'POST', body: Readable.from(chunks()) });
    assert.deepEqual(await chunked.body.json(), { method: 'POST', body: 'one,two', te: 'chunked' });
  });

  it('streams a large response without buffering it whole', async (t) => {
    const size = 8 * 1024 * 1024;
    const b = await startBackend(t, 'big', (_req, res) => {
      const block = Buffer.alloc(64 * 1024, 'x');
      let sent = 0;
      const pump = (): void => {
        while (sent < size) {
          sent += block.length;
          if (!res.write(block)) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
    });
    const { url } = await startProxy(t, [route(b.port)]);
    const res = await request(`${url}/`);
    const hash = createHash('sha256');
    let n = 0;
    for await (const c of res.body) {
      n += (c as Buffer).length;
      hash.update(c as Buffer);
    }
    assert.equal(n, size);
    assert.equal(hash.digest('hex'), createHash('sha256').update(Buffer.alloc(size, 'x')).digest('hex'));
  });

  it('answers HEAD, 204 and 304 without a body, keeping the connection usable', async (t) => {
    const b = await startBackend(t, 'a', (req, res) => {
      if (req.url === '/204') return void res.writeHead(204).end();
      if (req.url === '/304') return void res.writeHead(304, { etag: '"v1"' }).end();
      res.setHeader('content-length', '5');
      res.end(req.method === 'HEAD' ? undefined : 'hello');
    });
    const { port } = await startProxy(t, [route(b.port)]);
    const out = await rawExchange(
      port,
      'HEAD / HTTP/1.1\r\nHost: x\r\n\r\nGET /204 HTTP/1.1\r\nHost: x\r\n\r\nGET /304 HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
    );
    const statuses = [...out.matchAll(/^HTTP\/1\.1 (\d{3})/gm)].map((m) => m[1]);
    assert.deepEqual(statuses, ['200', '204', '304', '200']);
    assert.match(out, /content-length: 5/i);
    assert.ok(out.endsWith('hello'), 'only the last GET has a body');
  });

  it('answers Expect: 100-continue, then forwards the body', async (t) => {
    const b = await startBackend(t, 'a', (_req, res, body) => res.end(`got ${body}`));
    const { port } = await startProxy(t, [route(b.port)]);
    const out = await new Promise<string>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      let data = '';
      s.write(
        'POST /u HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n',
      );
      s.on('data', (c: Buffer) => {
        data += c.toString();
        if (data.startsWith('HTTP/1.1 100') && !data.includes('got')) s.write('body');
      });
      s.on('close', () => resolve(data));
    });
    assert.match(out, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200/);
    assert.match(out, /got body$/);
    assert.equal(b.seen[0]!.headers.expect, undefined, 'Expect is answered by the proxy, not forwarded');
  });

  it('flushes Server-Sent Events as they come', async (t) => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const b = await startBackend(t, 'sse', (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: first\n\n');
      void gate.then(() => res.end('data: last\n\n'));
    });
    const { url } = await startProxy(t, [route(b.port)]);
    const res = await request(`${url}/events`);
    const it = res.body[Symbol.asyncIterator]();
    const first = await it.next();
    // The first event arrived while the backend still holds the stream open.
    assert.equal(String(first.value), 'data: first\n\n');
    release();
    let rest = '';
    for (let n = await it.next(); !n.done; n = await it.next()) rest += String(n.value);
    assert.equal(rest, 'data: last\n\n');
  });
});

eachEngine('headers', () => {
  it('strips hop-by-hop headers both ways, including those named in Connection', async (t) => {
    const b = await startBackend(t, 'a', (_req, res) => {
      res.setHeader('connection', 'x-internal');
      res.setHeader('x-internal', 'secret');
      res.setHeader('proxy-authenticate', 'Basic');
      res.setHeader('x-kept', 'yes');
      res.end('ok');
    });
    const { port } = await startProxy(t, [route(b.port)]);
    const out = await rawExchange(
      port,
      'GET / HTTP/1.1\r\nHost: site\r\nConnection: close, X-Private\r\nX-Private: 1\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\nProxy-Authorization: x\r\nX-App: 1\r\n\r\n',
    );
    const h = b.seen[0]!.headers;
    assert.equal(h['x-private'], undefined);
    assert.equal(h['te'], undefined);
    assert.equal(h['proxy-authorization'], undefined);
    assert.equal(h['x-app'], '1');
    assert.doesNotMatch(out, /x-internal|proxy-authenticate/i);
    assert.match(out, /x-kept: yes/i);
  });

  it('sets X-Forwarded-*, X-Real-IP and X-Request-Id, trusting client values only from trusted proxies', async (t) => {
    const b = await startBackend(t, 'a');
    const untrusted = await startProxy(t, [route(b.port)]);
    await request(`${untrusted.url}/`, {
      headers: {
        'x-forwarded-for': '6.6.6.6',
        'x-forwarded-proto': 'https',
        'x-real-ip': '6.6.6.6',
        'x-request-id': 'abc-1',
      },
    }).then((r) => r.body.dump());
    let h = b.seen.at(-1)!.headers;
    assert.equal(h['x-forwarded-for'], '127.0.0.1', 'a spoofed X-Forwarded-For is replaced');
    assert.equal(h['x-forwarded-proto'], 'http');
    assert.equal(h['x-real-ip'], '127.0.0.1');
    assert.equal(h['x-forwarded-host'], `127.0.0.1:${untrusted.port}`);
    assert.equal(h['x-request-id'], 'abc-1', 'an incoming request id is kept');

    const trusted = await startProxy(t, [route(b.port)], 'proxy:\n  trustedProxies: [127.0.0.0/8]\n');
    const res = await request(`${trusted.url}/`, {
      headers: { 'x-forwarded-for': '6.6.6.6', 'x-forwarded-proto': 'https' },
    });
    await res.body.dump();
    h = b.seen.at(-1)!.headers;
    assert.equal(h['x-forwarded-for'], '6.6.6.6, 127.0.0.1', 'appended after a trusted proxy');
    assert.equal(h['x-forwarded-proto'], 'https');
    assert.match(String(h['x-request-id']), /^[0-9a-f-]{36}$/, 'generated when absent');
    assert.equal(res.headers['x-request-id'], h['x-request-id'], 'and returned to the client');
  });
});

eachEngine('upgrades', () => {
  it('tunnels a WebSocket both ways', async (t) => {
    const b = await startBackend(t, 'ws');
    b.server.on('upgrade', (_req, socket: net.Socket) => {
      socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
      socket.on('data', (c: Buffer) => socket.write(c)); // echo raw bytes
    });
    const { port } = await startProxy(t, [route(b.port)]);
    const s = net.connect(port, '127.0.0.1');
    t.after(() => s.destroy());
    let got = '';
    s.on('data', (c: Buffer) => (got += c.toString('latin1')));
    s.write(
      'GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: a\r\n\r\n',
    );
    await waitFor(() => got.includes('\r\n\r\n'), { what: '101' });
    assert.match(got, /^HTTP\/1\.1 101/);
    s.write(Buffer.from([0x81, 0x82, 0, 0, 0, 0, 0x68, 0x69])); // masked "hi" with a zero mask
    await waitFor(() => got.endsWith('hi'), { what: 'echo' });
    assert.equal(b.seen.length, 0, 'the upgrade did not go through the request handler');
  });
});

eachEngine('balancing', () => {
  it('smooth weighted round-robin spreads 5:1:1 as nginx does', async (t) => {
    const [a, b, c] = await Promise.all(['a', 'b', 'c'].map((n) => startBackend(t, n)));
    const { url } = await startProxy(t, [route(a!.port, 5), route(b!.port, 1), route(c!.port, 1)]);
    const order: string[] = [];
    for (let i = 0; i < 7; i++) order.push(await (await request(url)).body.text());
    assert.deepEqual(order, ['a', 'a', 'b', 'a', 'c', 'a', 'a']);
  });

  it('least-conn sends new requests to the target with fewer in flight', async (t) => {
    const slow = await startBackend(t, 'slow', (_req, res) => setTimeout(() => res.end('slow'), 400));
    const fast = await startBackend(t, 'fast');
    const { url } = await startProxy(
      t,
      [route(slow.port), route(fast.port)],
      'balance: { algorithm: least-conn }\n',
    );
    const first = request(url).then((r) => r.body.text()); // occupies one target
    await waitFor(() => slow.seen.length + fast.seen.length === 1 || undefined, { what: 'first request' });
    const others: string[] = [];
    for (let i = 0; i < 5; i++) others.push(await (await request(url)).body.text());
    assert.equal(slow.seen.length, 1, 'the first request went to the first target');
    assert.deepEqual(others, ['fast', 'fast', 'fast', 'fast', 'fast'], 'the busy target gets nothing new');
    assert.equal(await first, 'slow');
  });

  it('consistent hashing keeps a key on one target and moves few keys when one is added', async (t) => {
    const backends = await Promise.all(['a', 'b', 'c', 'd'].map((n) => startBackend(t, n)));
    const { url, proxy } = await startProxy(
      t,
      backends.slice(0, 3).map((b) => route(b.port)),
      'balance: { algorithm: hash, hashKey: "header:x-user" }\n',
    );
    const who = async (user: string): Promise<string> =>
      (await request(url, { headers: { 'x-user': user } })).body.text();
    const users = Array.from({ length: 60 }, (_, i) => `user-${i}`);
    const before = new Map<string, string>();
    for (const u of users) before.set(u, await who(u));
    for (const u of users.slice(0, 10)) assert.equal(await who(u), before.get(u), 'sticky');
    assert.ok(new Set(before.values()).size === 3, 'all three targets get keys');
    proxy.addTarget(route(backends[3]!.port));
    let moved = 0;
    for (const u of users) {
      const now = await who(u);
      if (now !== before.get(u)) {
        moved++;
        assert.equal(now, 'd', 'a key only moves to the new target');
      }
    }
    assert.ok(moved > 0 && moved < 30, `about a quarter of keys move, not all (moved ${moved})`);
  });

  it('uses a backup target only while no primary is up', async (t) => {
    const primary = await startBackend(t, 'primary');
    const backup = await startBackend(t, 'backup');
    const { url } = await startProxy(t, [route(primary.port), route(backup.port, 1, { backup: true })]);
    assert.equal(await (await request(url)).body.text(), 'primary');
    assert.equal(await (await request(url)).body.text(), 'primary');
    await primary.close();
    assert.equal(await (await request(url)).body.text(), 'backup');
  });

  it('ramps a new target in over slowStart', async (t) => {
    const old = await startBackend(t, 'old');
    const fresh = await startBackend(t, 'new');
    const { url, proxy } = await startProxy(t, [route(old.port, 10)]);
    proxy.addTarget(route(fresh.port, 10, { slowStartMs: 60_000 }));
    const counts = { old: 0, new: 0 };
    for (let i = 0; i < 100; i++) counts[(await (await request(url)).body.text()) as 'old' | 'new']++;
    assert.ok(counts.new >= 1 && counts.new <= 5, `new target gets ~1% at first, got ${counts.new}`);
  });
});
