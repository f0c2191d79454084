// systemd socket activation (sd_listen_fds): the variables are read as systemd's own library
// reads them, malformed ones are refused with BATON_E_LISTEN, and, for real, a process started
// the way systemd starts a service (listening sockets as fds 3 and 4, LISTEN_PID = its own pid)
// serves HTTP on them after the process that bound them has closed its copies.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { pathToFileURL } from 'node:url';
import { request } from 'undici';
import { clearListenFdsEnv, listenFdsFromEnv } from '../src/daemon/listen-fds.js';
import { BatonError } from '../src/errors.js';
import { ROOT } from './helpers/index.js';

const OTHER_PID = 4_000_000; // above any pid_max: never this process

function refused(env: NodeJS.ProcessEnv, message: RegExp): void {
  assert.throws(
    () => listenFdsFromEnv(env, 4242),
    (err: unknown) => err instanceof BatonError && err.code === 'BATON_E_LISTEN' && message.test(err.message),
  );
}

describe('listenFdsFromEnv: the variables', () => {
  it('none without LISTEN_PID, or when LISTEN_PID is another process (whatever LISTEN_FDS holds)', () => {
    assert.deepEqual(listenFdsFromEnv({}, 4242), []);
    assert.deepEqual(listenFdsFromEnv({ LISTEN_FDS: '1' }, 4242), []);
    assert.deepEqual(listenFdsFromEnv({ LISTEN_PID: String(OTHER_PID), LISTEN_FDS: '1' }, 4242), []);
    assert.deepEqual(listenFdsFromEnv({ LISTEN_PID: String(OTHER_PID), LISTEN_FDS: 'abc' }, 4242), []);
    assert.deepEqual(listenFdsFromEnv({ LISTEN_PID: '4242' }, 4242), []);
    assert.deepEqual(listenFdsFromEnv({ LISTEN_PID: '4242', LISTEN_FDS: '0' }, 4242), []);
    // The defaults are this process and its environment, which has none.
    assert.deepEqual(listenFdsFromEnv(), []);
  });

  it('refuses malformed values, naming the variable and its value', () => {
    for (const v of ['abc', '-1', '1.5', ' 1', '0x1', '2000', '99999999999']) {
      refused(
        { LISTEN_PID: '4242', LISTEN_FDS: v },
        new RegExp(`^LISTEN_FDS=${JSON.stringify(v).replace('.', '\\.')} `),
      );
    }
    for (const v of ['abc', '0', '-4242']) {
      refused(
        { LISTEN_PID: v, LISTEN_FDS: '1' },
        new RegExp(`^LISTEN_PID=${JSON.stringify(v)} .*not a process id`),
      );
    }
    refused(
      { LISTEN_PID: '4242', LISTEN_FDS: '2', LISTEN_FDNAMES: 'web' },
      /LISTEN_FDNAMES="web" names 1 socket\(s\) but LISTEN_FDS=2/,
    );
    refused(
      { LISTEN_PID: '4242', LISTEN_FDS: '0', LISTEN_FDNAMES: 'web' },
      /names 1 socket\(s\) but LISTEN_FDS=0/,
    );
  });

  it('clearListenFdsEnv unsets the three variables and nothing else', (t) => {
    const env: NodeJS.ProcessEnv = {
      LISTEN_PID: '1234',
      LISTEN_FDS: '1',
      LISTEN_FDNAMES: 'web',
      LISTEN_X: 'kept',
      PATH: '/bin',
    };
    clearListenFdsEnv(env);
    assert.deepEqual(env, { LISTEN_X: 'kept', PATH: '/bin' });
    const saved = { ...process.env };
    t.after(() => {
      for (const k of ['LISTEN_PID', 'LISTEN_FDS', 'LISTEN_FDNAMES']) {
        if (saved[k] === undefined) delete process.env[k];
        else process.env[k] = saved[k];
      }
    });
    Object.assign(process.env, { LISTEN_PID: String(OTHER_PID), LISTEN_FDS: '1', LISTEN_FDNAMES: 'web' });
    clearListenFdsEnv();
    assert.deepEqual(
      Object.keys(process.env).filter((k) => k.startsWith('LISTEN_')),
      Object.keys(saved).filter(
        (k) => k.startsWith('LISTEN_') && !['LISTEN_PID', 'LISTEN_FDS', 'LISTEN_FDNAMES'].includes(k),
      ),
    );
  });
});

