// Test helpers: real servers on port 0, real child processes, a bounded load loop, and
// polling with a deadline. Everything started here is stopped by the test's teardown.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import net, { type AddressInfo, type Socket } from 'node:net';
import path from 'node:path';
import { after, before, describe, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import { DEFAULTS } from '../../src/config/defaults.js';
import { parseConfigText } from '../../src/config/load.js';
import { BatonError } from '../../src/errors.js';
import type { BatonConfig } from '../../src/config/schema.js';
import { BuiltinProxy } from '../../src/edge/builtin/proxy.js';
import type { RouteSpec } from '../../src/edge/edge.js';
import { silentLogger } from '../../src/log.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const APP = path.join(ROOT, 'examples/app/app.js');
export const BATON = path.join(ROOT, 'bin/baton.js');

/** Polls `check` until it returns a truthy value or the deadline passes. */
export async function waitFor<T>(
  check: () => T | Promise<T>,
  {
    timeout = 5000,
    interval = 20,
    what = 'condition',
  }: { timeout?: number; interval?: number; what?: string } = {},
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeout;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeout}ms waiting for ${what}${last ? `: ${last instanceof Error ? last.message : JSON.stringify(last)}` : ''}`,
      );
    }
    await new Promise((r) => setTimeout(r, interval));
  }
}

export interface Backend {
  readonly port: number;
  readonly name: string;
  readonly server: http.Server;
  /** Requests seen, in order. */
  readonly seen: { method: string; url: string; headers: http.IncomingHttpHeaders; body: string }[];
  close(): Promise<void>;
}

export type Handler = (req: IncomingMessage, res: ServerResponse, body: string) => void;

/** An in-process HTTP server on 127.0.0.1:0; answers its name unless given a handler. */
export async function startBackend(
  t: TestContext,
  name: string,
  handler?: Handler,
  opts: { readBody?: boolean } = {},
): Promise<Backend> {
  const seen: Backend['seen'] = [];
  const sockets = new Set<Socket>();
  const server = http.createServer((req, res) => {
    const done = (body: string): void => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      if (handler) handler(req, res, body);
      else {
        res.setHeader('x-backend', name);
        res.end(name);
      }
    };
    if (opts.readBody === false) return done('');
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => done(Buffer.concat(chunks).toString()));
  });
  server.keepAliveTimeout = 65_000;
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const close = async (): Promise<void> => {
    if (!server.listening) return;
    const closed = new Promise<void>((r) => server.close(() => r()));
    for (const s of sockets) s.destroy();
    await closed;
  };
  t.after(close);
  return { port, name, server, seen, close };
}

export interface App {
  readonly port: number;
  readonly child: ChildProcess;
  readonly output: () => string;
}

/** The example app as a real child process; resolves once it listens. */
export async function spawnApp(t: TestContext, version: string, extra: string[] = []): Promise<App> {
  const child = spawn(process.execPath, [APP, '--port', '0', '--version', version, ...extra], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (out += c.toString()));
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const port = await waitFor(() => Number(/listening on [^:]+:(\d+)/.exec(out)?.[1] ?? 0), {
    what: `app ${version} to listen`,
  });
  return { port, child, output: () => out };
}

/** The message of the config error `text` raises; fails the test when the config loads. */
export function refusedConfig(text: string, file = '/srv/web/baton.yaml'): string {
  try {
    parseConfigText(text, file);
  } catch (err) {
    assert.ok(err instanceof BatonError && err.code === 'BATON_E_CONFIG', String(err));
    return err.message;
  }
  assert.fail('expected the config to be refused');
}

export function config(yaml: string): BatonConfig {
  return parseConfigText(yaml, path.join(ROOT, 'test-config.yaml'));
}

/** proxy.engine for the proxies startProxy starts (see `eachEngine`): the product's default. */
const DEFAULT_ENGINE: 'node' | 'raw' =
  process.env.BATON_TEST_ENGINE === 'node' || process.env.BATON_TEST_ENGINE === 'raw'
    ? process.env.BATON_TEST_ENGINE
    : DEFAULTS.proxy.engine;
let proxyEngine = DEFAULT_ENGINE;

/**
 * Runs `suite` once per proxy engine (node, raw), each in its own describe block: the proxies
 * startProxy starts in it use that engine.
 */
export function eachEngine(name: string, suite: (engine: 'node' | 'raw') => void): void {
  for (const engine of ['node', 'raw'] as const) {
    describe(`${name} (engine ${engine})`, () => {
      before(() => void (proxyEngine = engine));
      after(() => void (proxyEngine = DEFAULT_ENGINE));
      suite(engine);
    });
  }
}

/** The engine of the eachEngine block running now (the default outside of one). */
export function testEngine(): 'node' | 'raw' {
  return proxyEngine;
}

/** A built-in proxy on 127.0.0.1:0 routing to `routes`, closed at teardown. */
export async function startProxy(
  t: TestContext,
  routes: RouteSpec[],
  extraYaml = '',
): Promise<{ proxy: BuiltinProxy; url: string; port: number }> {
  const cfg = config(`service: test\nlisten: 127.0.0.1:0\n${extraYaml}`);
  const proxy = new BuiltinProxy({
    listen: cfg.listen!,
    // An engine the test names wins; otherwise the eachEngine block's (or the default).
    proxy: { ...cfg.proxy, engine: /\bengine:/.test(extraYaml) ? cfg.proxy.engine : proxyEngine },
    balance: cfg.balance,
    healthCheck: cfg.healthCheck,
    log: silentLogger(),
  });
  proxy.setRoutes(routes);
  const a = await proxy.listen();
  if (a.kind !== 'tcp') throw new Error('expected tcp');
  t.after(() => proxy.close(1000));
  return { proxy, url: `http://127.0.0.1:${a.port}`, port: a.port };
}

