// The nginx edge on another machine (`edge: { type: nginx, host: ... }`), driven over SSH: a
// load balancer host running nginx and two app hosts, each a network namespace with its own
// sshd (helpers/netns.ts). Baton writes the upstream file there, runs `nginx -t` and the reload
// there, and confirms the new worker generation from that host's /proc. Rolling and blue-green
// under the proof's traffic through that nginx fail nothing; nginx stopped there fails a deploy
// naming the host, and a refused key stops `baton up` with exit 14.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it, type TestContext } from 'node:test';
import { Service } from './helpers/app-daemon.js';
import { ensureBuilt } from './helpers/cli.js';
import { createHosts, sshHostsUnavailable, type TestHosts } from './helpers/netns.js';
import { startNginx, type NginxProcess } from './helpers/nginx.js';
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

/** nginx on host-1 (the load balancer), the app on host-2 and host-3, Baton here. */
async function remoteNginxService(
  t: TestContext,
  th: TestHosts,
  sshOptions = th.sshOptions,
): Promise<{ svc: Service; nginx: NginxProcess; url: string }> {
  ensureBuilt();
  const lb = th.hosts[0]!;
  const nginx = await startNginx(t, { netns: { name: th.namespaces[0]!, address: lb.address } });
  const url = `http://${lb.address}:${nginx.port}`;
  const edge = { ...nginx.edgeConfig, host: `root@${lb.address}` };
  const svc = await Service.create(t);
  svc.configure({
    command: `${svc.defaultCommand} --host 0.0.0.0`,
    readyTimeout: '15s',
    app: ['  ports: 18081-18082', '  instancesPerHost: 1'],
    strategy: ['  type: blue-green', '  verify: 200ms', '  keepOld: 0s'],
    edge: { lines: [`edge: ${JSON.stringify(edge)}`], url },
    extra: [
      'hosts:',
      ...th.hosts.slice(1).map((h) => `  - ${JSON.stringify(h)}`),
      `ssh: { options: ${JSON.stringify(sshOptions)}, connectTimeout: 3s, remoteDir: ${svc.dir}/remote }`,
    ],
  });
  useProofTimeouts(svc);
  return { svc, nginx, url };
}

describe('the nginx edge on another machine, over SSH', { skip }, () => {
  it('rolling and blue-green under the proof traffic through the remote nginx: 0 failed', async (t) => {
    const th = (await createHosts(t, 3))!;
    const { svc, nginx, url } = await remoteNginxService(t, th);
    const d = await svc.start();
    // Driven over SSH: the edge names the load balancer.
    const ready = d.logs().find((l) => l.msg === 'edge ready');
    assert.match(String(ready?.edge), /^nginx on root@10\.231\.\d+\.\d+ \(\/.+\.upstream\.conf\)$/);
    await svc.deployApi('1.0.0');
    const traffic = startProofTraffic(url, { ...LIGHT_TRAFFIC, maxMs: 120_000 });
    t.after(() => traffic.stop());
    await warm(traffic);
    await deployEach(
      svc,
      [traffic],
      [
        ['1.0.1', ['--strategy', 'rolling']],
        ['1.0.2', []],
      ],
    );
    const since = Date.now();
    await assertEndedOn(traffic, since, '1.0.2');
    assertZeroDowntime(t, 'nginx', await traffic.stop());
    // The file on the load balancer lists the app hosts' 1.0.2 instances, nothing else.
    const file = readFileSync(nginx.upstreamFile, 'utf8');
    const servers = [...file.matchAll(/^\s*server (\S+)/gm)].map((m) => m[1]!).sort();
    const live = svc
      .state()
      .live!.instances.map((i) => `${i.host}:${i.port}`)
      .sort();
    assert.deepEqual(servers, live, file);
    assert.deepEqual(
      live.map((a) => a.split(':')[0]),
      th.hosts.slice(1).map((h) => h.address),
    );
  });

  it('nginx stopped there: the deploy fails (exit 14) naming the host; a refused key: baton up exits 14', async (t) => {
    const th = (await createHosts(t, 3))!;
    const { svc, nginx } = await remoteNginxService(t, th);
    await svc.start();
    await svc.deployApi('1.0.0');
    await nginx.stop();
    const run = await svc.deploy('1.0.1', [], 60_000);
    assert.equal(run.code, 14, run.stdout + run.stderr);
    assert.match(
      run.done?.message ?? '',
      new RegExp(`nginx is not running on root@${th.hosts[0]!.address.replace(/\./g, '\\.')} \\(pid file `),
    );
    await svc.noneLeft('1.0.1', 10_000);

    const refused = await remoteNginxService(t, th, th.badKeyOptions);
    await assert.rejects(refused.svc.start(), (err: Error) => {
      assert.match(err.message, /exited early \(14\)/);
      assert.match(err.message, /cannot drive nginx on root@[\d.]+: cannot log in .*Permission denied/s);
      return true;
    });
  });
});
