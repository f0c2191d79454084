// `proxy.workers: 2` (issue 16): the data plane and one worker process accept on one listening
// socket, both route the same table (a deploy under load fails nothing: every change is in effect
// in both before anything drains), /metrics sums both, and a worker that dies is started again
// while the other process serves.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import net from 'node:net';
import { before, describe, it, type TestContext } from 'node:test';
import { request } from 'undici';
import { askDataPlane } from '../src/dataplane/connect.js';
import { dataPlanePaths, type DataPlanePaths } from '../src/dataplane/paths.js';
import type { DataPlaneHealth } from '../src/dataplane/process.js';
import { Service } from './helpers/app-daemon.js';
import { dataPlanePids, ensureBuilt } from './helpers/cli.js';
import { deployUnderLoadWithControl } from './helpers/deploy-load.js';
import { startLoad, waitFor } from './helpers/index.js';

const STRATEGY = ['  type: blue-green', '  verify: 200ms', '  keepOld: 0s'];

/** The pids holding an established TCP connection whose local port is `port` (accepted ones). */
function acceptedBy(port: number): Map<number, number> {
  const inodes = new Set<string>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of readFileSync(table, 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      // local_address "0100007F:1F90", st 01 = ESTABLISHED, inode at 9.
      if (f.length > 9 && parseInt(f[1]!.split(':')[1]!, 16) === port && f[3] === '01') inodes.add(f[9]!);
    }
  }
  const owners = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${name}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${name}/fd/${fd}`));
        if (m && inodes.has(m[1]!)) owners.set(Number(name), (owners.get(Number(name)) ?? 0) + 1);
      } catch {
        // Closed meanwhile.
      }
    }
  }
  return owners;
}

async function metricSum(adminPort: number, version: string): Promise<number> {
  const res = await request(`http://127.0.0.1:${adminPort}/metrics`, { reset: true });
  const text = await res.body.text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('baton_requests_total{') && line.includes(`version="${version}"`)) {
      sum += Number(line.split(' ').at(-1));
    }
  }
  return sum;
}

/** A service behind a data plane with one worker, 1.0.0 deployed; its health once both serve. */
async function workersServing(
  t: TestContext,
): Promise<{ svc: Service; paths: DataPlanePaths; dp: DataPlaneHealth }> {
  const svc = await Service.create(t, {
    instances: 2,
    readyTimeout: '15s',
    strategy: STRATEGY,
    extra: ['proxy:', '  workers: 2'],
  });
  await svc.start();
  await svc.deployApi('1.0.0');
  const paths = dataPlanePaths(svc.stateDir);
  const dp = await waitFor(
    async () => {
      const h = await askDataPlane(paths);
      return h?.workers?.length ? h : undefined;
    },
    { timeout: 15_000, what: 'the data plane and its worker' },
  );
  return { svc, paths, dp };
}

