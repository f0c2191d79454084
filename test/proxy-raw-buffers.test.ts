// The raw engine's buffer reuse (issue #16): every upstream socket reads into one shared buffer,
// and every plain-TCP client socket into another, so nothing that outlives a read may point into
// them: a response body queued for a slow client, a request body held for a retry, the request
// head the access log and the routing read later (the next read of any socket overwrites them).
// Writes go to the kernel directly while nothing is queued, then through the stream: answers must
// not overtake each other. A small body goes out in the response head's buffer. All checked byte
// for byte on real sockets.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import net from 'node:net';
import { describe, it } from 'node:test';
import { request } from 'undici';
import { BuiltinProxy, type AccessLogEntry } from '../src/edge/builtin/proxy.js';
import { silentLogger } from '../src/log.js';
import { config, route, startBackend, startProxy, waitFor } from './helpers/index.js';

const RAW = 'proxy:\n  engine: raw\n';
const BIG = 8 * 1024 * 1024;

/** `n` bytes of a pattern that no other body here has (never a run of one byte). */
function pattern(n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (i * 7 + (i >>> 13)) % 251;
  return b;
}

describe('engine raw: the shared upstream read buffer', () => {
  it('a body queued for a client that stops reading stays intact while other responses are read', async (t) => {
    const big = pattern(BIG);
    const other = Buffer.alloc(200 * 1024, 'q');
    const b = await startBackend(t, 'b', (req, res) => {
      const body = req.url === '/big' ? big : other;
      res.writeHead(200, { 'content-length': body.length });
      res.end(body);
    });
    const { port } = await startProxy(t, [route(b.port)], RAW);
    const slow = net.connect(port, '127.0.0.1');
    t.after(() => void slow.destroy());
    slow.on('error', () => undefined);
    const chunks: Buffer[] = [];
    let got = 0;
    slow.on('data', (c: Buffer) => {
      chunks.push(c);
      got += c.length;
    });
    slow.pause();
    await new Promise<void>((r) => slow.once('connect', r));
    slow.write('GET /big HTTP/1.1\r\nHost: a\r\n\r\n');
    // Wait until the proxy has as much queued as it will take (its writes to us pending).
    let last = -1;
    await waitFor(
      () => {
        const now = b.seen.length === 1 ? slow.readableLength : -1;
        const still = now === last;
        last = now;
        return still && b.seen.length === 1;
      },
      { timeout: 5000, interval: 100, what: 'the big request to reach the target' },
    );
    // Other responses, read by other upstream sockets into the same buffer, meanwhile.
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        for (let i = 0; i < 10; i++) {
          const res = await request(`http://127.0.0.1:${port}/other`);
          const body = Buffer.from(await res.body.arrayBuffer());
          assert.ok(body.equals(other), 'another response arrived intact');
        }
      }),
    );
    slow.resume();
    const whole = (): Buffer => Buffer.concat(chunks);
    await waitFor(
      () => {
        const at = whole().indexOf('\r\n\r\n');
        return at >= 0 && got - at - 4 >= BIG;
      },
      { timeout: 20_000, what: 'the whole big body' },
    );
    const all = whole();
    const body = all.subarray(all.indexOf('\r\n\r\n') + 4);
    assert.equal(body.length, BIG);
    const digest = (x: Buffer): string => createHash('sha256').update(x).digest('hex');
    assert.equal(digest(body), digest(big), 'the slow client got the bytes the target sent');
  });

  it('a small body goes out with its head, exactly as the target sent it', async (t) => {
    const bodies = ['', 'x', 'hello, world\n', 'y'.repeat(16 * 1024), 'z'.repeat(16 * 1024 + 1)];
    const b = await startBackend(t, 'b', (req, res) => {
      const body = bodies[Number(req.url!.slice(1))]!;
      res.writeHead(200, { 'content-length': Buffer.byteLength(body), 'x-kept': 'yes' });
      res.end(body);
    });
    const { port } = await startProxy(t, [route(b.port)], RAW);
    for (let i = 0; i < bodies.length; i++) {
      const res = await request(`http://127.0.0.1:${port}/${i}`);
      assert.equal(res.statusCode, 200);
      assert.equal(res.headers['x-kept'], 'yes');
      assert.equal(res.headers['content-length'], String(bodies[i]!.length));
      assert.equal(await res.body.text(), bodies[i]);
    }
  });

  it("a request body held for a retry and the head the access log reads survive other clients' reads", async (t) => {
    // ASCII (the target reads bodies as text), each 10-byte piece numbered: none is like another.
    const body = Buffer.from(
      Array.from({ length: 300 }, (_, i) => `body-${String(i).padStart(4, '0')}.`).join(''),
    );
    let release: () => void = () => undefined;
    const released = new Promise<void>((r) => (release = r));
    // a takes the upload, waits until other requests went through the proxy, then cuts it.
    const a = await startBackend(t, 'a', (req, res) => {
      if (req.method !== 'PUT') return void res.end('a');
      void released.then(() => req.socket.destroy());
    });
    const b = await startBackend(t, 'b', (_req, res) => void res.end('b'));
    const cfg = config(`service: test\nlisten: 127.0.0.1:0\n${RAW}`);
    const access: AccessLogEntry[] = [];
    const proxy = new BuiltinProxy({
      listen: cfg.listen!,
      proxy: cfg.proxy,
      balance: cfg.balance,
      log: silentLogger(),
      accessLog: (e) => void access.push(e),
    });
    // a first (weight), b when a fails: the retry of an idempotent PUT sends the held body.
    proxy.setRoutes([route(a.port, 1000), route(b.port, 1)]);
    const l = await proxy.listen();
    if (l.kind !== 'tcp') throw new Error('expected tcp');
    t.after(() => proxy.close(1000));
    const path = '/held-upload-with-a-long-path-that-other-requests-overwrite';
    const put = request(`http://127.0.0.1:${l.port}${path}`, { method: 'PUT', body });
    await waitFor(() => a.seen.some((s) => s.method === 'PUT'), { what: 'the upload to reach a' });
    // Other clients' heads and bodies, read into the same buffer meanwhile.
    for (let i = 0; i < 20; i++) {
      const res = await request(`http://127.0.0.1:${l.port}/${'o'.repeat(200)}${i}`, {
        method: 'POST',
        body: Buffer.alloc(4000, 'o'),
      });
      await res.body.text();
    }
    release();
    const res = await put;
    assert.equal(res.statusCode, 200);
    assert.equal(await res.body.text(), 'b');
    const retried = b.seen.find((s) => s.method === 'PUT');
    assert.ok(retried, 'the upload was retried on b');
    assert.equal(retried.url, path);
    assert.ok(Buffer.from(retried.body, 'latin1').equals(body), 'b got the bytes the client sent');
    await waitFor(() => access.some((e) => e.method === 'PUT'), { what: 'the upload in the access log' });
    const entry = access.find((e) => e.method === 'PUT')!;
    assert.equal(entry.url, path, "the access log has the upload's own path");
    assert.equal(entry.attempts, 2);
  });

  // 1 KB answers go out in the reused head buffer, 8 KB ones in buffers of their own: either way
  // ~5 MB of them overflow the socket buffers, so later writes queue in the stream.
  for (const size of [1000, 8192]) {
    it(`pipelined ${size}-byte answers to a client that stops reading arrive whole and in order`, async (t) => {
      const N = Math.ceil(5_000_000 / size);
      const b = await startBackend(t, 'b', (req, res) => {
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': size });
        res.end(`${req.url}\n`.padEnd(size, '.'));
      });
      const { port } = await startProxy(t, [route(b.port)], RAW);
      const client = net.connect(port, '127.0.0.1');
      t.after(() => void client.destroy());
      client.on('error', () => undefined);
      await new Promise<void>((r) => client.once('connect', r));
      client.pause();
      let heads = '';
      for (let i = 0; i < N; i++) heads += `GET /${i} HTTP/1.1\r\nHost: a\r\n\r\n`;
      client.write(heads);
      await waitFor(() => b.seen.length === N, {
        timeout: 30_000,
        what: 'every request to reach the target',
      });
      const chunks: Buffer[] = [];
      let got = 0;
      client.on('data', (c: Buffer) => {
        chunks.push(c);
        got += c.length;
      });
      client.resume();
      // Each answer's head is over 100 bytes; then the last one's end.
      await waitFor(() => got >= N * (size + 100), { timeout: 30_000, what: 'every answer' });
      await waitFor(() => Buffer.concat(chunks).toString('latin1').endsWith('.'.repeat(64)), {
        what: 'the last',
      });
      const all = Buffer.concat(chunks).toString('latin1');
      assert.equal(all.split('HTTP/1.1 200 OK').length - 1, N);
      const order = [...all.matchAll(/\r\n\r\n\/(\d+)\n\.+/g)].map((m) => Number(m[1]));
      assert.deepEqual(
        order,
        Array.from({ length: N }, (_, i) => i),
      );
    });
  }
});
