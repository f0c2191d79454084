// Multi-host deploys (issue 7): `baton up` with `hosts:` runs the app's instances on three
// servers over real SSH — network namespaces made by the test, each with its own sshd — behind
// two edges kept in step (the built-in proxy and a real nginx). Rolling (one host at a time)
// and blue-green (a port pair per host) under load through both edges fail no request; a host
// cut off mid-deploy and an SSH key that is refused fail the deploy cleanly, with the previous
// version serving and no host half-switched.
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { request } from 'undici';
import { Service } from './helpers/app-daemon.js';
import { ensureBuilt } from './helpers/cli.js';
import { startLoad, waitFor } from './helpers/index.js';
import { createHosts, sshHostsUnavailable, type TestHosts } from './helpers/netns.js';
import { startNginx } from './helpers/nginx.js';

const skip = sshHostsUnavailable() ?? false;

async function multiHostService(
  t: TestContext,
  th: TestHosts,
  { sshOptions = th.sshOptions, strategy }: { sshOptions?: string[]; strategy?: string[] } = {},
): Promise<{ svc: Service; nginxUrl: string }> {
  ensureBuilt();
  const nginx = await startNginx(t);
  const nginxUrl = `http://127.0.0.1:${nginx.port}`;
  const svc = await Service.create(t, {
    readyTimeout: '15s',
    edge: {
      lines: ['listen: 127.0.0.1:0', `edges: [{ type: builtin }, ${JSON.stringify(nginx.edgeConfig)}]`],
      url: nginxUrl,
    },
  });
  const hosts = th.hosts.map((h) => `  - ${JSON.stringify(h)}`);
  svc.configure({
    command: `${svc.defaultCommand} --host 0.0.0.0`,
    readyTimeout: '15s',
    app: ['  ports: 18081-18082', '  instancesPerHost: 1'],
    ...(strategy ? { strategy } : {}),
    edge: {
      lines: ['listen: 127.0.0.1:0', `edges: [{ type: builtin }, ${JSON.stringify(nginx.edgeConfig)}]`],
      url: nginxUrl,
    },
    extra: [
      'hosts:',
      ...hosts,
      // The hosts share this machine's disk: their Baton folder in the test's own.
      `ssh: { options: ${JSON.stringify(sshOptions)}, connectTimeout: 3s, remoteDir: ${svc.dir}/remote }`,
    ],
  });
  await svc.start();
  return { svc, nginxUrl };
}

/** The versions answering through an edge, on new connections. */
async function served(url: string, n = 12): Promise<string[]> {
  const seen = new Set<string>();
  for (let i = 0; i < n; i++) {
    const res = await request(url, { reset: true, headersTimeout: 5000 });
    const body = (await res.body.text()).trim();
    if (res.statusCode !== 200) throw new Error(`${url} answered ${res.statusCode}: ${body}`);
    seen.add(body);
  }
  return [...seen].sort();
}

describe('multi-host: three SSH hosts, two edges', { skip }, () => {
  it('rolling then blue-green across the hosts under load on both edges: 0 failed', async (t) => {
    const th = (await createHosts(t, 3))!;
    const { svc, nginxUrl } = await multiHostService(t, th, {
      strategy: ['  type: rolling', '  maxSurge: 0', '  maxUnavailable: 1'],
    });
    await svc.deployApi('1.0.0').catch((err: unknown) => {
      throw new Error(`${String(err)}\n${svc.daemon.stdout().slice(-6000)}`);
    });
    const live = svc.state().live!;
    assert.deepEqual(
      live.instances.map((i) => i.host).sort(),
      th.hosts.map((h) => h.address).sort(),
      'one instance on each host',
    );
    const loads = [
      startLoad(svc.daemon.url, { concurrency: 3, maxMs: 90_000, retryIdleClose: true }),
      startLoad(nginxUrl, { concurrency: 3, maxMs: 90_000, keepAlive: false }),
      startLoad(nginxUrl, { concurrency: 2, maxMs: 90_000, retryIdleClose: true }),
    ];
    try {
      await waitFor(() => loads.every((l) => l.result.ok > 20), {
        what: 'load through both edges',
        timeout: 15_000,
      });
      const rolling = await svc.deploy('1.0.1', [], 90_000);
      assert.equal(rolling.done?.result, 'succeeded', rolling.stdout + rolling.stderr);
      const blueGreen = await svc.deploy('1.0.2', ['--strategy', 'blue-green'], 90_000);
      assert.equal(blueGreen.done?.result, 'succeeded', blueGreen.stdout + blueGreen.stderr);
    } finally {
      await Promise.all(loads.map((l) => l.stop()));
    }
    for (const [i, l] of loads.entries()) {
      assert.ok(l.result.ok > 50, `load ${i} ran: ${l.result.ok}`);
      assert.equal(l.result.failed, 0, `load ${i}: ${l.result.failures.join('; ')}`);
    }
    assert.equal(loads[0]!.result.idleCloses, 0, 'the built-in edge closed no idle connection');
    t.diagnostic(`nginx keep-alive idle closes retried: ${loads[2]!.result.idleCloses}`);
    assert.deepEqual(await served(svc.daemon.url), ['1.0.2']);
    assert.deepEqual(await served(nginxUrl), ['1.0.2']);
    const after = svc.state().live!;
    assert.deepEqual(after.instances.map((i) => i.host).sort(), th.hosts.map((h) => h.address).sort());
    assert.deepEqual(svc.pids('1.0.0'), []);
    // Blue-green keeps the replaced set running (keepOld) for an instant rollback.
    assert.equal(svc.state().standby?.version, '1.0.1');
    assert.equal(svc.pids('1.0.1').length, 3);
  });

  it('a host cut off mid-deploy: the deploy fails naming it, the others keep serving 1.0.0', async (t) => {
    const th = (await createHosts(t, 3))!;
    const { svc, nginxUrl } = await multiHostService(t, th);
    await svc.deployApi('1.0.0');
    const deploying = svc.deploy('1.0.1', [], 90_000);
    await waitFor(() => svc.pids('1.0.1').length > 0, {
      what: 'the deploy to start instances',
      timeout: 20_000,
    });
    th.cut(1);
    const run = await deploying;
    assert.equal(run.code, 10, run.stdout + run.stderr);
    assert.match(run.done?.message ?? '', /host-2/);
    th.restore(1);
    // Both edges back on 1.0.0 alone, on every host: nothing half-switched.
    await waitFor(async () => (await served(svc.daemon.url)).join() === '1.0.0', {
      what: '1.0.0 through the built-in edge',
      timeout: 15_000,
    });
    assert.deepEqual(await served(nginxUrl), ['1.0.0']);
    await waitFor(() => svc.pids('1.0.1').length === 0, {
      what: 'no 1.0.1 left on any host',
      timeout: 20_000,
    });
    assert.equal(svc.state().live?.version, '1.0.0');
  });

  it('an SSH key the hosts refuse: the deploy fails naming the host and "Permission denied"', async (t) => {
    const th = (await createHosts(t, 2))!;
    const { svc } = await multiHostService(t, th, { sshOptions: th.badKeyOptions });
    const run = await svc.deploy('1.0.0', [], 60_000);
    assert.equal(run.code, 10, run.stdout + run.stderr);
    assert.match(run.done?.message ?? '', /host-\d/);
    assert.match(run.done?.message ?? '', /Permission denied/);
    assert.deepEqual(svc.pids(), []);
  });
});