describe('proxy.workers (issue 16)', { timeout: 180_000 }, () => {
  before(() => ensureBuilt());

  it('two processes accept on one socket, route the same table through a deploy (0 failed), and /metrics sums them', async (t) => {
    const { svc, dp: health } = await workersServing(t);
    const [worker] = health.workers!;
    assert.ok(worker && worker !== health.pid, JSON.stringify(health));
    const port = Number(new URL(svc.url).port);

    // Both processes take connections: keep-alive connections, one request each, kept open
    // until each process holds at least one (bounded).
    const sockets: net.Socket[] = [];
    t.after(() => sockets.forEach((s) => s.destroy()));
    let owners = new Map<number, number>();
    for (let i = 0; i < 200 && !(owners.has(health.pid) && owners.has(worker)); i++) {
      const s = net.connect(port, '127.0.0.1');
      sockets.push(s);
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.once('data', () => resolve());
        s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
      });
      if (i % 4 === 3) owners = acceptedBy(port);
    }
    owners = acceptedBy(port);
    assert.ok(
      owners.has(health.pid) && owners.has(worker),
      `connections by pid: ${JSON.stringify([...owners])}`,
    );
    sockets.forEach((s) => s.destroy());

    // /metrics counts what both served: exactly the requests sent since it was read.
    const before = await metricSum(svc.adminPort, '1.0.0');
    const counted = startLoad(svc.url, { concurrency: 8, maxRequests: 400, maxMs: 30_000, keepAlive: false });
    await waitFor(() => counted.result.sent >= 400, { timeout: 30_000, what: '400 requests' });
    const c = await counted.stop();
    assert.equal(c.failed, 0, c.failures.join('\n'));
    await waitFor(async () => (await metricSum(svc.adminPort, '1.0.0')) - before === c.ok, {
      what: `baton_requests_total of 1.0.0 to grow by ${c.ok}`,
    });

    // A deploy under load on new and kept-alive connections: nothing fails, on either process;
    // then fresh connections land on both, and all answer 1.0.1 (every process has the table).
    await deployUnderLoadWithControl(t, svc, '1.0.1', 40);
  });

  it('a worker started again gets the changes made while it was starting (the targets API too)', async (t) => {
    const { svc, paths, dp } = await workersServing(t);
    const old = dp.workers![0]!;
    const [a, b] = (await svc.status()).live!.instances.map((i) => `${i.host}:${i.port}`);
    process.kill(old, 'SIGKILL');
    // The new worker process exists (it is loading, not serving yet): change the table now.
    await waitFor(() => dataPlanePids(svc.file).some((p) => p !== dp.pid && p !== old), {
      timeout: 10_000,
      interval: 5,
      what: 'the new worker process',
    });
    const res = await request(`http://127.0.0.1:${svc.adminPort}/v1/targets/${encodeURIComponent(b!)}`, {
      method: 'PATCH',
      reset: true,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ weight: 0 }),
    });
    assert.equal(res.statusCode, 200, await res.body.text());
    await waitFor(async () => (await askDataPlane(paths))?.workers?.some((w) => w !== old), {
      timeout: 15_000,
      what: 'the new worker serving',
    });
    // Every process, the new worker included, sends nothing more to the target of weight 0.
    const count = async (id: string): Promise<number> => {
      const text = await (
        await request(`http://127.0.0.1:${svc.adminPort}/metrics`, { reset: true })
      ).body.text();
      return text
        .split('\n')
        .filter((l) => l.startsWith('baton_requests_total{') && l.includes(`target="${id}"`))
        .reduce((n, l) => n + Number(l.split(' ').at(-1)), 0);
    };
    const before = { a: await count(a!), b: await count(b!) };
    const load = startLoad(svc.url, { concurrency: 4, maxRequests: 200, maxMs: 30_000, keepAlive: false });
    await waitFor(() => load.result.sent >= 200, { timeout: 30_000, what: '200 requests' });
    const r = await load.stop();
    assert.equal(r.failed, 0, r.failures.join('\n'));
    assert.equal(await count(b!), before.b, 'the target of weight 0 got requests');
    assert.equal((await count(a!)) - before.a, r.ok);
  });

  it('a worker that dies is started again; the data plane serves meanwhile (no connection refused)', async (t) => {
    const { svc, paths, dp } = await workersServing(t);
    const first = dp.workers![0]!;
    const load = startLoad(svc.url, { concurrency: 4, maxMs: 60_000, keepAlive: false });
    t.after(() => load.stop());
    await waitFor(() => load.result.ok > 100, { what: 'load' });
    process.kill(first, 'SIGKILL');
    const next = await waitFor(
      async () => {
        const w = (await askDataPlane(paths))?.workers?.[0];
        return w !== undefined && w !== first ? w : undefined;
      },
      { timeout: 15_000, what: 'a new worker' },
    );
    const okAt = load.result.ok;
    await waitFor(() => load.result.ok > okAt + 100, { what: 'answers after the restart' });
    const r = await load.stop();
    const refused = r.failures.filter((f) => f.includes('ECONNREFUSED'));
    t.diagnostic(`sent ${r.sent}, failed ${r.failed}: ${r.failures.slice(0, 3).join('; ')}`);
    assert.deepEqual(refused, []);
    // Only what the killed worker held can have failed: at most the load's 4 requests in flight.
    assert.ok(r.failed <= 4, r.failures.join('\n'));
    assert.notEqual(next, first);
  });
});
