// h2load (Debian's nghttp2-client), an HTTP/2 load client independent of Baton's code: a timed
// run at a fixed request rate, its summary parsed (every request counted: succeeded, failed,
// errored, timed out, and the status classes).
import { spawn } from 'node:child_process';
import http2 from 'node:http2';
import type { TestContext } from 'node:test';

export interface H2loadResult {
  readonly total: number;
  readonly succeeded: number;
  readonly failed: number;
  readonly errored: number;
  readonly timeout: number;
  /** Answers by status class: 2xx, 3xx, 4xx, 5xx. */
  readonly statuses: readonly [number, number, number, number];
  /** The end of the run (Date.now()), to check it covered what it had to. */
  readonly endedAt: number;
  readonly output: string;
}

export interface H2loadOptions {
  /** -D: seconds of load. */
  readonly seconds: number;
  /** -c: connections (clients). */
  readonly clients: number;
  /** -m: streams at once per connection. */
  readonly streams: number;
  /** --rps: requests per second per client. */
  readonly rps: number;
}

/** Starts h2load on `url`; resolves with its summary when the run is over. */
export function h2load(t: TestContext, url: string, o: H2loadOptions): Promise<H2loadResult> {
  const args = [
    '-D',
    String(o.seconds),
    '-c',
    String(o.clients),
    '-m',
    String(o.streams),
    '--rps',
    String(o.rps),
    url,
  ];
  const child = spawn('h2load', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  let output = '';
  child.stdout.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr.on('data', (c: Buffer) => (output += c.toString()));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      const req =
        /requests: (\d+) total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(
          output,
        );
      const st = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(output);
      if (code !== 0 || !req || !st)
        return reject(new Error(`h2load ${args.join(' ')} exited ${code}:\n${output}`));
      const n = (s: string | undefined): number => Number(s);
      resolve({
        total: n(req[1]),
        succeeded: n(req[2]),
        failed: n(req[3]),
        errored: n(req[4]),
        timeout: n(req[5]),
        statuses: [n(st[1]), n(st[2]), n(st[3]), n(st[4])],
        endedAt: Date.now(),
        output,
      });
    });
  });
}

/** One line for a diagnostic or an assertion message. */
export function summary(r: H2loadResult): string {
  return `${r.total} requests: ${r.statuses[0]} 2xx, ${r.statuses[3]} 5xx, ${r.failed} failed, ${r.errored} errored, ${r.timeout} timeout`;
}

export interface H2LoopResult {
  readonly sent: number;
  readonly ok: number;
  readonly failed: number;
  /** Connections opened: more than `concurrency` when the server ended some (GOAWAY). */
  readonly sessions: number;
  /** Requests refused unprocessed (REFUSED_STREAM) and sent again once, as browsers do. */
  readonly retried: number;
  readonly failures: string[];
}

/**
 * A closed loop of `concurrency` HTTP/2 GETs of `url` at a time, as a browser does it: one
 * connection while it lasts, a new one once the server sent GOAWAY or closed it (h2load stops
 * a client then, so it cannot go through a handover), and a stream refused unprocessed
 * (REFUSED_STREAM) sent once more. Every other error, a second refusal and every non-2xx
 * answer is a failure. Runs until stopped, or `maxMs`.
 */
export function h2loop(
  url: string,
  ca: string,
  servername: string,
  o: { concurrency: number; maxMs: number },
): { live: { sent: number }; stop: () => Promise<H2LoopResult> } {
  const live = { sent: 0 };
  let ok = 0;
  let sessions = 0;
  let retried = 0;
  const failures: string[] = [];
  let stopped = false;
  const deadline = Date.now() + o.maxMs;
  let session: http2.ClientHttp2Session | null = null;
  const current = (): http2.ClientHttp2Session => {
    if (session === null || session.closed || session.destroyed) {
      const s = http2.connect(url, { ca, servername });
      sessions++;
      s.on('error', () => undefined);
      // A server going away: no new stream on it; those under way finish.
      s.on('goaway', () => {
        if (session === s) session = null;
      });
      s.on('close', () => {
        if (session === s) session = null;
      });
      session = s;
    }
    return session;
  };
  const one = (again = false): Promise<void> =>
    new Promise((resolve) => {
      if (!again) live.sent++;
      const r = current().request({ ':path': new URL(url).pathname });
      let status = 0;
      r.on('response', (h) => (status = Number(h[':status'])));
      r.resume();
      r.on('end', () => {
        if (status >= 200 && status < 300) ok++;
        else failures.push(`status ${status}`);
        resolve();
      });
      r.on('error', (err: Error) => {
        // RFC 9113 §8.7: refused before any processing, safe to send again (browsers do, once).
        if (!again && r.rstCode === http2.constants.NGHTTP2_REFUSED_STREAM) {
          retried++;
          return void one(true).then(resolve);
        }
        failures.push(err.message);
        resolve();
      });
    });
  const worker = async (): Promise<void> => {
    while (!stopped && Date.now() < deadline) await one();
  };
  const workers = Array.from({ length: o.concurrency }, worker);
  return {
    live,
    stop: async () => {
      stopped = true;
      await Promise.all(workers);
      session?.close();
      return {
        sent: live.sent,
        ok,
        failed: failures.length,
        sessions,
        retried,
        failures: failures.slice(0, 20),
      };
    },
  };
}
