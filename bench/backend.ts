// The upstream for bench/proxy.ts: a tiny HTTP/1.1 server on 127.0.0.1:0 that answers every
// request with the same small body, so that the proxies in front of it, not it, are measured.
// Run as a child process; prints {"port":N} on stdout once listening and exits when its stdin
// closes (so it never outlives the bench). Mode from argv[2]:
//   raw  (default) a net.Server that counts request heads and writes a canned response; only
//        for body-less requests (wrk, nginx and Baton all send GET here). ~2-3x node:http.
//   http a plain node:http server, for comparison.
// `--port N` after the mode: listen there, as an app instance started by Baton (and stopped by a
// signal, not by its stdin).
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';

const BODY = 'hello, world\n';
const RESPONSE = Buffer.from(
  `HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: ${BODY.length}\r\n\r\n${BODY}`,
  'latin1',
);
const CR = 13;
const LF = 10;

/** Counts complete request heads (ends of "\r\n\r\n") in a stream of chunks. */
class HeadCounter {
  /** How much of "\r\n\r\n" the previous bytes matched (0..3). */
  private state = 0;

  feed(chunk: Buffer): number {
    let heads = 0;
    let s = this.state;
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i];
      if (b === CR) s = s === 2 ? 3 : 1;
      else if (b === LF && (s === 1 || s === 3)) {
        if (s === 3) {
          heads++;
          s = 0;
        } else s = 2;
      } else s = 0;
    }
    this.state = s;
    return heads;
  }
}

function rawServer(): net.Server {
  return net.createServer({ noDelay: true }, (socket) => {
    const counter = new HeadCounter();
    socket.on('data', (chunk: Buffer) => {
      const n = counter.feed(chunk);
      if (n === 1) socket.write(RESPONSE);
      else if (n > 1) socket.write(Buffer.concat(Array.from({ length: n }, () => RESPONSE)));
    });
    socket.on('error', () => socket.destroy());
  });
}

function httpServer(): http.Server {
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': BODY.length });
    res.end(BODY);
  });
  server.keepAliveTimeout = 120_000;
  return server;
}

const mode = process.argv[2] ?? 'raw';
// `--port N`: run as an app instance of Baton (bench/proxy-workers.ts), stopped by a signal.
const asApp = process.argv[3] === '--port';
const wantPort = asApp ? Number(process.argv[4]) : 0;
if (mode !== 'raw' && mode !== 'http') {
  process.stderr.write(`backend: unknown mode ${mode} (raw or http)\n`);
  process.exit(2);
}
const server = mode === 'raw' ? rawServer() : httpServer();
server.listen(wantPort, '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo;
  process.stdout.write(`${JSON.stringify({ port })}\n`);
});
if (!asApp) {
  process.stdin.resume();
  process.stdin.on('end', () => process.exit(0));
}
process.on('SIGTERM', () => process.exit(0));
