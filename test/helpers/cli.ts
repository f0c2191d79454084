// Helpers for tests of the built CLI (`node bin/baton.js`): build once when needed, run a
// command to completion, run `baton up` as a child process, free ports and temp folders.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { BATON, ROOT, waitFor } from './index.js';

/** Builds dist/ when it is missing (`npm test` builds before running the tests). */
export function ensureBuilt(): void {
  if (existsSync(path.join(ROOT, 'dist/cli/main.js'))) return;
  const r = spawnSync('npm', ['run', 'build'], { cwd: ROOT, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`npm run build failed:\n${r.stdout}\n${r.stderr}`);
}

/** A temp folder under os.tmpdir(), removed at teardown. */
export function tempDir(t: TestContext): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'baton-test-'));
  // Removed last: hooks run in the order they were added, and the processes a test starts
  // later (nginx, a daemon) write here until their own hooks stop them. A hook added while the
  // hooks run goes to the end of the line.
  t.after(() => {
    t.after(() => rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 }));
  });
  return dir;
}

export function writeFile(dir: string, name: string, text: string): string {
  const file = path.join(dir, name);
  writeFileSync(file, text);
  return file;
}

/** A TCP port free right now on 127.0.0.1 (for addresses the CLI reads from the config). */
export async function freePort(): Promise<number> {
  // Below Linux's ephemeral range (32768+): a port picked here and bound later by a child is
  // never handed meanwhile to another test file's port-0 bind (seen in CI: EADDRINUSE).
  for (let i = 0; i < 100; i++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    if (await canListen(port)) return port;
  }
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

/** Whether 127.0.0.1:`port` can be bound right now. */
export function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen({ port, host: '127.0.0.1', exclusive: true }, () => s.close(() => resolve(true)));
  });
}

/** The environment for a child: ours without BATON_ADMIN_TOKEN, plus `extra`. */
export function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = { ...process.env, ...extra };
  if (extra.BATON_ADMIN_TOKEN === undefined) delete env.BATON_ADMIN_TOKEN;
  return env;
}

export interface RunResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `node bin/baton.js ...args` to completion (killed after `timeout` ms). */
export function runBaton(
  t: TestContext,
  args: string[],
  { env = {}, timeout = 15_000 }: { env?: Record<string, string>; timeout?: number } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BATON, ...args], {
      cwd: ROOT,
      env: childEnv(env),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    killAtTeardown(t, child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeout);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

function killAtTeardown(t: TestContext, child: ChildProcess): void {
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
}

/** Live `baton dataplane -c <configFile>` processes (they outlive `baton up` by design). */
export function dataPlanePids(configFile: string): number[] {
  const found: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${name}/stat`, 'utf8').split(') ')[1]?.startsWith('Z')) continue;
      const argv = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0');
      if (argv.includes('dataplane') && argv.includes(configFile)) found.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

/** At teardown, after the daemons: the data planes they started. */
function killDataPlanesAtTeardown(t: TestContext, configFile: string): void {
  t.after(async () => {
    for (const pid of dataPlanePids(configFile)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    await waitFor(() => dataPlanePids(configFile).length === 0, {
      timeout: 5000,
      what: 'data planes to die',
    });
  });
}

export interface LogLine {
  readonly msg?: string;
  readonly [key: string]: unknown;
}

export interface DaemonProcess {
  readonly child: ChildProcess;
  /** The built-in proxy's bound port (from the "proxy listening" log line); 0 with nginx / HAProxy. */
  readonly port: number;
  readonly url: string;
  /** Everything the process wrote so far. */
  readonly stdout: () => string;
  readonly stderr: () => string;
  /** The JSON log lines written so far. */
  readonly logs: () => LogLine[];
  /** Resolves with the exit code (or signal) once the process has exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** `baton up -c <file>` as a child process; resolves once the proxy (and admin API) listen. */
export async function startDaemon(
  t: TestContext,
  configFile: string,
  {
    env = {},
    admin = true,
    args = [],
    bin = BATON,
    under = [],
  }: {
    env?: Record<string, string>;
    admin?: boolean;
    args?: readonly string[];
    /** Another build's bin/baton.js (upgrade tests). */
    bin?: string;
    /** A command that runs it, e.g. ['ip', 'netns', 'exec', ns] (it must exec, not fork). */
    under?: readonly string[];
  } = {},
): Promise<DaemonProcess> {
  const argv = [...under, process.execPath, bin, 'up', '-c', configFile, ...args];
  const child = spawn(argv[0]!, argv.slice(1), {
    cwd: ROOT,
    env: childEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  killAtTeardown(t, child);
  killDataPlanesAtTeardown(t, path.resolve(ROOT, configFile));
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  const logs = (): LogLine[] =>
    stdout
      .split('\n')
      .slice(0, -1) // complete lines only
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as LogLine);
  // The built-in edge logs its bound address; an nginx / HAProxy edge only that it is ready.
  const listening = (): LogLine | undefined =>
    logs().find((l) => l.msg === 'proxy listening' || l.msg === 'edge ready');
  const ready = waitFor(
    () => listening() && (!admin || logs().some((l) => l.msg === 'admin API listening')),
    {
      timeout: 10_000,
      what: `baton up -c ${configFile} to listen`,
    },
  );
  const early = exited.then(({ code, signal }) => {
    throw new Error(`baton up exited early (${code ?? signal}):\n${stdout}\n${stderr}`);
  });
  await Promise.race([ready, early]).catch((err: unknown) => {
    throw new Error(`${String(err)}\nstdout:\n${stdout}\nstderr:\n${stderr}`);
  });
  const listen = listening()!.listen;
  const port = Number(/:(\d+)$/.exec(typeof listen === 'string' ? listen : '')?.[1] ?? 0);
  return {
    child,
    port,
    url: `http://127.0.0.1:${port}`,
    stdout: () => stdout,
    stderr: () => stderr,
    logs,
    exited,
  };
}

/**
 * baton.yaml in `dir` for a `baton up` with `targets:` (one target on 127.0.0.1:`targetPort`,
 * the proxy on 127.0.0.1:0, an admin API on a free port) and `lines` after them (tls:, ...).
 */
export async function targetsConfig(
  dir: string,
  targetPort: number,
  lines: readonly string[],
): Promise<string> {
  const head = [
    'service: web',
    'listen: 127.0.0.1:0',
    `admin: 127.0.0.1:${await freePort()}`,
    'stateDir: state',
  ];
  return writeFile(
    dir,
    'baton.yaml',
    [...head, 'targets:', `  - address: 127.0.0.1:${targetPort}`, ...lines, ''].join('\n'),
  );
}
