// `baton hosts check` against real SSH hosts in network namespaces (see helpers/netns.ts): a
// ready host passes every check; a host whose app ports are taken, one cut off, one that refuses
// the key, and an app command that is not installed each fail with what to do, exit 15.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, it, type TestContext } from 'node:test';
import { Service } from './helpers/app-daemon.js';
import { ensureBuilt, runBaton } from './helpers/cli.js';
import { waitFor } from './helpers/index.js';
import { createHosts, sshHostsUnavailable, type TestHosts } from './helpers/netns.js';

const skip = sshHostsUnavailable() ?? false;

async function hostsService(
  t: TestContext,
  th: TestHosts,
  { command, sshOptions = th.sshOptions }: { command?: string; sshOptions?: string[] } = {},
): Promise<Service> {
  ensureBuilt();
  const svc = await Service.create(t);
  svc.configure({
    command: command ?? `${svc.defaultCommand} --host 0.0.0.0`,
    app: ['  ports: 18081-18082', '  instancesPerHost: 1', '  cwd: /tmp'],
    extra: [
      'hosts:',
      ...th.hosts.map((h) => `  - ${JSON.stringify(h)}`),
      `ssh: { options: ${JSON.stringify(sshOptions)}, connectTimeout: 2s, remoteDir: ${svc.dir}/remote }`,
    ],
  });
  return svc;
}

/** Something else listening on `ports` inside host i's namespace, until the test ends. */
async function occupy(t: TestContext, th: TestHosts, i: number, ports: number[]): Promise<void> {
  const code = `const net=require('net');for(const p of ${JSON.stringify(ports)})net.createServer().listen(p,'0.0.0.0',()=>console.log('up',p));`;
  const child = spawn('ip', ['netns', 'exec', th.namespaces[i]!, process.execPath, '-e', code], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  t.after(() => {
    child.kill('SIGKILL');
  });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  await waitFor(() => ports.every((p) => out.includes(`up ${p}`)), {
    what: `ports ${ports.join(', ')} taken`,
  });
}

/** The check lines of one host's block: name → "status detail". */
function block(stdout: string, host: string): Map<string, string> {
  const lines = stdout.split('\n');
  const at = lines.findIndex((l) => l.startsWith(`${host} (`));
  assert.ok(at >= 0, `a block for ${host}:\n${stdout}`);
  const checks = new Map<string, string>();
  for (const l of lines.slice(at + 1)) {
    const m = /^ {2}(ok|warn|FAIL|skip) +(\S+) +(.*)$/.exec(l);
    if (!m) break;
    checks.set(m[2]!, `${m[1]} ${m[3]}`);
  }
  return checks;
}

describe('baton hosts check', { skip }, () => {
  it('a ready host passes; taken ports, a host cut off and a missing command fail with exit 15', async (t) => {
    const th = (await createHosts(t, 3))!;
    const svc = await hostsService(t, th);
    await occupy(t, th, 1, [18081, 18082]);
    th.cut(2);

    const run = await runBaton(t, ['hosts', 'check', '-c', svc.file], { timeout: 30_000 });
    assert.equal(run.code, 15, `${run.stdout}\n${run.stderr}`);
    for (const l of run.stdout.trimEnd().split('\n')) t.diagnostic(l);
    assert.match(run.stderr, /2 of 3 hosts not ready: host-2, host-3/);
    assert.match(run.stdout, /^host-1 \(root@10\.231\.\d+\.11:22\): ready$/m);
    const h1 = block(run.stdout, 'host-1');
    assert.deepEqual([...h1.keys()], ['ssh', 'clock', 'tools', 'cwd', 'command', 'folder', 'disk', 'ports']);
    for (const [name, line] of h1) assert.match(line, /^ok /, `host-1 ${name}: ${line}`);
    // The hosts share this machine's clock: no skew beyond the round trip.
    assert.match(h1.get('clock')!, /^ok [+-]0\.0\d\ds from this machine/);
    assert.match(
      h1.get('command')!,
      new RegExp(`node: ${process.execPath.replace(/[/.]/g, '\\$&')}|node: /`),
    );
    assert.match(h1.get('ports')!, /^ok 18081-18082: 2 free/);

    const h2 = block(run.stdout, 'host-2');
    assert.match(h2.get('ssh')!, /^ok /);
    assert.match(h2.get('ports')!, /^FAIL 18081-18082: 0 free, in use: 18081, 18082; a deploy needs 1 free/);

    const h3 = block(run.stdout, 'host-3');
    assert.deepEqual([...h3.keys()], ['ssh']);
    assert.match(h3.get('ssh')!, /^FAIL (unreachable|timeout): host host-3 \(root@10\.231\.\d+\.13:22\)/);

    // Only host-1, as JSON: ready, exit 0.
    const one = await runBaton(t, ['hosts', 'check', '-c', svc.file, '--host', 'host-1', '--json']);
    assert.equal(one.code, 0, one.stderr);
    const json = JSON.parse(one.stdout) as { ok: boolean; hosts: { host: string; ok: boolean }[] };
    assert.deepEqual(
      json.hosts.map((h) => [h.host, h.ok]),
      [['host-1', true]],
    );
    assert.equal(json.ok, true);

    // An app command that is not installed there.
    svc.configure({
      command: '/opt/no-such-app/bin/server --port {port}',
      app: ['  ports: 18081-18082', '  instancesPerHost: 1'],
      extra: [
        'hosts:',
        ...th.hosts.map((h) => `  - ${JSON.stringify(h)}`),
        `ssh: { options: ${JSON.stringify(th.sshOptions)}, connectTimeout: 2s, remoteDir: ${svc.dir}/remote }`,
      ],
    });
    const missing = await runBaton(t, ['hosts', 'check', '-c', svc.file, '--host', 'host-1']);
    assert.equal(missing.code, 15, missing.stdout);
    assert.match(
      block(missing.stdout, 'host-1').get('command')!,
      /^FAIL \/opt\/no-such-app\/bin\/server not found \(app\.command; PATH=/,
    );
  });

  it('a key the hosts refuse: the ssh check fails naming the host and "Permission denied"', async (t) => {
    const th = (await createHosts(t, 1))!;
    const svc = await hostsService(t, th, { sshOptions: th.badKeyOptions });
    const run = await runBaton(t, ['hosts', 'check', '-c', svc.file]);
    assert.equal(run.code, 15, run.stdout);
    assert.match(
      block(run.stdout, 'host-1').get('ssh')!,
      /^FAIL auth: cannot log in to host host-1 .*Permission denied/,
    );
  });
});

describe('baton hosts check without hosts', () => {
  it('says there is nothing to check (exit 2)', async (t) => {
    ensureBuilt();
    const svc = await Service.create(t);
    const run = await runBaton(t, ['hosts', 'check', '-c', svc.file]);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /has no hosts: section/);
  });
});
