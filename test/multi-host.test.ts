// Multi-host deploys (issue 7): `baton up` with `hosts:` runs the app's instances on three
// servers over real SSH — network namespaces made by the test, each with its own sshd — behind
// two edges kept in step (the built-in proxy and a real nginx). Rolling (one host at a time)
// and blue-green (a port pair per host) under the zero-downtime proof's traffic through both
// edges (keep-alive and new-connection GETs, slow requests, POSTs, streams, WebSockets) fail no
// request; a host cut off mid-deploy fails the deploy cleanly naming it, while GETs through
// both edges keep being answered (0 failed), the previous version serving and no host
// half-switched; an SSH key that is refused fails the deploy naming the host.
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { request } from 'undici';
import { logsWith, Service } from './helpers/app-daemon.js';
import { ensureBuilt, runBaton } from './helpers/cli.js';
import { startLoad, waitFor } from './helpers/index.js';
import type { SshHost } from '../src/drivers/ssh/ssh.js';
import { createHosts, sshHostsUnavailable, type TestHosts } from './helpers/netns.js';
import { startNginx } from './helpers/nginx.js';
import { startProofTraffic } from './helpers/proof.js';
import {
  assertEndedOn,
  assertZeroDowntime,
  deployEach,
  LIGHT_TRAFFIC,
  useProofTimeouts,
  warm,
} from './helpers/proof-suite.js';

const skip = sshHostsUnavailable() ?? false;

