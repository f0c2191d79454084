// examples/nginx-blue-green/run.sh, the one-command example: a real nginx, `baton up` driving it,
// 1.0.0 deployed, then 1.0.1 deployed under load through nginx. It exits 0, the clients saw both
// versions and no failure, 1.0.1 is live, and nothing it started is left: no process that carries
// its temp folder (in the command line or the environment), none of its nginx workers, no port
// still taken, no temp folder.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { it } from 'node:test';
import { canListen, ensureBuilt, freePort, tempDir } from './helpers/cli.js';
import { connects, ROOT } from './helpers/index.js';
import { NGINX } from './helpers/nginx.js';

const RUN_SH = path.join(ROOT, 'examples/nginx-blue-green/run.sh');
const RUN_TIMEOUT_MS = 90_000;
const TERM_GRACE_MS = 30_000;

/** Two consecutive ports free right now on 127.0.0.1 (app.ports is a range). */
async function freePortPair(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const p = await freePort();
    if (p < 65535 && (await canListen(p + 1))) return p;
  }
  throw new Error('no two consecutive free ports found');
}

function readProc(pid: string, file: string): string {
  try {
    return readFileSync(`/proc/${pid}/${file}`, 'utf8');
  } catch {
    return ''; // gone, or not ours to read
  }
}

/** Processes (other than this one) whose command line or environment mentions `dir`. */
function processesMentioning(dir: string): string[] {
  return readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e) && Number(e) !== process.pid)
    .filter((pid) => readProc(pid, 'cmdline').includes(dir) || readProc(pid, 'environ').includes(dir))
    .map((pid) => `${pid}: ${readProc(pid, 'cmdline').replace(/\0/g, ' ')}`);
}

/**
 * An nginx process of the run (its master's command line names `dir`) still runs under this pid.
 * pids are reused (pid_max can be 32768): an nginx of another live master is not ours.
 */
function nginxLeft(pid: number, dir: string): boolean {
  const cmd = readProc(String(pid), 'cmdline');
  if (cmd.startsWith('nginx: master')) return cmd.includes(dir);
  if (!cmd.startsWith('nginx: worker')) return false;
  const stat = readProc(String(pid), 'stat');
  const parent = readProc(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1] ?? '', 'cmdline');
  // A worker left by a master that is gone, or one of our master's.
  return !parent.startsWith('nginx: master') || parent.includes(dir);
}

it('examples/nginx-blue-green/run.sh: 1.0.0 -> 1.0.1 behind a real nginx under load, 0 failed, nothing left', async (t) => {
  if (!existsSync(NGINX)) return t.skip(`needs nginx at ${NGINX}`);
  ensureBuilt();
  // The script's temp folder goes in here: every process it starts carries this path.
  const tmp = tempDir(t);
  const nginxPort = await freePort();
  const adminPort = await freePort();
  const appPort = await freePortPair();
  const started = Date.now();
  // From another folder: the script finds the repository on its own.
  const child = spawn('bash', [RUN_SH], {
    cwd: tmp,
    env: {
      ...process.env,
      TMPDIR: tmp,
      NGINX_PORT: String(nginxPort),
      ADMIN_PORT: String(adminPort),
      APP_PORTS: `${appPort}-${appPort + 1}`,
      // The script's own 8s: the load must outlast the deploy's switch (about 2s after it
      // starts) also on a busy machine, where a 4s load sometimes ended before it.
      LOAD_DURATION: '8s',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  // Over time: SIGTERM lets the script's trap stop what it started; SIGKILL if even that hangs.
  const term = setTimeout(() => child.kill('SIGTERM'), RUN_TIMEOUT_MS);
  const kill = setTimeout(() => child.kill('SIGKILL'), RUN_TIMEOUT_MS + TERM_GRACE_MS);
  t.after(() => {
    clearTimeout(term);
    clearTimeout(kill);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const code = await exited;
  const output = `${stdout}\n${stderr}`;
  t.diagnostic(`run.sh took ${Date.now() - started}ms`);
  assert.equal(code, 0, output);

  // The load ran across the switch and every request got an answer.
  const load = /^load http:\/\/127\.0\.0\.1:(\d+)\/: .*\n(?: {2}.*\n)+/m.exec(stdout);
  assert.ok(load, `a load summary in:\n${output}`);
  assert.equal(Number(load[1]), nginxPort, 'the load went through nginx');
  const summary = load[0];
  const sent = Number(/sent (\d+)/.exec(summary)?.[1]);
  assert.ok(sent >= 100, summary);
  assert.match(summary, /\bfailed 0 \(0\.00%\)/);
  assert.match(summary, /result {5}0 failed requests/);
  assert.match(summary, /versions .*1\.0\.0 /, 'the load saw 1.0.0 before the switch');
  assert.match(summary, /versions .*1\.0\.1 /, 'and 1.0.1 after it');

  // 1.0.1 is live: in the upstream file, through nginx, and in baton status.
  assert.match(stdout, new RegExp(`web\\.upstream\\.conf: server 127\\.0\\.0\\.1:${appPort + 1} `));
  assert.match(stdout, new RegExp(`GET http://127\\.0\\.0\\.1:${nginxPort}/ -> 200 1\\.0\\.1$`, 'm'));
  assert.match(stdout, /^live\s+1\.0\.1$/m);
  assert.match(stdout, /baton up exited 0/);
  assert.match(stdout, /==> OK: /);

  // Nothing left: processes, nginx workers (retitled, so found by the pids the script printed),
  // ports, the temp folder.
  assert.deepEqual(processesMentioning(tmp), []);
  const nginxPids = /master (\d+), workers ([\d ]+)/.exec(stdout);
  assert.ok(nginxPids, stdout);
  const pids = [nginxPids[1]!, ...nginxPids[2]!.trim().split(/\s+/)].map(Number);
  assert.equal(pids.length, 3, 'the master and its 2 workers');
  assert.deepEqual(
    pids.filter((pid) => nginxLeft(pid, tmp)),
    [],
    'no nginx process of the run is left',
  );
  for (const port of [nginxPort, adminPort, appPort, appPort + 1]) {
    assert.equal(await connects(port), false, `nothing listens on ${port} any more`);
  }
  assert.deepEqual(readdirSync(tmp), [], 'the temp folder is removed');
});
