// Handing the built-in proxy's listener to a new process (issue #14: BuiltinProxy.listen(from),
// listeningServer() and retire()). Under keep-alive and new-connection load, with a WebSocket
// open, proxy A (in this process) hands its listening socket to proxy B (a child process) and
// retires: nothing fails, nothing is refused, B answers everything after, and the WebSocket gets
// Close 1001. The control case closes A with no successor (today's shutdown): the same check
// sees refused connections. Counts are asserted, never times.
import assert from 'node:assert/strict';
import { fork, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import path from 'node:path';
import { it, type TestContext } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { Client, Pool, WebSocket } from 'undici';
import { BuiltinProxy } from '../src/edge/builtin/proxy.js';
import { BatonError } from '../src/errors.js';
import { silentLogger } from '../src/log.js';
import { config, eachEngine, ROOT, route, spawnApp, startProxy, waitFor } from './helpers/index.js';

const FIXTURE = path.join(ROOT, 'test/fixtures/handover-proxy.ts');

/** Keep-alive workers (one connection each, ~80 req/s each) and one new-connection worker. */
const KEEP_ALIVE_WORKERS = 4;
const KEEP_ALIVE_EVERY_MS = 12;
const NEW_CONNECTION_EVERY_MS = 25;
/** Bounds of the load, whatever happens. */
const LOAD_MAX_MS = 45_000;
const LOAD_MAX_REQUESTS = 20_000;
/** Answers to see through A before the handover, and through B after A retired. */
const BEFORE = 150;
const AFTER = 150;

const RESETS = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET']);

interface Counts {
  sent: number;
  ok: number;
  failed: number;
  /** Failures that were refused connections (ECONNREFUSED). */
  refused: number;
  /** Failures that were connections reset or closed under a request. */
  reset: number;
  /** Keep-alive answers with `Connection: close` (a retiring proxy's). */
  closeAnswers: number;
  samples: string[];
}

function startTraffic(port: number): { counts: Counts; stop: () => Promise<Counts> } {
  const counts: Counts = { sent: 0, ok: 0, failed: 0, refused: 0, reset: 0, closeAnswers: 0, samples: [] };
  const pool = new Pool(`http://127.0.0.1:${port}`, {
    connections: KEEP_ALIVE_WORKERS,
    pipelining: 1,
    keepAliveTimeout: 30_000,
  });
  const deadline = Date.now() + LOAD_MAX_MS;
  let stopped = false;
  const running = (): boolean => !stopped && Date.now() < deadline && counts.sent < LOAD_MAX_REQUESTS;
  const failed = (err: unknown): void => {
    counts.failed++;
    const code = (err as NodeJS.ErrnoException).code ?? '';
    if (code === 'ECONNREFUSED') counts.refused++;
    else if (RESETS.has(code)) counts.reset++;
    if (counts.samples.length < 10) counts.samples.push(`${code} ${(err as Error).message}`);
  };
  const paced = async (everyMs: number, one: () => Promise<void>): Promise<void> => {
    let next = Date.now();
    while (running()) {
      counts.sent++;
      await one().then(() => void counts.ok++, failed);
      next += everyMs;
      const wait = next - Date.now();
      if (wait > 0) await delay(wait);
      else next = Date.now(); // behind (a busy machine): no burst to catch up
    }
  };
  const keepAlive = async (): Promise<void> => {
    const res = await pool.request({ path: '/', method: 'GET', headersTimeout: 10_000, bodyTimeout: 10_000 });
    const body = await res.body.text();
    if (res.statusCode !== 200) throw new Error(`${res.statusCode} ${body.trim()}`);
    if (res.headers.connection === 'close') counts.closeAnswers++;
  };
  // agent: false: a connection of its own for each request (it asks for `Connection: close`).
  const newConnection = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port, path: '/', agent: false, timeout: 10_000 }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('error', reject);
        res.on('end', () =>
          res.statusCode === 200 ? resolve() : reject(new Error(`${res.statusCode} ${body.trim()}`)),
        );
      });
      req.on('timeout', () => req.destroy(new Error('no answer within 10s')));
      req.on('error', reject);
    });
  const workers = [
    ...Array.from({ length: KEEP_ALIVE_WORKERS }, () => paced(KEEP_ALIVE_EVERY_MS, keepAlive)),
    paced(NEW_CONNECTION_EVERY_MS, newConnection),
  ];
  let stopping: Promise<Counts> | null = null;
  return {
    counts,
    stop: () =>
      (stopping ??= (async () => {
        stopped = true;
        await Promise.all(workers);
        await pool.close();
        return counts;
      })()),
  };
}

