#!/usr/bin/env node
// The example app Baton deploys in its docs, tests and demo: it answers its version, and has
// the endpoints a zero-downtime proof needs (slow requests, POST echo, a stream, WebSocket).
// Plain Node, no dependencies:  node app.js --port 8081 --version 1.0.0
import { createHash } from 'node:crypto';
import http from 'node:http';

const args = process.argv.slice(2);
const arg = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1] : fallback;
};
const port = Number(arg('port', process.env.PORT ?? '8080'));
const host = arg('host', '127.0.0.1');
const version = arg('version', process.env.BATON_VERSION ?? 'dev');
// Failure switches for tests and the demo's bad canary.
// A version named "*-errors" answers 30% of requests with 500 (the demo's bad canary).
const failRate = Number(
  arg('fail-rate', process.env.APP_FAIL_RATE ?? (version.endsWith('-errors') ? '0.3' : '0')),
);
const startDelay = Number(arg('start-delay', process.env.APP_START_DELAY ?? '0'));
const ignoreTerm = args.includes('--ignore-sigterm');
// Exit this long after listening (an app that dies right after start), or start failing its
// health check this long after listening (an app that goes bad after the switch).
const exitAfter = Number(arg('exit-after', process.env.APP_EXIT_AFTER ?? '-1'));
// A version named "*-bad" goes unhealthy 300ms after start: the demo's bad release.
const unhealthyAfter = Number(
  arg('unhealthy-after', process.env.APP_UNHEALTHY_AFTER ?? (version.endsWith('-bad') ? '300' : '-1')),
);
let listeningSince = 0;

const text = (res, status, body, headers = {}) => {
  res.writeHead(status, { 'content-type': 'text/plain', 'x-version': version, ...headers });
  res.end(body);
};

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://app');
  if (url.pathname === '/health') {
    const bad = unhealthyAfter >= 0 && Date.now() - listeningSince > unhealthyAfter;
    return bad ? text(res, 503, 'unhealthy on purpose\n') : text(res, 200, 'ok\n');
  }
  if (failRate > 0 && Math.random() < failRate) return text(res, 500, `failing on purpose (${version})\n`);
  if (url.pathname === '/slow') {
    const ms = Math.min(Number(url.searchParams.get('ms') ?? 1000), 30_000);
    const t = setTimeout(() => text(res, 200, `${version} slow ${ms}ms\n`), ms);
    res.on('close', () => clearTimeout(t));
    return;
  }
  if (url.pathname === '/echo') {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const sha = createHash('sha256').update(body).digest('hex');
      text(res, 200, JSON.stringify({ version, bytes: body.length, sha256: sha }), {
        'content-type': 'application/json',
      });
    });
    return;
  }
  if (url.pathname === '/stream') {
    const n = Math.min(Number(url.searchParams.get('n') ?? 5), 1000);
    const every = Number(url.searchParams.get('every') ?? 100);
    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      'x-version': version,
    });
    let i = 0;
    const t = setInterval(() => {
      res.write(`data: ${version} ${i}\n\n`);
      if (++i >= n) {
        clearInterval(t);
        res.end();
      }
    }, every);
    res.on('close', () => clearInterval(t));
    return;
  }
  return text(res, 200, `${version}\n`);
});

// Keep-alive longer than the proxy's upstream idle timeout (4s), as the docs advise.
server.keepAliveTimeout = 65_000;
server.headersTimeout = 66_000;

// Minimal WebSocket echo (RFC 6455): enough for tunnels and graceful-close tests.
const sockets = new Set();
server.on('upgrade', (req, socket) => {
  const key = req.headers['sec-websocket-key'];
  if ((req.headers.upgrade ?? '').toLowerCase() !== 'websocket' || !key) return socket.destroy();
  const accept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
  socket.write(
    `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\nx-version: ${version}\r\n\r\n`,
  );
  sockets.add(socket);
  socket.on('close', () => sockets.delete(socket));
  // An upgraded socket has lost the http server's error listener: a peer's reset must not take
  // the whole app (and every request in flight) down.
  socket.on('error', () => socket.destroy());
  let buf = Buffer.alloc(0);
  socket.on('data', (chunk) => {
    buf = Buffer.concat([buf, chunk]);
    for (;;) {
      if (buf.length < 2) return;
      const op = buf[0] & 0x0f;
      let len = buf[1] & 0x7f;
      let at = 2;
      if (len === 126) {
        if (buf.length < 4) return;
        len = buf.readUInt16BE(2);
        at = 4;
      } else if (len === 127) {
        if (buf.length < 10) return;
        len = Number(buf.readBigUInt64BE(2));
        at = 10;
      }
      const masked = (buf[1] & 0x80) !== 0;
      const mask = masked ? buf.subarray(at, at + 4) : null;
      at += masked ? 4 : 0;
      if (buf.length < at + len) return;
      const payload = Buffer.from(buf.subarray(at, at + len));
      if (mask) for (let i = 0; i < payload.length; i++) payload[i] ^= mask[i % 4];
      buf = buf.subarray(at + len);
      // Once our Close went out (an answer, or SIGTERM's), nothing more is written: a second
      // Close from the peer (it closed as we did) or a message still in flight is dropped.
      if (socket.writableEnded) continue;
      if (op === 0x8) {
        socket.end(frame(0x8, payload.subarray(0, 2)));
        return;
      }
      if (op === 0x1) socket.write(frame(0x1, Buffer.from(`${version}: ${payload.toString()}`)));
    }
  });
});

function frame(op, payload) {
  const head =
    payload.length < 126
      ? Buffer.from([0x80 | op, payload.length])
      : Buffer.from([0x80 | op, 126, payload.length >> 8, payload.length & 0xff]);
  return Buffer.concat([head, payload]);
}

let stopping = false;
process.on('SIGTERM', () => {
  if (ignoreTerm || stopping) return;
  stopping = true;
  // Graceful: stop accepting, finish in-flight requests, close WebSockets with 1001.
  server.close(() => process.exit(0));
  server.closeIdleConnections();
  for (const s of sockets) if (!s.writableEnded) s.end(frame(0x8, Buffer.from([0x03, 0xe9])));
  setTimeout(() => process.exit(0), 10_000).unref();
});

setTimeout(() => {
  server.listen(port, host, () => {
    const a = server.address();
    listeningSince = Date.now();
    process.stdout.write(`app ${version} listening on ${a.address}:${a.port}\n`);
    if (exitAfter >= 0) {
      setTimeout(() => {
        process.stderr.write(`app ${version}: exiting on purpose (--exit-after)\n`);
        process.exit(3);
      }, exitAfter);
    }
  });
}, startDelay);