async function multiHostService(
  t: TestContext,
  th: TestHosts,
  {
    sshOptions = th.sshOptions,
    strategy,
    proof = false,
    nginxDirectives = [],
    readyTimeout = '15s',
    hosts = th.hosts,
  }: {
    sshOptions?: string[];
    strategy?: string[];
    proof?: boolean;
    nginxDirectives?: string[];
    readyTimeout?: string;
    hosts?: readonly SshHost[];
  } = {},
): Promise<{ svc: Service; nginxUrl: string; withHosts: (hosts: readonly SshHost[]) => void }> {
  ensureBuilt();
  const nginx = await startNginx(t, { locationDirectives: nginxDirectives });
  const nginxUrl = `http://127.0.0.1:${nginx.port}`;
  const edge = {
    lines: ['listen: 127.0.0.1:0', `edges: [{ type: builtin }, ${JSON.stringify(nginx.edgeConfig)}]`],
    url: nginxUrl,
  };
  const svc = await Service.create(t, { readyTimeout: '15s', edge });
  /** (Re)writes baton.yaml with these hosts. */
  const withHosts = (list: readonly SshHost[]): void => {
    svc.configure({
      command: `${svc.defaultCommand} --host 0.0.0.0`,
      readyTimeout,
      app: ['  ports: 18081-18082', '  instancesPerHost: 1'],
      ...(strategy ? { strategy } : {}),
      edge,
      extra: [
        'hosts:',
        ...list.map((h) => `  - ${JSON.stringify(h)}`),
        // The hosts share this machine's disk: their Baton folder in the test's own.
        `ssh: { options: ${JSON.stringify(sshOptions)}, connectTimeout: 3s, remoteDir: ${svc.dir}/remote }`,
      ],
    });
    if (proof) useProofTimeouts(svc);
  };
  withHosts(hosts);
  await svc.start();
  return { svc, nginxUrl, withHosts };
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
  it('rolling then blue-green across the hosts under the proof traffic on both edges: 0 failed', async (t) => {
    const th = (await createHosts(t, 3))!;
    // Blue-green keeps the replaced set 4s (keepOld). Behind nginx, WebSockets opened before the
    // switch stay on that set (nginx's old workers hold them) until it stops and closes them.
    const { svc, nginxUrl } = await multiHostService(t, th, {
      strategy: ['  type: blue-green', '  verify: 200ms', '  keepOld: 4s'],
      proof: true,
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
    const edges = [
      {
        kind: 'builtin' as const,
        traffic: startProofTraffic(svc.daemon.url, { ...LIGHT_TRAFFIC, maxMs: 150_000 }),
      },
      {
        kind: 'nginx' as const,
        traffic: startProofTraffic(nginxUrl, { ...LIGHT_TRAFFIC, maxMs: 150_000 }),
      },
    ];
    t.after(() => Promise.all(edges.map((e) => e.traffic.stop())));
    await Promise.all(edges.map((e) => warm(e.traffic)));
    // Rolling with the defaults (maxSurge 25%: one new instance at a time, then one old out).
    await deployEach(
      svc,
      edges.map((e) => e.traffic),
      [
        ['1.0.1', ['--strategy', 'rolling']],
        ['1.0.2', []],
      ],
      // Each version's instances are spread: one on each host.
      (version) =>
        assert.deepEqual(
          svc
            .state()
            .live!.instances.map((i) => i.host)
            .sort(),
          th.hosts.map((h) => h.address).sort(),
          `${version}: one instance on each host`,
        ),
    );
    // The replaced set stands by for an instant rollback, then stops.
    assert.equal(svc.state().standby?.version, '1.0.1');
    assert.deepEqual(svc.pids('1.0.0'), []);
    await waitFor(() => svc.pids('1.0.1').length === 0, {
      what: 'the 1.0.1 standby to stop',
      timeout: 20_000,
    });
    const since = Date.now();
    for (const e of edges) await assertEndedOn(e.traffic, since, '1.0.2');
    for (const e of edges) {
      t.diagnostic(`through the ${e.kind} edge:`);
      assertZeroDowntime(t, e.kind, await e.traffic.stop());
    }
  });

  it('a host cut off mid-deploy: the deploy fails naming it, GETs through both edges all answered, 1.0.0 serving', async (t) => {
    const th = (await createHosts(t, 3))!;
    // What an nginx in front of several hosts needs anyway: a short connect timeout, and a read
    // timeout after which an idempotent request goes to the next server (proxy_next_upstream's
    // default "error timeout"); nginx's 60s defaults would hold a client that long.
    const { svc, nginxUrl } = await multiHostService(t, th, {
      nginxDirectives: ['proxy_connect_timeout 1s;', 'proxy_read_timeout 3s;'],
      readyTimeout: '6s',
    });
    await svc.deployApi('1.0.0');
    const loads = [
      startLoad(svc.daemon.url, { concurrency: 3, maxMs: 90_000 }),
      startLoad(svc.daemon.url, { concurrency: 2, maxMs: 90_000, keepAlive: false }),
      startLoad(nginxUrl, { concurrency: 3, maxMs: 90_000, retryIdleClose: true }),
      startLoad(nginxUrl, { concurrency: 2, maxMs: 90_000, keepAlive: false }),
    ];
    t.after(() => Promise.all(loads.map((l) => l.stop())));
    await waitFor(() => loads.every((l) => l.result.ok > 20), {
      what: 'load through both edges',
      timeout: 15_000,
    });
    const deploying = svc.deploy('1.0.1', [], 90_000);
    // Cut once 1.0.1 runs on host-2: its readiness then fails, and so does its stop.
    const host2 = th.hosts[1]!.address;
    await waitFor(() => svc.state().deployment?.started.some((r) => r.host === host2) ?? false, {
      what: 'the deploy to start 1.0.1 on host-2',
      timeout: 20_000,
    });
    th.cut(1);
    const cutAt = loads.map((l) => l.result.ok);
    const run = await deploying;
    assert.equal(run.code, 10, run.stdout + run.stderr);
    assert.match(run.done?.message ?? '', /host-2/);
    t.diagnostic(`the deploy: ${run.done?.message}`);
    assert.match(
      run.done?.message ?? '',
      /Nothing answered on 10\.231\.\d+\.12:\d+ from here: the host may be down or cut off/,
    );
    // Still answering with host-2 gone: the others took its share.
    await waitFor(() => loads.every((l, i) => l.result.ok > cutAt[i]! + 20), {
      what: 'load answered with host-2 cut off',
      timeout: 15_000,
    });
    // The 1.0.1 instance on host-2 could not be stopped: kept as an orphan, retried.
    const orphans = (await svc.status()).orphans ?? [];
    assert.deepEqual(
      orphans.map((o) => [o.version, o.host]),
      [['1.0.1', host2]],
    );
    assert.match(
      (await runBaton(t, ['status', '-c', svc.file])).stdout,
      /^orphan +web-1\.0\.1-host-2-\d+ on /m,
    );
    // `baton logs` meanwhile: the other hosts' logs read over SSH, host-2's error in its place.
    const logs = await runBaton(t, ['logs', '-c', svc.file, '-n', '5'], { timeout: 30_000 });
    assert.equal(logs.code, 0, logs.stderr);
    for (const h of ['host-1', 'host-3']) {
      assert.match(
        logs.stdout,
        new RegExp(`==> web-1\\.0\\.0-${h}-18081 .*<==\\napp 1\\.0\\.0 listening on 0\\.0\\.0\\.0:18081`),
      );
    }
    assert.match(logs.stdout, /==> web-1\.0\.0-host-2-18081 .*<==\n\(cannot read it: host host-2 /);
    th.restore(1);
    // Both edges back on 1.0.0 alone, on every host: nothing half-switched.
    await waitFor(async () => (await served(svc.daemon.url)).join() === '1.0.0', {
      what: '1.0.0 through the built-in edge',
      timeout: 15_000,
    });
    assert.deepEqual(await served(nginxUrl), ['1.0.0']);
    // Once host-2 answers again, the orphan is stopped.
    await waitFor(() => svc.pids('1.0.1').length === 0, {
      what: 'no 1.0.1 left on any host',
      timeout: 20_000,
    });
    await waitFor(async () => ((await svc.status()).orphans ?? []).length === 0, { what: 'no orphan left' });
    assert.deepEqual(svc.state().orphans, []);
    assert.equal(svc.state().live?.version, '1.0.0');
    const results = await Promise.all(loads.map((l) => l.stop()));
    const names = [
      'built-in keep-alive',
      'built-in new connections',
      'nginx keep-alive',
      'nginx new connections',
    ];
    for (const [i, r] of results.entries()) {
      t.diagnostic(`${names[i]}: ${r.ok} answered, ${r.failed} failed, ${r.idleCloses} idle closes retried`);
    }
    for (const [i, r] of results.entries()) {
      assert.equal(r.failed, 0, `${names[i]}: ${r.failures.join('; ')}`);
    }
  });

  it("baton up restarts while a host is cut off: serves from the others, stops that host's instance once it is back", async (t) => {
    const th = (await createHosts(t, 3))!;
    const { svc, nginxUrl } = await multiHostService(t, th, { readyTimeout: '6s' });
    await svc.deployApi('1.0.0');
    const host2 = th.hosts[1]!.address;
    const left = svc.state().live!.instances.find((i) => i.host === host2)!;
    svc.daemon.child.kill('SIGKILL');
    await svc.daemon.exited;
    th.cut(1);
    await svc.start();
    // Recovery adopts host-1's and host-3's; host-2's does not answer: an orphan, replaced.
    await waitFor(async () => (await svc.status()).orphans?.some((o) => o.id === left.id), {
      what: `${left.id} kept as an orphan`,
      timeout: 30_000,
    });
    await waitFor(
      () => {
        const live = svc.state().live?.instances ?? [];
        return live.length === 3 && live.every((i) => i.host !== host2);
      },
      { what: 'three live instances, none on host-2', timeout: 30_000 },
    );
    assert.deepEqual(await served(svc.daemon.url), ['1.0.0']);
    assert.deepEqual(await served(nginxUrl), ['1.0.0']);
    assert.ok(svc.pids('1.0.0').includes(left.pid), 'still running on the cut host');
    th.restore(1);
    await waitFor(() => !svc.pids('1.0.0').includes(left.pid), {
      what: `${left.id} stopped once host-2 answers`,
      timeout: 20_000,
    });
    await waitFor(async () => ((await svc.status()).orphans ?? []).length === 0, { what: 'no orphan left' });
    assert.equal(svc.pids('1.0.0').length, 3);
  });

  it('SIGHUP with a host added and one removed: the next deploy moves onto them under load, 0 failed', async (t) => {
    const th = (await createHosts(t, 3))!;
    const [h1, h2, h3] = th.hosts as [SshHost, SshHost, SshHost];
    const { svc, nginxUrl, withHosts } = await multiHostService(t, th, { hosts: [h1, h2] });
    await svc.deployApi('1.0.0');
    const onHosts = (): string[] =>
      svc
        .state()
        .live!.instances.map((i) => `${i.version}@${i.host}`)
        .sort();
    assert.deepEqual(onHosts(), [`1.0.0@${h1.address}`, `1.0.0@${h2.address}`]);
    const loads = [
      startLoad(svc.daemon.url, { concurrency: 2, maxMs: 60_000 }),
      startLoad(nginxUrl, { concurrency: 2, maxMs: 60_000, retryIdleClose: true }),
    ];
    t.after(() => Promise.all(loads.map((l) => l.stop())));
    // host-1 leaves (its instance keeps serving until the deploy), host-3 joins.
    withHosts([h2, h3]);
    svc.daemon.child.kill('SIGHUP');
    await waitFor(() => logsWith(svc.daemon, /^config reloaded/).length > 0, { what: 'the reload' });
    const run = await svc.deploy('1.0.1', [], 60_000);
    assert.equal(run.done?.result, 'succeeded', `${run.stdout}\n${run.stderr}`);
    assert.deepEqual(onHosts(), [`1.0.1@${h2.address}`, `1.0.1@${h3.address}`].sort());
    // The replaced set is gone everywhere, host-1 included: stopped through its record.
    await svc.noneLeft('1.0.0', 15_000);
    assert.deepEqual(await served(svc.daemon.url), ['1.0.1']);
    assert.deepEqual(await served(nginxUrl), ['1.0.1']);
    const results = await Promise.all(loads.map((l) => l.stop()));
    for (const [i, r] of results.entries()) {
      assert.ok(r.ok > 20, `load ${i} ran: ${r.ok}`);
      assert.equal(r.failed, 0, `load ${i}: ${r.failures.join('; ')}`);
    }
  });

  it('canary on a chosen host: one canary instance on host-3 at 30%, then promoted onto all, 0 failed', async (t) => {
    const th = (await createHosts(t, 3))!;
    const { svc, nginxUrl } = await multiHostService(t, th, {
      strategy: [
        '  type: canary',
        '  canaryInstances: 1',
        '  hosts: [host-3]',
        '  steps: [{ setWeight: 30 }, { pause: 1s }]',
        '  analysis: { interval: 300ms, failureLimit: 1, minRequests: 3, successRate: 100 }',
      ],
    });
    await svc.deployApi('1.0.0');
    const loads = [
      startLoad(svc.daemon.url, { concurrency: 2, maxMs: 60_000 }),
      startLoad(nginxUrl, { concurrency: 2, maxMs: 60_000, retryIdleClose: true }),
    ];
    t.after(() => Promise.all(loads.map((l) => l.stop())));
    const deploying = svc.deploy('1.0.1', [], 60_000);
    // While the canary holds: three stable instances, one canary, on one of the hosts.
    const during = await waitFor(
      async () => {
        const st = await svc.status();
        return st.deployment?.step === 'paused' ? st : null;
      },
      { what: 'the canary step', timeout: 30_000 },
    );
    const canaries = during.live!.instances.filter((i) => i.version === '1.0.1');
    assert.equal(canaries.length, 1, JSON.stringify(during.live));
    // Where the config put it (by count alone, host-1 would have come first).
    assert.equal(canaries[0]!.host, th.hosts[2]!.address);
    assert.equal(during.live!.instances.filter((i) => i.version === '1.0.0').length, 3);
    const run = await deploying;
    assert.equal(run.done?.result, 'succeeded', `${run.stdout}\n${run.stderr}`);
    assert.deepEqual(
      svc
        .state()
        .live!.instances.map((i) => `${i.version}@${i.host}`)
        .sort(),
      th.hosts.map((h) => `1.0.1@${h.address}`).sort(),
      'promoted: one 1.0.1 instance on each host',
    );
    await svc.noneLeft('1.0.0', 15_000);
    const results = await Promise.all(loads.map((l) => l.stop()));
    for (const [i, r] of results.entries()) {
      assert.ok(
        (r.byBody.get('1.0.1\n') ?? 0) > 0 && (r.byBody.get('1.0.0\n') ?? 0) > 0,
        `load ${i} saw both`,
      );
      assert.equal(r.failed, 0, `load ${i}: ${r.failures.join('; ')}`);
    }
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
