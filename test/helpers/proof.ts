// The zero-downtime proof's traffic: every kind of client a deploy can hurt, at once, against
// the proxy on 127.0.0.1 (or on a test host of netns.ts), bounded in time and count. Each kind checks its answers end to end
// (status, version, body), so a wrong or partial answer counts as a failure, not only an error:
//   keep-alive   GET / on reused connections
//   new-conn     GET / with `connection: close` (a new connection per request)
//   slow         GET /slow?ms=1000..2000, so requests are in flight at every switch
//   post         POST /echo with a random body of a few KB; the sha256 answered must match
//   stream       GET /stream?n=10&every=100, read to the end, all n events of one version
//   websocket    raw RFC 6455 clients (node:net, masked frames) sending a message every ~100ms and
//                checking each echo; a Close frame from the server is a graceful close (the
//                client answers it and reconnects); a socket that ends or fails without one is
//                a cut. Churning clients (optional) close after a few echoes and connect again,
//                so that WebSocket handshakes are under way at every switch too.
import { createHash, randomBytes, randomInt } from 'node:crypto';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request, type Dispatcher } from 'undici';
import { closedBeforeAnswer } from './index.js';
import { isTestHostAddress } from './netns.js';

export type HttpKind = 'keep-alive' | 'new-conn' | 'slow' | 'post' | 'stream';
export type Kind = HttpKind | 'websocket';
export const KINDS: readonly Kind[] = ['keep-alive', 'new-conn', 'slow', 'post', 'stream', 'websocket'];

export interface KindResult {
  readonly kind: Kind;
  /** Requests sent (WebSocket: messages sent). */
  sent: number;
  /** Answers that were complete and correct (WebSocket: messages echoed correctly). */
  ok: number;
  /** Errors, non-2xx and wrong answers (WebSocket: failed handshakes, wrong or missing echoes). */
  failed: number;
  /** The first failures, with when (since the traffic started) and during which phase. */
  readonly samples: string[];
  /** Correct answers per version. */
  readonly versions: Map<string, number>;
  /**
   * Requests sent on an idle keep-alive connection that the edge closed before any answer, sent
   * again once on a new connection (RFC 9112 §9.3.1; browsers do). nginx's old workers do that
   * at a reload; an edge that switches without one never should.
   */
  idleCloses: number;
  /** Failures that were a refused connection (ECONNREFUSED: nothing listened). */
  refused: number;
}

export interface WebSocketResult extends KindResult {
  /** Connections that completed the handshake. */
  connections: number;
  /** Server Close frames received (each followed by a reconnect). */
  gracefulCloses: number;
  /** Sockets that ended or failed without a Close frame first. */
  cuts: number;
  readonly cutSamples: string[];
  /** Messages sent but not echoed when the server's Close frame came (allowed by RFC 6455). */
  unansweredAtClose: number;
}

export interface ProofOptions {
  /** Workers per kind, and WebSocket clients. */
  readonly keepAlive?: number;
  readonly newConnection?: number;
  readonly slow?: number;
  readonly post?: number;
  readonly stream?: number;
  readonly websockets?: number;
  /**
   * WebSocket clients that close (with a Close frame) after this many echoes and connect again,
   * so that handshakes happen at every switch too; they count with `websocket`.
   */
  readonly churningWebsockets?: number;
  readonly churnAfter?: number;
  /** Pause between two requests of one fast worker (keep-alive, new-conn, post). */
  readonly paceMs?: number;
  /** Hard bounds: the traffic stops by itself after this long, or this many requests of a kind. */
  readonly maxMs?: number;
  readonly maxPerKind?: number;
}

export interface ProofTraffic {
  readonly results: { readonly [K in HttpKind]: KindResult } & { readonly websocket: WebSocketResult };
  /** Names the phase from now on (failure samples say in which phase they happened). */
  phase(label: string): void;
  /** Correct answers per kind and version, for requests (messages) sent at or after `since`. */
  versionsSince(since: number): Record<Kind, Record<string, number>>;
  /** Waits until every kind has `n` correct answers to requests sent at or after `since`. */
  waitForEach(since: number, n: number, timeoutMs: number): Promise<void>;
  /** Stops every worker and client (WebSockets close with a Close frame) and waits for them. */
  stop(): Promise<ProofTraffic['results']>;
}

