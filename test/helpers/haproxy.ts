// A real HAProxy (Debian's /usr/sbin/haproxy) as the test's own child, in master-worker mode
// (-W) so that a reload is the real thing: SIGUSR2 to the master, which starts a new worker
// that loads the server-state file. Its config, admin socket and state file live in a temp
// folder; teardown stops the master and waits until every worker it forked is gone.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { messageOf } from '../../src/errors.js';
import { freePort, tempDir, writeFile } from './cli.js';
import { waitFor } from './index.js';

const BIN = ['/usr/sbin/haproxy', '/usr/local/sbin/haproxy'].find((p) => existsSync(p)) ?? 'haproxy';

export interface HaproxyOptions {
  /** `server-template baton 1-N` (default 8) and `baton-backup 1-N` (default 4; 0: none). */
  readonly slots?: number;
  readonly backupSlots?: number;
  /** The admin socket's level (default admin). */
  readonly level?: 'admin' | 'operator' | 'user';
  /** Load `web.state` after a reload, and give it to the edge (default true). */
  readonly stateFile?: boolean;
  /** Also a runtime socket on 127.0.0.1:<free port>. */
  readonly tcpSocket?: boolean;
}

export interface HaproxyProcess {
  /** The frontend's port on 127.0.0.1. */
  readonly port: number;
  readonly url: string;
  /** The admin socket's path, and `127.0.0.1:port` when `tcpSocket` was asked for. */
  readonly socket: string;
  readonly tcpSocket: string | null;
  readonly stateFile: string;
  readonly cfgFile: string;
  /** What `edge:` says for this HAProxy (parses with edgeSchema). */
  readonly edgeConfig: {
    readonly type: 'haproxy';
    readonly runtimeSocket: string;
    readonly backend: string;
    readonly stateFile?: string;
    readonly timeout: string;
  };
  /** Master and every worker seen so far. */
  readonly pids: () => number[];
  readonly output: () => string;
  /** SIGUSR2 to the master; resolves once the new worker is loaded and its socket answers. */
  reload(): Promise<void>;
  stop(): Promise<void>;
}

export async function startHaproxy(t: TestContext, opts: HaproxyOptions = {}): Promise<HaproxyProcess> {
  const { slots = 8, backupSlots = 4, level = 'admin', stateFile: useState = true } = opts;
  const dir = tempDir(t);
  const socket = path.join(dir, 'admin.sock');
  const stateFile = path.join(dir, 'web.state');
  const port = await freePort();
  const tcpSocket = opts.tcpSocket ? `127.0.0.1:${await freePort()}` : null;
  const cfgFile = writeFile(
    dir,
    'haproxy.cfg',
    [
      'global',
      `  stats socket ${socket} level ${level}`,
      ...(tcpSocket ? [`  stats socket ${tcpSocket} level admin`] : []),
      'defaults',
      '  mode http',
      '  timeout connect 2s',
      '  timeout client 30s',
      '  timeout server 30s',
      '  timeout tunnel 1h',
      'frontend fe',
      `  bind 127.0.0.1:${port}`,
      '  default_backend web',
      'backend web',
      '  balance roundrobin',
      ...(useState ? ['  load-server-state-from-file local', `  server-state-file-name ${stateFile}`] : []),
      '  option httpchk GET /health',
      '  http-check expect status 200',
      // Fast checks: a new target is up within ~300ms, a dead one down within ~600ms.
      '  default-server inter 300ms fall 2 rise 1',
      `  server-template baton 1-${slots} 127.0.0.1:1 disabled check`,
      ...(backupSlots > 0
        ? [`  server-template baton-backup 1-${backupSlots} 127.0.0.1:1 disabled check backup`]
        : []),
      '',
    ].join('\n'),
  );

  // The master CLI answers only once the master runs its loop, where it handles SIGUSR2: a
  // signal sent before that is lost.
  const master = path.join(dir, 'master.sock');
  const child = spawn(BIN, ['-W', '-db', '-S', master, '-f', cfgFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  let spawnError: unknown = null;
  child.once('error', (err) => (spawnError = err));
  const running = (): boolean => child.exitCode === null && child.signalCode === null;
  const count = (s: string): number => out.split(s).length - 1;
  const workers = (): number[] => [...out.matchAll(/New worker \((\d+)\) forked/g)].map((m) => Number(m[1]));

  const failed = (): boolean => spawnError !== null || !running() || count('Loading failure') > 0;
  const loaded = async (n: number, what: string): Promise<void> => {
    const ready = async (): Promise<boolean> =>
      count('Loading success.') >= n &&
      (await answers(master, 'show proc', 'master')) &&
      (await answers(socket, 'show info', 'Pid:'));
    await waitFor(async () => failed() || (await ready()), { timeout: 10_000, what }).catch(
      (err: unknown) => {
        throw new Error(`${String(err)}\nhaproxy output:\n${out}`);
      },
    );
    if (spawnError) throw new Error(`${BIN}: ${messageOf(spawnError)} (is HAProxy installed?)`);
    if (failed()) throw new Error(`haproxy failed (${what}):\n${out}`);
  };

  // Should the test process end without its teardown, HAProxy does not outlive it.
  const killOnExit = (): void => void (running() && child.kill('SIGTERM'));
  process.once('exit', killOnExit);
  const stop = async (): Promise<void> => {
    process.off('exit', killOnExit);
    if (running()) {
      child.kill('SIGTERM'); // the master stops its workers, then exits
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000).unref())]);
      if (running()) child.kill('SIGKILL');
      await exited;
    }
    // A worker the master could not reap (it was killed) is ended by its own id.
    for (const pid of workers()) {
      if (alive(pid)) process.kill(pid, 'SIGKILL');
    }
    await waitFor(() => workers().every((pid) => !alive(pid)), { what: 'haproxy workers to exit' });
  };
  t.after(stop);

  await loaded(1, `haproxy -f ${cfgFile} to start`);
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    socket,
    tcpSocket,
    stateFile,
    cfgFile,
    edgeConfig: {
      type: 'haproxy',
      runtimeSocket: socket,
      backend: 'web',
      ...(useState ? { stateFile } : {}),
      timeout: '5s',
    },
    pids: () => [...(child.pid === undefined ? [] : [child.pid]), ...workers()],
    output: () => out,
    reload: async () => {
      const before = count('Loading success.');
      child.kill('SIGUSR2');
      await loaded(before + 1, 'haproxy to reload');
    },
    stop,
  };
}

/**
 * The socket takes a connection and answers `cmd` with `expect` in it, within a second. (The
 * master CLI answers but keeps the connection open.)
 */
function answers(socket: string, cmd: string, expect: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(socket);
    let got = '';
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      s.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), 1000);
    s.on('connect', () => s.write(`${cmd}\n`));
    s.on('data', (c: Buffer) => {
      got += c.toString();
      if (got.includes(expect)) done(true);
    });
    s.on('error', () => done(false));
    s.on('close', () => done(got.includes(expect)));
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