interface Ws {
  echo(text: string): Promise<string>;
  /** The close code the proxy (or app) sent. */
  readonly closed: Promise<number>;
  close(): void;
}

/** A WebSocket client (undici's) through the proxy to the example app's echo. */
async function openWebSocket(port: number): Promise<Ws> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
  const closed = new Promise<number>((resolve) => ws.addEventListener('close', (e) => resolve(e.code)));
  await new Promise<void>((resolve, reject) => {
    ws.addEventListener('open', () => resolve(), { once: true });
    ws.addEventListener('error', () => reject(new Error('the WebSocket did not open')), { once: true });
  });
  return {
    echo: (text) =>
      new Promise((resolve) => {
        ws.addEventListener('message', (e) => resolve(String(e.data)), { once: true });
        ws.send(text);
      }),
    closed,
    close: () => ws.close(),
  };
}

interface ProxyB {
  readonly child: ChildProcess;
  next<T>(type: string, timeoutMs?: number): Promise<T>;
}

/** Proxy B: test/fixtures/handover-proxy.ts in a child process, killed at teardown. */
function forkProxyB(
  t: TestContext,
  extra: { stdio?: (number | 'ipc' | 'ignore' | 'pipe')[]; env?: object } = {},
): ProxyB {
  const child = fork(FIXTURE, [], {
    execArgv: ['--import', 'tsx'],
    stdio: extra.stdio ?? ['ignore', 'pipe', 'pipe', 'ipc'],
    env: { ...process.env, ...extra.env },
  });
  let output = '';
  child.stdout?.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (output += c.toString()));
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const next = <T>(type: string, timeoutMs = 30_000): Promise<T> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => done(new Error(`proxy B sent no '${type}' within ${timeoutMs}ms`)),
        timeoutMs,
      );
      const onMessage = (m: { type: string; message?: string }): void => {
        if (m.type === type) done(null, m as T);
        else if (m.type === 'error') done(new Error(`proxy B: ${m.message}`));
      };
      const onExit = (): void => done(new Error(`proxy B exited before '${type}'`));
      const done = (err: Error | null, m?: T): void => {
        clearTimeout(timer);
        child.off('message', onMessage);
        child.off('exit', onExit);
        if (err) reject(new Error(`${err.message}\n${output}`));
        else resolve(m!);
      };
      child.on('message', onMessage);
      child.once('exit', onExit);
    });
  return { child, next };
}

/** One GET on a keep-alive client of its own: the status and the Connection header. */
async function getOn(client: Client): Promise<{ status: number; connection: string }> {
  const res = await client.request({ path: '/', method: 'GET', headersTimeout: 10_000, bodyTimeout: 10_000 });
  await res.body.text();
  return { status: res.statusCode, connection: String(res.headers.connection ?? '') };
}

const sum = (proxy: BuiltinProxy): number => proxy.view().reduce((n, v) => n + v.requests, 0);