const SAMPLES = 12;
/** Pause of a worker (or WebSocket client) after a failure. */
const FAILURE_BACKOFF_MS = 50;
const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** Starts the mixed traffic against `url` (http://127.0.0.1:PORT, the proxy). */
export function startProofTraffic(url: string, opts: ProofOptions = {}): ProofTraffic {
  const target = new URL(url);
  // Loopback, or a host the test made in a network namespace: nowhere else.
  if (target.hostname !== '127.0.0.1' && !isTestHostAddress(target.hostname))
    throw new Error(`the proof traffic goes to 127.0.0.1 or the tests' own hosts only, not ${url}`);
  const host = target.hostname;
  const port = Number(target.port);
  const {
    keepAlive = 4,
    newConnection = 2,
    slow = 4,
    post = 2,
    stream = 2,
    websockets = 4,
    churningWebsockets = 0,
    churnAfter = 3,
    paceMs = 20,
    maxMs = 120_000,
    maxPerKind = 50_000,
  } = opts;
  const t0 = Date.now();
  const deadline = t0 + maxMs;
  let phase = 'start';
  let stopped = false;
  const running = (): boolean => !stopped && Date.now() < deadline;

  const kindResult = (kind: Kind): KindResult => ({
    kind,
    sent: 0,
    ok: 0,
    failed: 0,
    samples: [],
    idleCloses: 0,
    refused: 0,
    versions: new Map(),
  });
  const results = {
    'keep-alive': kindResult('keep-alive'),
    'new-conn': kindResult('new-conn'),
    slow: kindResult('slow'),
    post: kindResult('post'),
    stream: kindResult('stream'),
    websocket: {
      ...kindResult('websocket'),
      connections: 0,
      gracefulCloses: 0,
      cuts: 0,
      cutSamples: [],
      unansweredAtClose: 0,
    } as WebSocketResult,
  };
  /** Correct answers as [sent at, version], per kind, for versionsSince. */
  const answers = new Map<Kind, [number, string][]>(KINDS.map((k) => [k, []]));

  const stamp = (): string => `+${((Date.now() - t0) / 1000).toFixed(2)}s [${phase}]`;
  const fail = (r: KindResult, what: string): void => {
    r.failed++;
    if (what.includes('ECONNREFUSED')) r.refused++;
    if (r.samples.length < SAMPLES) r.samples.push(`${stamp()} ${what}`);
  };
  const succeed = (r: KindResult, sentAt: number, version: string): void => {
    r.ok++;
    r.versions.set(version, (r.versions.get(version) ?? 0) + 1);
    answers.get(r.kind)!.push([sentAt, version]);
  };

  // --- HTTP ---------------------------------------------------------------------------------

  const agents: Agent[] = [];
  const agent = (connections: number): Agent => {
    const a = new Agent({ connections, keepAliveTimeout: 30_000, pipelining: 1 });
    agents.push(a);
    return a;
  };

  interface Call {
    readonly path: string;
    readonly method?: 'GET' | 'POST';
    readonly body?: Buffer;
    readonly reset?: boolean;
    /** Checks a 2xx answer; returns its version, or throws what is wrong with it. */
    readonly check: (version: string, body: string) => string;
  }

  const worker = async (
    r: KindResult,
    dispatcher: Dispatcher,
    next: () => Call,
    pause: number,
  ): Promise<void> => {
    while (running() && r.sent < maxPerKind) {
      const failedBefore = r.failed;
      const call = next();
      const sentAt = Date.now();
      r.sent++;
      const what = `${call.method ?? 'GET'} ${call.path}`;
      let head = '';
      const send = (): ReturnType<typeof request> =>
        request(url + call.path, {
          method: call.method ?? 'GET',
          dispatcher,
          ...(call.body ? { body: call.body, headers: { 'content-type': 'application/octet-stream' } } : {}),
          ...(call.reset ? { reset: true } : {}),
          headersTimeout: 15_000,
          bodyTimeout: 15_000,
        });
      // Sent again once, whatever the method, like Chromium on a reused connection that closed
      // before any answer: nginx closes only *idle* connections at a reload, so the request was
      // never read. Counted apart; the built-in and HAProxy edges must show none.
      const retryable = !call.reset;
      try {
        const res = await send().catch((err: unknown) => {
          if (!retryable || !closedBeforeAnswer(err)) throw err;
          r.idleCloses++;
          return send();
        });
        const v = res.headers['x-version'];
        const version = typeof v === 'string' ? v : '';
        head = `, after a ${res.statusCode} head from ${version || 'no version'}`;
        const text = await res.body.text();
        if (res.statusCode !== 200) {
          fail(r, `${what}: ${res.statusCode} ${text.trim().slice(0, 120)}`);
        } else {
          try {
            succeed(r, sentAt, call.check(version, text));
          } catch (err) {
            fail(r, `${what}: wrong answer from ${version}: ${(err as Error).message}`);
          }
        }
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        fail(r, `${what}: ${e.code ?? 'error'} ${e.message} (${Date.now() - sentAt}ms in${head})`);
      }
      // After a failure, a short back-off: a worker must not spin on instant 503s (recreate).
      const wait = r.failed > failedBefore ? Math.max(pause, FAILURE_BACKOFF_MS) : pause;
      if (wait > 0 && running()) await sleep(wait + randomInt(wait + 1));
    }
  };

  const versionBody = (version: string, body: string): string => {
    if (!version) throw new Error('no x-version header');
    if (body.trim() !== version)
      throw new Error(`body ${JSON.stringify(body.slice(0, 60))} is not ${version}`);
    return version;
  };

  const workers: Promise<void>[] = [];
  const many = (n: number, start: () => Promise<void>): void => {
    for (let i = 0; i < n; i++) workers.push(start());
  };

  const kaAgent = agent(keepAlive + slow + post + stream);
  many(keepAlive, () =>
    worker(results['keep-alive'], kaAgent, () => ({ path: '/', check: versionBody }), paceMs),
  );
  const ncAgent = agent(newConnection);
  many(newConnection, () =>
    worker(results['new-conn'], ncAgent, () => ({ path: '/', reset: true, check: versionBody }), paceMs),
  );
  many(slow, () =>
    worker(
      results.slow,
      kaAgent,
      () => {
        const ms = randomInt(1000, 2001);
        return {
          path: `/slow?ms=${ms}`,
          check: (version, body) => {
            if (body.trim() !== `${version} slow ${ms}ms`)
              throw new Error(`body ${JSON.stringify(body.slice(0, 60))}`);
            return version;
          },
        };
      },
      0,
    ),
  );
  many(post, () =>
    worker(
      results.post,
      kaAgent,
      () => {
        const body = randomBytes(randomInt(2048, 8193));
        const sha = createHash('sha256').update(body).digest('hex');
        return {
          path: '/echo',
          method: 'POST',
          body,
          check: (version, text) => {
            const got = JSON.parse(text) as { version?: string; bytes?: number; sha256?: string };
            if (got.bytes !== body.length || got.sha256 !== sha) {
              throw new Error(
                `sent ${body.length} bytes sha256 ${sha.slice(0, 12)}, echo says ${got.bytes} bytes ${got.sha256?.slice(0, 12)}`,
              );
            }
            if (!got.version || got.version !== version)
              throw new Error(`version ${got.version} vs header ${version}`);
            return version;
          },
        };
      },
      paceMs,
    ),
  );
  const N_EVENTS = 10;
  many(stream, () =>
    worker(
      results.stream,
      kaAgent,
      () => ({
        path: `/stream?n=${N_EVENTS}&every=100`,
        check: (version, body) => {
          const events = body.split('\n\n').filter((e) => e !== '');
          const want = Array.from({ length: N_EVENTS }, (_, i) => `data: ${version} ${i}`);
          if (events.length !== N_EVENTS || events.some((e, i) => e !== want[i])) {
            throw new Error(`${events.length}/${N_EVENTS} events: ${JSON.stringify(events.slice(-2))}`);
          }
          return version;
        },
      }),
      0,
    ),
  );

  // --- WebSocket ----------------------------------------------------------------------------

  const ws = results.websocket;
  const sessions = new Set<WsSession>();
  for (let i = 0; i < websockets + churningWebsockets; i++) {
    const churn = i >= websockets ? churnAfter : 0;
    workers.push(
      (async () => {
        let failedBefore = false;
        while (running()) {
          const s = new WsSession(host, port, `c${i}`, {
            onOpen: () => ws.connections++,
            sent: () => ws.sent++,
            ok: (sentAt, version) => succeed(ws, sentAt, version),
            fail: (what) => fail(ws, what),
            graceful: (unanswered) => {
              ws.gracefulCloses++;
              ws.unansweredAtClose += unanswered;
            },
            cut: (what) => {
              ws.cuts++;
              if (ws.cutSamples.length < SAMPLES) ws.cutSamples.push(`${stamp()} ${what}`);
            },
            stopping: () => !running(),
            capped: () => ws.sent >= maxPerKind,
            churnAfter: churn,
          });
          sessions.add(s);
          const how = await s.done;
          sessions.delete(s);
          failedBefore = how === 'failed';
          if (running()) await sleep(failedBefore ? FAILURE_BACKOFF_MS : 20 + randomInt(30));
        }
      })(),
    );
  }

  const versionsSince = (since: number): Record<Kind, Record<string, number>> => {
    const out = {} as Record<Kind, Record<string, number>>;
    for (const k of KINDS) {
      const by: Record<string, number> = {};
      for (const [at, v] of answers.get(k)!) if (at >= since) by[v] = (by[v] ?? 0) + 1;
      out[k] = by;
    }
    return out;
  };

  let stopping: Promise<ProofTraffic['results']> | null = null;
  return {
    results,
    phase: (label) => {
      phase = label;
    },
    versionsSince,
    waitForEach: async (since, n, timeoutMs) => {
      const until = Date.now() + timeoutMs;
      const count = (k: Kind): number => answers.get(k)!.filter(([at]) => at >= since).length;
      const wanted = (): Kind[] =>
        KINDS.filter((k) => (k === 'websocket' ? websockets + churningWebsockets : workersOf(k, opts)) > 0);
      while (wanted().some((k) => count(k) < n)) {
        if (Date.now() > until || !running()) {
          const have = KINDS.map((k) => `${k} ${count(k)}`).join(', ');
          throw new Error(`timed out after ${timeoutMs}ms waiting for ${n} answers of each kind (${have})`);
        }
        await sleep(50);
      }
    },
    stop: () =>
      (stopping ??= (async () => {
        stopped = true;
        for (const s of sessions) s.close();
        await Promise.all(workers);
        await Promise.all(agents.map((a) => a.close()));
        return results;
      })()),
  };
}

function workersOf(k: HttpKind, o: ProofOptions): number {
  const defaults = { 'keep-alive': 4, 'new-conn': 2, slow: 4, post: 2, stream: 2 };
  const given = {
    'keep-alive': o.keepAlive,
    'new-conn': o.newConnection,
    slow: o.slow,
    post: o.post,
    stream: o.stream,
  };
  return given[k] ?? defaults[k];
}

/** One line per kind, for the test's diagnostics. */
export function summarize(results: ProofTraffic['results']): string[] {
  return KINDS.map((k) => {
    const r = results[k];
    const versions = [...r.versions].map(([v, n]) => `${v}:${n}`).join(' ');
    const base = `${k.padEnd(10)} sent ${r.sent}, ok ${r.ok}, failed ${r.failed}${r.refused ? ` (refused ${r.refused})` : ''}${r.idleCloses ? `, idle closes retried ${r.idleCloses}` : ''}`;
    if (k !== 'websocket') return `${base}  [${versions}]`;
    const w = results.websocket;
    return (
      `${base} (messages), connections ${w.connections}, graceful closes ${w.gracefulCloses}, ` +
      `cuts ${w.cuts}, unanswered at close ${w.unansweredAtClose}  [${versions}]`
    );
  });
}

// --- a minimal RFC 6455 client ------------------------------------------------------------

interface WsEvents {
  onOpen(): void;
  sent(): void;
  ok(sentAt: number, version: string): void;
  fail(what: string): void;
  /** The server sent a Close frame; `unanswered` messages had no echo yet. */
  graceful(unanswered: number): void;
  cut(what: string): void;
  /** True once the traffic is stopping (a Close frame is sent, nothing else). */
  stopping(): boolean;
  /** True when no more messages may be sent. */
  capped(): boolean;
  /** Close from our side after this many echoes (0: never). */
  readonly churnAfter: number;
}

/** A masked client frame (RFC 6455 5.3: every client frame is masked). */
export function clientFrame(opcode: number, payload: Buffer): Buffer {
  const mask = randomBytes(4);
  const len = payload.length;
  const head =
    len < 126
      ? Buffer.from([0x80 | opcode, 0x80 | len])
      : len < 65536
        ? Buffer.from([0x80 | opcode, 0x80 | 126, len >> 8, len & 0xff])
        : (() => {
            const b = Buffer.alloc(10);
            b[0] = 0x80 | opcode;
            b[1] = 0x80 | 127;
            b.writeBigUInt64BE(BigInt(len), 2);
            return b;
          })();
  const body = Buffer.alloc(len);
  for (let i = 0; i < len; i++) body[i] = payload[i]! ^ mask[i % 4]!;
  return Buffer.concat([head, mask, body]);
}

export interface ServerFrame {
  readonly fin: boolean;
  readonly opcode: number;
  readonly payload: Buffer;
}

/** Parses the whole frames at the start of `buf`; the bytes left over belong to the next one. */
export function parseFrames(buf: Buffer): { frames: ServerFrame[]; rest: Buffer; error?: string } {
  const frames: ServerFrame[] = [];
  let at = 0;
  for (;;) {
    if (buf.length - at < 2) break;
    const b0 = buf[at]!;
    const b1 = buf[at + 1]!;
    if (b1 & 0x80) return { frames, rest: buf.subarray(at), error: 'a masked frame from the server' };
    let len = b1 & 0x7f;
    let head = 2;
    if (len === 126) {
      if (buf.length - at < 4) break;
      len = buf.readUInt16BE(at + 2);
      head = 4;
    } else if (len === 127) {
      if (buf.length - at < 10) break;
      len = Number(buf.readBigUInt64BE(at + 2));
      head = 10;
    }
    if (buf.length - at < head + len) break;
    frames.push({
      fin: (b0 & 0x80) !== 0,
      opcode: b0 & 0x0f,
      payload: Buffer.from(buf.subarray(at + head, at + head + len)),
    });
    at += head + len;
  }
  return { frames, rest: buf.subarray(at) };
}

/** How long an echo may take before the connection counts as failed. */
const ECHO_TIMEOUT_MS = 5000;
/** How long to wait for the server's answer to our Close frame. */
const CLOSE_WAIT_MS = 2000;

/** One WebSocket connection through the proxy, from handshake to close. */
class WsSession {
  /** 'graceful': the server closed with a Close frame; 'closed': we did; 'failed' / 'cut'. */
  readonly done: Promise<'graceful' | 'closed' | 'failed' | 'cut'>;
  private readonly socket: net.Socket;
  private state: 'handshake' | 'open' | 'server-closed' | 'client-closed' | 'over' = 'handshake';
  private version = '';
  private buf: Buffer = Buffer.alloc(0);
  private readonly pending: { text: string; at: number }[] = [];
  private seq = 0;
  private echoed = 0;
  private timer: NodeJS.Timeout | null = null;
  private lastError = '';
  private readonly openedAt = Date.now();
  private abandoned = false;
  private readonly key = randomBytes(16).toString('base64');

  constructor(
    host: string,
    port: number,
    private readonly name: string,
    private readonly ev: WsEvents,
  ) {
    let resolve!: (how: 'graceful' | 'closed' | 'failed' | 'cut') => void;
    this.done = new Promise((r) => (resolve = r));
    this.socket = net.connect({ host, port, noDelay: true });
    this.socket.on('connect', () => {
      this.socket.write(
        `GET /ws HTTP/1.1\r\nHost: ${host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${this.key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      );
    });
    this.socket.on('data', (chunk: Buffer) => this.onData(chunk));
    this.socket.on('error', (err: NodeJS.ErrnoException) => {
      this.lastError = `${err.code ?? ''} ${err.message}`.trim();
    });
    this.socket.on('close', () => {
      if (this.timer) clearInterval(this.timer);
      const was = this.state;
      this.state = 'over';
      const age = `${Date.now() - this.openedAt}ms old`;
      const why = this.lastError ? `: ${this.lastError}` : ' (EOF)';
      if (this.abandoned) return resolve('failed');
      if (was === 'handshake') {
        this.ev.fail(`${this.name}: the connection closed before a 101 answer${why}`);
        return resolve('failed');
      }
      if (was === 'open') {
        this.ev.cut(
          `${this.name} on ${this.version}: closed without a Close frame${why}, ${age}, ` +
            `${this.pending.length} message(s) unanswered`,
        );
        return resolve('cut');
      }
      resolve(was === 'server-closed' ? 'graceful' : 'closed');
    });
  }

  /** Closes from our side (the traffic stops): a Close frame, then the socket. */
  close(): void {
    if (this.state === 'handshake') {
      this.abandoned = true;
      this.socket.destroy();
      return;
    }
    if (this.state !== 'open') return;
    this.state = 'client-closed';
    this.socket.write(clientFrame(0x8, Buffer.from([0x03, 0xe8]))); // 1000 normal closure
    setTimeout(() => this.socket.destroy(), CLOSE_WAIT_MS).unref();
  }

  private onData(chunk: Buffer): void {
    this.buf = Buffer.concat([this.buf, chunk]);
    if (this.state === 'handshake') {
      const end = this.buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = this.buf.subarray(0, end).toString('latin1');
      this.buf = this.buf.subarray(end + 4);
      const lines = head.split('\r\n');
      const header = (name: string): string =>
        lines
          .find((l) => l.toLowerCase().startsWith(`${name}:`))
          ?.slice(name.length + 1)
          .trim() ?? '';
      const accept = createHash('sha1').update(`${this.key}${WS_GUID}`).digest('base64');
      if (!/^HTTP\/1\.1 101 /.test(lines[0] ?? '')) {
        this.ev.fail(
          `${this.name}: handshake answered ${JSON.stringify(lines[0])} ${JSON.stringify(this.buf.toString().trim().slice(0, 80))}`,
        );
        return this.abandon();
      }
      if (header('sec-websocket-accept') !== accept) {
        this.ev.fail(`${this.name}: bad Sec-WebSocket-Accept`);
        return this.abandon();
      }
      this.version = header('x-version');
      this.state = 'open';
      this.ev.onOpen();
      if (this.ev.stopping()) return this.close();
      this.timer = setInterval(() => this.tick(), 80 + randomInt(40));
      this.tick();
    }
    const { frames, rest, error } = parseFrames(this.buf);
    this.buf = rest;
    for (const f of frames) this.onFrame(f);
    if (error) {
      this.ev.fail(`${this.name}: ${error}`);
      this.abandon();
    }
  }

  private onFrame(f: ServerFrame): void {
    if (this.state === 'over' || this.abandoned) return;
    if (f.opcode === 0x8) {
      if (this.state === 'open') {
        // The server (the proxy draining, or the app stopping) says goodbye: answer with the
        // same code, as RFC 6455 5.5.1 asks, and let the server close the connection.
        this.state = 'server-closed';
        if (this.timer) clearInterval(this.timer);
        this.ev.graceful(this.pending.length);
        this.socket.write(clientFrame(0x8, f.payload.subarray(0, 2)));
        this.socket.end();
        setTimeout(() => this.socket.destroy(), CLOSE_WAIT_MS).unref();
      } else if (this.state === 'client-closed') {
        this.socket.end();
      }
      return;
    }
    if (f.opcode === 0x9) {
      this.socket.write(clientFrame(0xa, f.payload));
      return;
    }
    if (f.opcode !== 0x1 || !f.fin) {
      if (f.opcode !== 0xa) this.ev.fail(`${this.name}: unexpected frame (opcode ${f.opcode}, fin ${f.fin})`);
      return;
    }
    if (this.state !== 'open' && this.state !== 'client-closed') return;
    const text = f.payload.toString();
    const first = this.pending.shift();
    if (first === undefined) {
      this.ev.fail(`${this.name}: an echo nobody asked for: ${JSON.stringify(text.slice(0, 60))}`);
      return;
    }
    const want = `${this.version}: ${first.text}`;
    if (text !== want) {
      this.ev.fail(
        `${this.name}: echo ${JSON.stringify(text.slice(0, 60))}, expected ${JSON.stringify(want)}`,
      );
      return this.abandon();
    }
    this.ev.ok(first.at, this.version);
    if (++this.echoed === this.ev.churnAfter) this.close();
  }

  private tick(): void {
    if (this.state !== 'open') return;
    const oldest = this.pending[0];
    if (oldest && Date.now() - oldest.at > ECHO_TIMEOUT_MS) {
      this.ev.fail(`${this.name} on ${this.version}: no echo of ${oldest.text} for ${ECHO_TIMEOUT_MS}ms`);
      return this.abandon();
    }
    if (this.ev.stopping()) return this.close();
    if (this.ev.capped()) return;
    const text = `${this.name}.${++this.seq} ${randomBytes(randomInt(4, 64)).toString('base64')}`;
    this.pending.push({ text, at: Date.now() });
    this.ev.sent();
    this.socket.write(clientFrame(0x1, Buffer.from(text)));
  }

  /** Gives up on a connection already counted as failed (not a cut). */
  private abandon(): void {
    this.abandoned = true;
    if (this.timer) clearInterval(this.timer);
    this.socket.destroy();
  }
}
