// Zero failed requests through the built-in proxy while targets die, drain, change weight or
// are switched, under steady load; and the failover rules that make it so.
import assert from 'node:assert/strict';
import net from 'node:net';
import { it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import {
  eachEngine,
  route,
  spawnApp,
  startBackend,
  startLoad,
  startProxy,
  waitFor,
} from './helpers/index.js';

eachEngine('zero downtime under load', () => {
  it('SIGKILL of one of two targets fails no GET request', async (t) => {
    const [a, b] = await Promise.all([spawnApp(t, 'a'), spawnApp(t, 'b')]);
    const { url } = await startProxy(t, [route(a.port), route(b.port)]);
    const load = startLoad(url, { concurrency: 8 });
    await waitFor(() => load.result.ok > 300, { what: 'load to flow', timeout: 10_000 });
    a.child.kill('SIGKILL');
    const atKill = load.result.sent;
    await waitFor(() => load.result.sent > atKill + 500, { what: 'load after the kill', timeout: 10_000 });
    const r = await load.stop();
    assert.equal(r.failed, 0, `failures: ${r.failures.join('; ')}`);
    assert.ok((r.byBody.get('b\n') ?? 0) > 500, 'the survivor took the traffic');
  });

  it('draining a target under load fails nothing and waits for its slow request', async (t) => {
    const a = await startBackend(t, 'a', (req, res) => {
      if (req.url === '/slow') setTimeout(() => res.end('slow done'), 500);
      else res.end('a');
    });
    const b = await startBackend(t, 'b', (req, res) => {
      if (req.url === '/slow') setTimeout(() => res.end('slow on b'), 500);
      else res.end('b');
    });
    const { url, proxy } = await startProxy(t, [route(a.port), route(b.port)]);
    const load = startLoad(url, { concurrency: 8 });
    await waitFor(() => load.result.ok > 200, { what: 'load to flow' });
    // A slow request in flight on `a` when the drain starts (round-robin decides where each lands).
    let slow: Promise<string> | undefined;
    for (let i = 0; i < 10 && slow === undefined; i++) {
      const onA = a.seen.filter((s) => s.url === '/slow').length;
      const p = request(`${url}/slow`).then((r) => r.body.text());
      const landed = await waitFor(
        () =>
          (a.seen.filter((s) => s.url === '/slow').length > onA ? 'a' : undefined) ??
          (b.seen.some((s) => s.url === '/slow') ? 'b?' : undefined),
        { what: 'the slow request to land' },
      );
      if (landed === 'a') slow = p;
      else await p;
      b.seen.length = 0;
    }
    assert.ok(slow, 'a slow request landed on a');
    const started = Date.now();
    const result = await proxy.drain(`127.0.0.1:${a.port}`, 5000);
    assert.equal(result.drained, true);
    assert.ok(Date.now() - started >= 300, 'drain waited for the slow request');
    assert.equal(await slow, 'slow done');
    const seenAtDrain = a.seen.length;
    const sentAtDrain = load.result.sent;
    await waitFor(() => load.result.sent > sentAtDrain + 300, { what: 'load after the drain' });
    const r = await load.stop();
    assert.equal(r.failed, 0, `failures: ${r.failures.join('; ')}`);
    assert.equal(a.seen.length, seenAtDrain, 'a drained target gets no new request');
    assert.equal(proxy.view().find((v) => v.id === `127.0.0.1:${a.port}`)!.state, 'drained');
  });

  it('weight changes and a whole-pool switch under load fail nothing', async (t) => {
    const blue = await Promise.all([startBackend(t, 'blue'), startBackend(t, 'blue')]);
    const green = await Promise.all([startBackend(t, 'green'), startBackend(t, 'green')]);
    const { url, proxy } = await startProxy(
      t,
      blue.map((b) => route(b.port)),
    );
    const load = startLoad(url, { concurrency: 8 });
    await waitFor(() => load.result.ok > 200, { what: 'load to flow' });
    proxy.setWeight(`127.0.0.1:${blue[0].port}`, 5);
    proxy.setWeight(`127.0.0.1:${blue[1].port}`, 0);
    let mark = load.result.sent;
    await waitFor(() => load.result.sent > mark + 200, { what: 'load after weight change' });
    const { removed } = proxy.setRoutes(green.map((g) => route(g.port)));
    const drained = await proxy.drainTargets(removed, 5000);
    assert.ok(drained.every((d) => d.drained));
    mark = load.result.sent;
    const greenBefore = load.result.byBody.get('green') ?? 0;
    await waitFor(() => load.result.sent > mark + 300, { what: 'load after switch' });
    const r = await load.stop();
    assert.equal(r.failed, 0, `failures: ${r.failures.join('; ')}`);
    assert.ok((r.byBody.get('green') ?? 0) - greenBefore >= 300, 'all traffic after the switch is green');
  });
});

eachEngine('failover rules', () => {
  it('retries an idempotent request on another target, never a POST that may have run', async (t) => {
    // `bad` reads the request, then cuts the connection without answering.
    const bad = await startBackend(t, 'bad', (req) => req.socket.destroy());
    const good = await startBackend(t, 'good');
    const { url } = await startProxy(t, [route(bad.port, 1, { maxFails: 0 }), route(good.port)]);
    for (let i = 0; i < 4; i++) {
      const r = await request(url);
      assert.equal(await r.body.text(), 'good');
    }
    const seenBefore = bad.seen.length;
    let badPost = 0;
    for (let i = 0; i < 4; i++) {
      const r = await request(url, { method: 'POST', body: 'pay' });
      const text = await r.body.text();
      if (r.statusCode === 502) badPost++;
      else assert.equal(text, 'good');
    }
    assert.equal(badPost, bad.seen.length - seenBefore - 0, 'each POST that hit `bad` got 502, none retried');
    assert.ok(badPost >= 1);
    assert.equal(good.seen.filter((s) => s.method === 'POST').length, 4 - badPost);
  });

  it('retries any request when the connection was refused', async (t) => {
    const good = await startBackend(t, 'good');
    const closed = await startBackend(t, 'closed');
    await closed.close();
    const { url } = await startProxy(t, [route(closed.port), route(good.port)]);
    for (let i = 0; i < 4; i++) {
      const r = await request(url, { method: 'POST', body: 'x' });
      assert.equal(r.statusCode, 200);
      assert.equal(await r.body.text(), 'good');
    }
  });

  it('passive health: maxFails failures within failTimeout take a target out for failTimeout', async (t) => {
    const good = await startBackend(t, 'good');
    const closed = await startBackend(t, 'closed');
    await closed.close();
    const { url, proxy } = await startProxy(t, [
      route(closed.port, 1, { maxFails: 2, failTimeoutMs: 400 }),
      route(good.port),
    ]);
    const dead = proxy.target(`127.0.0.1:${closed.port}`)!;
    for (let i = 0; i < 20; i++) await (await request(url)).body.dump();
    assert.equal(dead.stats.retries, 2, 'two failed tries, then out of rotation');
    assert.ok(dead.downUntil > Date.now());
    await waitFor(() => Date.now() > dead.downUntil, { what: 'failTimeout to pass' });
    for (let i = 0; i < 4; i++) await (await request(url)).body.dump();
    assert.ok(dead.stats.retries > 2, 'tried again after failTimeout');
  });

  it('active health checks take an unhealthy target out and bring it back', async (t) => {
    let healthy = true;
    const flaky = await startBackend(t, 'flaky', (req, res) => {
      if (req.url === '/health') res.writeHead(healthy ? 200 : 500).end();
      else res.end('flaky');
    });
    const steady = await startBackend(t, 'steady');
    const { url, proxy } = await startProxy(
      t,
      [route(flaky.port), route(steady.port)],
      'healthCheck: { path: /health, interval: 50ms, timeout: 200ms, healthyThreshold: 2, unhealthyThreshold: 2 }\n',
    );
    const target = proxy.target(`127.0.0.1:${flaky.port}`)!;
    await waitFor(() => target.health === 'healthy', { what: 'healthy' });
    healthy = false;
    await waitFor(() => target.health === 'unhealthy', { what: 'unhealthy' });
    const bodies = new Set<string>();
    for (let i = 0; i < 6; i++) bodies.add(await (await request(url)).body.text());
    assert.deepEqual([...bodies], ['steady']);
    healthy = true;
    await waitFor(() => target.health === 'healthy', { what: 'healthy again' });
    for (let i = 0; i < 6; i++) bodies.add(await (await request(url)).body.text());
    assert.ok(bodies.has('flaky'));
  });

  it('a target that stops answering at all: GETs waiting on it go to another target, a sent POST waits', async (t) => {
    // Frozen: takes requests and never answers (a host cut off, a hung process), /health too.
    let frozen = false;
    const hung = await startBackend(t, 'hung', (req, res) => {
      if (!frozen) res.end(req.url === '/health' ? 'ok' : 'hung');
    });
    const steady = await startBackend(t, 'steady');
    // The upstream timeout alone would hold them 60s: longer than the client waits below.
    const { url, proxy } = await startProxy(
      t,
      [route(hung.port), route(steady.port)],
      'healthCheck: { path: /health, interval: 50ms, timeout: 200ms, healthyThreshold: 1, unhealthyThreshold: 2 }\nproxy: { upstreamHeaderTimeout: 60s }\n',
    );
    const target = proxy.target(`127.0.0.1:${hung.port}`)!;
    await waitFor(() => target.health === 'healthy', { what: 'healthy' });
    frozen = true;
    const seenBefore = hung.seen.filter((s) => s.url !== '/health').length;
    const ask = (method: 'GET' | 'POST'): Promise<string> =>
      request(url, {
        method,
        reset: true,
        body: method === 'POST' ? 'x' : undefined,
        headersTimeout: 10_000,
      }).then(async (r) => `${r.statusCode} ${await r.body.text()}`);
    const posts = [ask('POST'), ask('POST')];
    const postSettled = posts.map((p) =>
      p.then(
        () => true,
        () => true,
      ),
    );
    const gets = Array.from({ length: 6 }, () => ask('GET'));
    await waitFor(() => hung.seen.filter((s) => s.url === '/' && s.method === 'GET').length > 0, {
      what: 'GETs waiting on the frozen target',
    });
    assert.deepEqual(
      await Promise.all(gets),
      Array(6).fill('200 steady'),
      'every GET answered by the other target',
    );
    assert.equal(target.health, 'unhealthy');
    assert.ok(target.stats.retries > 0, 'moved, not answered by luck');
    // One of the POSTs was written to the frozen target: it may have run there, so it waits.
    const waitingPosts = hung.seen.slice(seenBefore).filter((s) => s.method === 'POST').length;
    assert.ok(waitingPosts > 0, 'a POST reached the frozen target');
    const settled = await Promise.race([
      Promise.all(postSettled).then(() => 'settled'),
      sleep(300).then(() => 'waiting'),
    ]);
    assert.equal(settled, 'waiting', 'the POST sent to the frozen target was not cut or resent');
    await hung.close();
    await Promise.all(postSettled);
  });

  it('answers 503 when no target is in rotation', async (t) => {
    const { url } = await startProxy(t, []);
    const r = await request(url);
    assert.equal(r.statusCode, 503);
    assert.match(await r.body.text(), /no target available/);
  });
});

eachEngine('draining', () => {
  it('reports a drain that timed out with requests still in flight', async (t) => {
    const slow = await startBackend(t, 'slow', (_req, res) => setTimeout(() => res.end('late'), 800));
    const { url, proxy } = await startProxy(t, [route(slow.port)]);
    const pending = request(url).then((r) => r.body.text());
    await waitFor(() => slow.seen.length === 1, { what: 'request in flight' });
    const result = await proxy.drain(`127.0.0.1:${slow.port}`, 100);
    assert.equal(result.drained, false);
    assert.equal(result.inflightLeft, 1);
    assert.equal(await pending, 'late', 'the in-flight request still completes');
  });

  it('closes a WebSocket tunnel gracefully with a 1001 close frame on drain', async (t) => {
    const b = await startBackend(t, 'ws');
    let serverGotClose = false;
    b.server.on('upgrade', (_req, socket: net.Socket) => {
      socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
      socket.on('data', (c: Buffer) => {
        if ((c[0]! & 0x0f) === 0x8) {
          serverGotClose = true;
          socket.end(Buffer.from([0x88, 0x00]));
        }
      });
      // A text frame "hello" from the server.
      socket.write(Buffer.from([0x81, 0x05, ...Buffer.from('hello')]));
    });
    const { port, proxy } = await startProxy(t, [route(b.port)]);
    const s = net.connect(port, '127.0.0.1');
    t.after(() => s.destroy());
    let got = Buffer.alloc(0);
    s.on('data', (c: Buffer) => (got = Buffer.concat([got, c])));
    s.write(
      'GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: a\r\n\r\n',
    );
    await waitFor(() => got.includes('hello'), { what: 'first frame' });
    const target = proxy.target(`127.0.0.1:${b.port}`)!;
    assert.equal(target.tunnels.size, 1);
    const closedByPeer = new Promise<void>((r) => s.on('end', r));
    const result = await proxy.drain(target.spec.id, 5000);
    await closedByPeer;
    const tail = got.subarray(got.indexOf('hello') + 5);
    assert.deepEqual([...tail.subarray(0, 4)], [0x88, 0x02, 0x03, 0xe9], 'client got Close 1001');
    assert.ok(serverGotClose, 'the app got a Close frame too');
    assert.equal(result.drained, true);
  });

  it('a drain during a WebSocket handshake lets the 101 through, then closes with 1001', async (t) => {
    // The app answers the upgrade 300ms late; the drain begins while the tunnel waits for it.
    const b = await startBackend(t, 'ws');
    let serverGotClose = false;
    b.server.on('upgrade', (_req, socket: net.Socket) => {
      socket.on('data', (c: Buffer) => {
        if ((c[0]! & 0x0f) === 0x8) {
          serverGotClose = true;
          socket.end(Buffer.from([0x88, 0x00]));
        }
      });
      setTimeout(
        () =>
          socket.write(
            'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n',
          ),
        300,
      );
    });
    const { port, proxy } = await startProxy(t, [route(b.port)]);
    const s = net.connect(port, '127.0.0.1');
    t.after(() => s.destroy());
    let got = Buffer.alloc(0);
    s.on('data', (c: Buffer) => (got = Buffer.concat([got, c])));
    const closed = new Promise<void>((r) => s.on('close', () => r()));
    s.write(
      'GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: a\r\n\r\n',
    );
    const target = await waitFor(() => proxy.target(`127.0.0.1:${b.port}`), { what: 'the target' });
    await waitFor(() => target.tunnels.size === 1, { what: 'the tunnel to count' });
    const result = await proxy.drain(target.spec.id, 5000);
    await closed;
    const text = got.toString('latin1');
    assert.match(text, /^HTTP\/1\.1 101 /, 'the client got its answer');
    const frames = got.subarray(text.indexOf('\r\n\r\n') + 4);
    assert.deepEqual([...frames.subarray(0, 4)], [0x88, 0x02, 0x03, 0xe9], 'then Close 1001');
    assert.ok(serverGotClose, 'the app got a Close frame too');
    assert.equal(result.drained, true);
    assert.ok(result.waitedMs >= 200, `the drain waited for the handshake (${result.waitedMs}ms)`);
  });
});