// The activated process: reads the fds, clears the variables, serves `<name> <pid>` on each.
const SERVE = `
import http from 'node:http';
import { clearListenFdsEnv, listenFdsFromEnv } from ${JSON.stringify(pathToFileURL(path.join(ROOT, 'src/daemon/listen-fds.ts')).href)};
const out = (v) => process.stdout.write(JSON.stringify(v) + '\\n');
let fds;
try {
  fds = listenFdsFromEnv();
} catch (err) {
  out({ error: { code: err.code, message: err.message } });
  process.exit(0);
}
clearListenFdsEnv();
const left = Object.keys(process.env).filter((k) => k.startsWith('LISTEN_'));
let pending = fds.length;
if (pending === 0) out({ fds, pid: process.pid, left });
for (const { fd, name } of fds) {
  http.createServer((req, res) => res.end(name + ' ' + process.pid)).listen({ fd }, () => {
    if (--pending === 0) out({ fds, pid: process.pid, left });
  });
}
`;

interface Reply {
  readonly fds?: { fd: number; name: string }[];
  readonly pid?: number;
  readonly left?: string[];
  readonly error?: { code: string; message: string };
}

function scriptDir(t: TestContext): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'baton-listen-fds-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(path.join(dir, 'serve.ts'), SERVE);
  return dir;
}

/**
 * Starts serve.ts as systemd starts a service: `fds` become its fds 3, 4, ..., and LISTEN_PID is
 * its own pid (the shell sets it to its pid, then execs node in its place).
 */
function activate(t: TestContext, dir: string, fds: number[], env: Record<string, string>): ChildProcess {
  const clean = { ...process.env };
  for (const k of ['LISTEN_PID', 'LISTEN_FDS', 'LISTEN_FDNAMES']) delete clean[k];
  const child = spawn(
    'sh',
    ['-c', 'LISTEN_PID=$$ exec "$0" "$@"', process.execPath, '--import', 'tsx', path.join(dir, 'serve.ts')],
    { cwd: ROOT, env: { ...clean, ...env }, stdio: ['ignore', 'pipe', 'pipe', ...fds] },
  );
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return child;
}

/** The child's first line of output, parsed; fails with its stderr when it exits first or is late. */
function firstReply(child: ChildProcess, timeoutMs = 15_000): Promise<Reply> {
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(
      () => reject(new Error(`no answer in ${timeoutMs}ms; stderr: ${err}`)),
      timeoutMs,
    );
    child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const nl = out.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      resolve(JSON.parse(out.slice(0, nl)) as Reply);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`exited with ${code ?? signal} before answering; stderr: ${err}`));
    });
  });
}

/** A listening TCP socket on loopback, and its fd (to pass to a child as systemd would). */
async function listener(t: TestContext): Promise<{ server: net.Server; port: number; fd: number }> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => server.close());
  // Node has no public accessor for a server's fd; its handle has held it (on Unix) for years.
  const fd = (server as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  assert.ok(typeof fd === 'number' && fd > 2, `a listening fd (got ${String(fd)})`);
  return { server, port: (server.address() as AddressInfo).port, fd };
}

async function get(port: number): Promise<string> {
  const res = await request(`http://127.0.0.1:${port}/`, { headersTimeout: 5000, bodyTimeout: 5000 });
  return res.body.text();
}

describe('listenFdsFromEnv: a process started by socket activation', () => {
  it('serves on the fds it was passed, by name, once the process that bound them closed its copies', async (t) => {
    const [web, admin] = [await listener(t), await listener(t)];
    const child = activate(t, scriptDir(t), [web.fd, admin.fd], {
      LISTEN_FDS: '2',
      LISTEN_FDNAMES: 'web:admin',
    });
    // From here only the child holds the sockets: an answer can come from nowhere else.
    await Promise.all([web, admin].map(({ server }) => new Promise((r) => server.close(r))));
    const reply = await firstReply(child);
    assert.deepEqual(reply, {
      fds: [
        { fd: 3, name: 'web' },
        { fd: 4, name: 'admin' },
      ],
      pid: child.pid,
      left: [],
    });
    assert.equal(await get(web.port), `web ${child.pid}`);
    assert.equal(await get(admin.port), `admin ${child.pid}`);
  });

  it('refuses an fd 3 that is not a socket (LISTEN_FDS promises one)', async (t) => {
    const dir = scriptDir(t);
    const file = openSync(path.join(dir, 'serve.ts'), 'r');
    t.after(() => closeSync(file));
    const reply = await firstReply(activate(t, dir, [file], { LISTEN_FDS: '1' }));
    assert.equal(reply.error?.code, 'BATON_E_LISTEN');
    assert.match(
      reply.error?.message ?? '',
      /^LISTEN_FDS=1 promises fd 3 as a socket from systemd, but fd 3 is open but not a socket\. /,
    );
  });
});
