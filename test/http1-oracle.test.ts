// The fuzz oracle (bench/http1/oracle.ts drives node's HTTPParser, llhttp, directly) against real
// node:http, insecureHTTPParser off: a sample of generated requests sent raw to a node:http
// server, which takes the same requests (method, target, body) and refuses the same cases; and
// a sample of generated responses from a raw server to http.request, which reads the same
// response or fails alike. So "llhttp via HTTPParser" stands for node:http, without sockets.
import assert from 'node:assert/strict';
import http, { type IncomingMessage } from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { generate } from '../bench/http1/generate.js';
import { llhttpOutcome } from '../bench/http1/oracle.js';
import { waitFor } from './helpers/index.js';

const SEED = 20_261_203;
const SAMPLE = 200;

interface Seen {
  /** `METHOD url body` for each request whose body ended, in order. */
  readonly complete: string[];
  refused: boolean;
  bytes: number;
}

describe('fuzz oracle = node:http', () => {
  it(`takes and refuses what a node:http server does, on ${SAMPLE} generated requests`, async (t) => {
    const seen = new Map<number, Seen>();
    const server = http.createServer({ insecureHTTPParser: false }, (req: IncomingMessage, res) => {
      const s = seen.get(req.socket.remotePort ?? 0);
      let body = '';
      req.setEncoding('latin1');
      req.on('data', (c: string) => (body += c));
      req.on('end', () => {
        s?.complete.push(`${req.method} ${req.url} ${body}`);
        res.end();
      });
    });
    server.on('clientError', (_e, socket: net.Socket) => {
      const s = seen.get(socket.remotePort ?? 0);
      if (s) s.refused = true;
      socket.destroy();
    });
    server.on('connection', (socket: net.Socket) => {
      socket.on('data', (c: Buffer) => {
        const s = seen.get(socket.remotePort ?? 0);
        if (s) s.bytes += c.length;
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const port = (server.address() as AddressInfo).port;

    let compared = 0;
    let refusedBoth = 0;
    for (let i = 0; compared < SAMPLE && i < SAMPLE * 10; i++) {
      const c = generate(SEED, i);
      if (c.type !== 'request') continue;
      const oracle = llhttpOutcome('request', c.bytes);
      // What node:http does after an upgrade or CONNECT depends on its listeners: not compared.
      if (oracle.messages.some((m) => m.upgrade)) continue;
      const socket = net.connect(port, '127.0.0.1');
      let answer = '';
      socket.on('data', (d: Buffer) => (answer += d.toString('latin1')));
      socket.on('error', () => undefined);
      await new Promise<void>((resolve) => socket.once('connect', resolve));
      const s: Seen = { complete: [], refused: false, bytes: 0 };
      seen.set(socket.localPort ?? 0, s);
      socket.write(c.bytes);
      // Parsing is synchronous with the read: once the server has read every byte (or refused),
      // what it took is known, after its handlers ran.
      await waitFor(() => s.refused || s.bytes === c.bytes.length || socket.destroyed, {
        timeout: 5000,
        what: `the server to read case ${i}`,
      });
      for (let k = 0; k < 3; k++) await new Promise((resolve) => setImmediate(resolve));
      const nodeAnswer = oracle.error?.startsWith('node-') === true;
      if (nodeAnswer) {
        // node:http answers these itself (400, 417), rather than through clientError.
        const status = oracle.error === 'node-missing-host' ? ' 400 ' : ' 417 ';
        await waitFor(() => answer.includes(status), { timeout: 5000, what: `${status} for case ${i}` });
      }
      socket.destroy();
      const expected = oracle.messages.filter((m) => m.complete).map((m) => `${m.method} ${m.url} ${m.body}`);
      const nodeRefused = s.refused || answer.includes(' 400 ') || answer.includes(' 417 ');
      const label = `case ${i} (${c.label}): ${JSON.stringify(c.bytes.toString('latin1').slice(0, 300))}`;
      // After answering 400 / 417 itself, node:http still parses what is pipelined behind; the
      // oracle stops there (stricter: ours must refuse at that point anyway).
      const took = nodeAnswer ? s.complete.slice(0, expected.length) : s.complete;
      assert.deepEqual(took, expected, label);
      // Bytes after a request that closes the connection: node:http answers them 400 too.
      const oracleRefused = oracle.error !== null || oracle.closed === true;
      assert.equal(nodeRefused, oracleRefused, `${label}: node refused ${nodeRefused}`);
      if (nodeRefused) refusedBoth++;
      compared++;
    }
    assert.equal(compared, SAMPLE);
    assert.ok(refusedBoth > 10, `the sample has refusals too (${refusedBoth})`);
  });

  it(`reads responses as node:http's client does, on ${SAMPLE} generated ones`, async (t) => {
    // A raw server that writes the case's bytes as the response, then closes.
    let next: Buffer = Buffer.alloc(0);
    const raw = net.createServer((socket) => {
      socket.on('error', () => undefined);
      socket.once('data', () => socket.end(next));
    });
    await new Promise<void>((resolve) => raw.listen(0, '127.0.0.1', resolve));
    t.after(() => new Promise<void>((resolve) => raw.close(() => resolve())));
    const port = (raw.address() as AddressInfo).port;

    let compared = 0;
    let failedBoth = 0;
    for (let i = 0; compared < SAMPLE && i < SAMPLE * 10; i++) {
      const c = generate(SEED, i);
      if (c.type !== 'response') continue;
      const oracle = llhttpOutcome('response', c.bytes, c.headRequest);
      const finals = oracle.messages.filter((m) => m.status >= 200 || m.status === 101);
      // One final response, nothing after it (what a client does with more depends on its agent),
      // and no 101 (node:http's client hands the socket over).
      const more = finals.length > 1 || oracle.closed === true;
      if (more || finals.some((m) => m.status === 101 || m !== oracle.messages.at(-1))) continue;
      next = c.bytes;
      const got = await new Promise<{ failed: boolean; text: string }>((resolve) => {
        const req = http.request({
          port,
          host: '127.0.0.1',
          method: c.headRequest ? 'HEAD' : 'GET',
          agent: false,
        });
        req.on('error', () => resolve({ failed: true, text: '' }));
        req.on('response', (res) => {
          let body = '';
          res.setEncoding('latin1');
          res.on('data', (d: string) => (body += d));
          res.on('error', () => resolve({ failed: true, text: '' }));
          res.on('aborted', () => resolve({ failed: true, text: '' }));
          res.on('end', () => {
            const trailers = res.rawTrailers.join('\n');
            resolve({
              failed: false,
              text: `${res.statusCode} ${res.rawHeaders.join('\n')} ${body} ${trailers}`,
            });
          });
        });
        req.end();
      });
      const last = oracle.messages.at(-1);
      const expected =
        oracle.error === null && last !== undefined && last.complete
          ? `${last.status} ${last.headers.join('\n')} ${last.body} ${last.trailers.join('\n')}`
          : '';
      const label = `case ${i} (${c.label}): ${JSON.stringify(c.bytes.toString('latin1').slice(0, 300))}`;
      assert.equal(
        got.failed,
        expected === '',
        `${label}: node failed ${got.failed}, llhttp ${oracle.error}`,
      );
      assert.equal(got.text, expected, label);
      if (got.failed) failedBoth++;
      compared++;
    }
    assert.equal(compared, SAMPLE);
    assert.ok(failedBoth > 10, `the sample has refusals too (${failedBoth})`);
  });
});