export function route(port: number, weight = 1, extra: Partial<RouteSpec> = {}): RouteSpec {
  return { host: '127.0.0.1', port, weight, ...extra };
}

export interface LoadResult {
  sent: number;
  ok: number;
  failed: number;
  failures: string[];
  byBody: Map<string, number>;
  /**
   * GETs sent on an idle keep-alive connection that the server closed before any answer, and
   * sent once more on a new one (RFC 9112 §9.3.1, as browsers do); only with `retryIdleClose`.
   */
  idleCloses: number;
}

/** The server closed the connection before any byte of the answer (undici's words for it). */
export function closedBeforeAnswer(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'UND_ERR_SOCKET' || code === 'ECONNRESET';
}

/**
 * Sends requests with `concurrency` workers until `stop()` (or `maxMs`, or `maxRequests`),
 * each worker one request at a time; counts non-2xx answers and errors as failures.
 */
export function startLoad(
  url: string,
  opts: {
    concurrency?: number;
    maxMs?: number;
    maxRequests?: number;
    method?: string;
    body?: string;
    path?: () => string;
    keepAlive?: boolean;
    /** Retry a GET once when a keep-alive connection was closed before any answer. */
    retryIdleClose?: boolean;
  } = {},
): { stop: () => Promise<LoadResult>; result: LoadResult } {
  const {
    concurrency = 8,
    maxMs = 20_000,
    maxRequests = 200_000,
    method = 'GET',
    body,
    keepAlive = true,
  } = opts;
  const result: LoadResult = { sent: 0, ok: 0, failed: 0, failures: [], byBody: new Map(), idleCloses: 0 };
  const retry = (opts.retryIdleClose ?? false) && keepAlive && method === 'GET';
  const agent = new Agent({
    keepAliveTimeout: 30_000,
    connections: concurrency,
    pipelining: keepAlive ? 1 : 0,
  });
  const deadline = Date.now() + maxMs;
  let stopped = false;
  const worker = async (): Promise<void> => {
    while (!stopped && Date.now() < deadline && result.sent < maxRequests) {
      result.sent++;
      const send = (): ReturnType<typeof request> =>
        request(url + (opts.path?.() ?? '/'), {
          method: method as 'GET',
          dispatcher: agent,
          ...(body !== undefined ? { body } : {}),
          ...(keepAlive ? {} : { headers: { connection: 'close' } }),
          headersTimeout: 10_000,
          bodyTimeout: 10_000,
        });
      try {
        const res = await send().catch((err: unknown) => {
          if (!retry || !closedBeforeAnswer(err)) throw err;
          result.idleCloses++;
          return send();
        });
        const text = await res.body.text();
        if (res.statusCode >= 200 && res.statusCode < 300) {
          result.ok++;
          result.byBody.set(text, (result.byBody.get(text) ?? 0) + 1);
        } else {
          result.failed++;
          if (result.failures.length < 20) result.failures.push(`${res.statusCode} ${text.trim()}`);
        }
      } catch (err) {
        result.failed++;
        if (result.failures.length < 20) {
          const e = err as NodeJS.ErrnoException;
          result.failures.push(`${e.code ?? ''} ${e.message}`);
        }
      }
    }
  };
  const workers = Array.from({ length: concurrency }, () => worker());
  let stopping: Promise<LoadResult> | null = null;
  return {
    result,
    // Once: a test may stop it in its body and again at teardown.
    stop: () =>
      (stopping ??= (async () => {
        stopped = true;
        await Promise.all(workers);
        await agent.close();
        return result;
      })()),
  };
}

/** True once a TCP connection to 127.0.0.1:port is accepted. */
export function connects(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, host);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** Raw bytes to a port; resolves with everything the server sent before closing (or timeout). */
export function rawExchange(port: number, data: string | Buffer, timeoutMs = 3000): Promise<string> {
  return new Promise((resolve, reject) => {
    import('node:net')
      .then(({ connect }) => {
        const s = connect(port, '127.0.0.1');
        let out = '';
        const timer = setTimeout(() => {
          s.destroy();
          resolve(out);
        }, timeoutMs);
        s.on('data', (c: Buffer) => (out += c.toString('latin1')));
        s.on('close', () => {
          clearTimeout(timer);
          resolve(out);
        });
        s.on('error', () => undefined);
        s.write(data);
      })
      .catch(reject);
  });
}