eachEngine('proxy handover to a new process', () => {
  it('retires after the handover: 0 failed, 0 refused, B answers after, WebSocket closed with 1001', async (t) => {
    const app = await spawnApp(t, 'v1');
    const { proxy: a, port } = await startProxy(t, [route(app.port)]);
    const b = forkProxyB(t);
    const up = b.next('up');
    const traffic = startTraffic(port);
    t.after(() => traffic.stop());
    const ws = await openWebSocket(port);
    t.after(() => ws.close());
    assert.equal(await ws.echo('before'), 'v1: before');
    // Two more keep-alive connections, each answered once by A: one sends its next request as A
    // starts retiring (within the idle grace: answered, with Connection: close), the other stays
    // idle (A closes it after the grace; its next request goes to B on a new connection).
    const [quick, idle] = [0, 1].map(
      () => new Client(`http://127.0.0.1:${port}`, { keepAliveTimeout: 30_000 }),
    );
    t.after(() => Promise.all([quick!.close(), idle!.close()]));
    assert.equal((await getOn(quick!)).status, 200);
    assert.equal((await getOn(idle!)).status, 200);
    await waitFor(() => traffic.counts.ok >= BEFORE, {
      timeout: 20_000,
      what: `${BEFORE} answers through A`,
    });

    await up;
    const ready = b.next<{ port: number }>('ready');
    b.child.send({ type: 'listen', routes: [route(app.port)] }, a.listeningServer());
    assert.equal((await ready).port, port, 'B reports the address of the socket it took over');
    const retiring = a.retire(10_000);
    const quickAnswer = await getOn(quick!);
    const retired = await retiring;
    assert.deepEqual(
      quickAnswer,
      { status: 200, connection: 'close' },
      'a request on an idle connection as A retires',
    );
    assert.equal(
      (await getOn(idle!)).status,
      200,
      'the idle connection closed by A, the next request goes to B',
    );
    const okWhenRetired = traffic.counts.ok;
    await waitFor(() => traffic.counts.ok >= okWhenRetired + AFTER, {
      timeout: 20_000,
      what: `${AFTER} answers through B`,
    });
    assert.equal(await ws.closed, 1001, 'the WebSocket through A was told 1001 going away');
    const ws2 = await openWebSocket(port);
    t.after(() => ws2.close());
    assert.equal(await ws2.echo('after'), 'v1: after', 'a new WebSocket goes through B');
    const counts = await traffic.stop();
    b.child.send({ type: 'stats' });
    const { requests: throughB } = await b.next<{ requests: number }>('stats');
    const throughA = sum(a);

    const summary = JSON.stringify({ counts, retired, throughA, throughB });
    t.diagnostic(summary);
    assert.equal(counts.failed, 0, summary);
    assert.equal(counts.refused + counts.reset, 0, summary);
    assert.equal(counts.ok, counts.sent, summary);
    // Every request answered once, by A or by B; all of them after A retired by B.
    assert.equal(throughA + throughB, counts.ok + 4, summary); // + quick's and idle's two each
    assert.ok(throughB >= AFTER, summary);
    // Keep-alive connections left A on an answer with Connection: close, or idle; none forced.
    assert.ok(counts.closeAnswers >= 1, summary);
    assert.ok(retired.idleClosed >= 1, summary);
    assert.equal(retired.websocketsClosed, 1, summary);
    assert.equal(retired.forced, 0, summary);
  });

  it('control: closing A with no successor refuses connections, and the same check sees it', async (t) => {
    const app = await spawnApp(t, 'v1');
    const { proxy: a, port } = await startProxy(t, [route(app.port)]);
    const traffic = startTraffic(port);
    t.after(() => traffic.stop());
    await waitFor(() => traffic.counts.ok >= BEFORE, {
      timeout: 20_000,
      what: `${BEFORE} answers through A`,
    });
    await a.close(1000);
    const sentWhenClosed = traffic.counts.sent;
    await waitFor(() => traffic.counts.sent >= sentWhenClosed + 100, {
      timeout: 20_000,
      what: 'load after close',
    });
    const counts = await traffic.stop();
    const summary = JSON.stringify(counts);
    t.diagnostic(summary);
    assert.ok(counts.refused > 0, summary);
    assert.ok(counts.failed >= counts.refused, summary);
    assert.equal(counts.ok + counts.failed, counts.sent, summary);
  });

  it("listens on an inherited file descriptor (systemd's fd 3) and reports its real address", async (t) => {
    const app = await spawnApp(t, 'v1');
    // The socket systemd would bind: listening here, passed to B as its fd 4 (stdio index).
    const holder = net.createServer();
    await new Promise<void>((r) => holder.listen(0, '127.0.0.1', r));
    t.after(() => holder.close());
    const port = (holder.address() as AddressInfo).port;
    const fd = (holder as net.Server & { _handle: { fd: number } })._handle.fd;
    const b = forkProxyB(t, {
      stdio: ['ignore', 'pipe', 'pipe', 'ipc', fd],
      env: { HANDOVER_TEST_FD: '4', HANDOVER_TEST_ROUTE: String(app.port) },
    });
    assert.equal((await b.next<{ port: number }>('ready')).port, port);
    // Only B accepts on it from now on.
    await new Promise<void>((r) => holder.close(() => r()));
    const res = await fetch(`http://127.0.0.1:${port}/`);
    assert.equal(res.status, 200);
    assert.equal(await res.text(), 'v1\n');
  });

  it('refuses a file descriptor that is no listening socket, saying which', async () => {
    const cfg = config('service: test\nlisten: 127.0.0.1:0\n');
    const proxy = new BuiltinProxy({
      listen: cfg.listen!,
      proxy: cfg.proxy,
      balance: cfg.balance,
      log: silentLogger(),
    });
    await assert.rejects(proxy.listen({ fd: 999_999 }), (err: unknown) => {
      assert.ok(err instanceof BatonError && err.code === 'BATON_E_LISTEN', String(err));
      assert.match(err.message, /inherited file descriptor 999999/);
      return true;
    });
  });
});
