// The raw engine's buffer reuse (issue #16): every upstream socket reads into one shared buffer,
// so a response body the client is slow to take must not be left pointing into it (the next read
// of any upstream socket would overwrite the bytes queued for the slow client); and a small body
// goes out in the response head's buffer. Both checked byte for byte on real sockets.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import net from 'node:net';
import { describe, it } from 'node:test';
import { request } from 'undici';
import { route, startBackend, startProxy, waitFor } from './helpers/index.js';

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
});
