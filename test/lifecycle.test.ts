// Issue 14: Baton's own restart and crash are not an outage. The built-in proxy runs in a data
// plane process of its own and the instances in their own process groups; `baton up` (the
// controller) can be stopped, killed mid-deploy and started again while the proof's traffic
// (keep-alive, new connections, slow requests, checked POSTs, streams, WebSockets) runs: 0
// failed, 0 refused, the same processes serving. Only `baton down` stops the service; the
// control case (`--stop-on-exit`, the behaviour before) shows the same check sees failures.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { before, describe, it, type TestContext } from 'node:test';
import { bootId, identityOf } from '../src/drivers/local/proc.js';
import { Service } from './helpers/app-daemon.js';
import { dataPlanePids, ensureBuilt, runBaton } from './helpers/cli.js';
import { waitFor } from './helpers/index.js';
import { summarize } from './helpers/proof.js';
import { assertZeroDowntime, proofService, type EdgeKind } from './helpers/proof-suite.js';
import { BLUE_GREEN, restartTraffic, servedWithoutController, stopController } from './helpers/lifecycle.js';

async function restartUnderLoad(t: TestContext, edge: EdgeKind): Promise<void> {
  const svc = await proofService(t, edge, { instances: 2, strategy: BLUE_GREEN });
  const instances = svc.pids('1.0.0');
  assert.equal(instances.length, 2);
  const dataPlanes = dataPlanePids(svc.file);
  assert.equal(dataPlanes.length, edge === 'builtin' ? 1 : 0, 'a data plane only for the built-in edge');
  const tr = restartTraffic(t, svc.url);
  await tr.waitForEach(0, 2, 15_000);

  tr.phase('SIGTERM');
  await stopController(svc, 'SIGTERM');
  tr.phase('no controller');
  await servedWithoutController(tr);
  assert.deepEqual(svc.pids('1.0.0'), instances, 'the instances kept running');
  assert.deepEqual(dataPlanePids(svc.file), dataPlanes, 'the data plane kept running');

  tr.phase('restart');
  const d2 = await svc.start();
  await waitFor(async () => (await svc.status()).live?.version === '1.0.0', {
    what: 'the restarted controller to adopt 1.0.0',
  });
  assert.deepEqual(svc.pids('1.0.0'), instances, 'the same instances, adopted');
  assert.deepEqual(dataPlanePids(svc.file), dataPlanes, 'the same data plane, adopted');
  if (edge === 'builtin') assert.ok(d2.logs().some((l) => l.msg === 'data plane adopted'));

  tr.phase('deploy after');
  const run = await svc.deploy('1.0.1', [], 60_000);
  assert.equal(run.done?.result, 'succeeded', `${run.stdout}\n${run.stderr}`);
  await tr.waitForEach(Date.now(), 2, 15_000);
  tr.phase('stopping');
  assertZeroDowntime(t, edge, await tr.stop());
}

describe('baton up restarts without downtime (issue 14)', { timeout: 240_000 }, () => {
  before(() => ensureBuilt());

  for (const edge of ['builtin', 'nginx', 'haproxy'] as const) {
    it(`SIGTERM and start again (systemctl restart), ${edge} edge: 0 failed, the same processes`, async (t) => {
      await restartUnderLoad(t, edge);
    });
  }

  it('control: with --stop-on-exit the same restart is an outage, which the check sees', async (t) => {
    const svc = await Service.create(t, { instances: 2, readyTimeout: '15s', strategy: BLUE_GREEN });
    await svc.start({}, ['--stop-on-exit']);
    await svc.deployApi('1.0.0');
    const tr = restartTraffic(t, svc.url);
    await tr.waitForEach(0, 2, 15_000);
    await stopController(svc, 'SIGTERM');
    assert.deepEqual(svc.pids(), [], 'the instances were stopped with it');
    assert.deepEqual(dataPlanePids(svc.file), [], 'the data plane too');
    const start = Date.now();
    await waitFor(() => Date.now() - start >= 1000, { what: '1s without a proxy' });
    await svc.start({}, ['--stop-on-exit']);
    await waitFor(async () => (await svc.status()).live?.instances.length === 2, {
      timeout: 20_000,
      what: '1.0.0 back',
    });
    const results = await tr.stop();
    const failed = Object.values(results).reduce((n, r) => n + r.failed, 0);
    const refused = Object.values(results).reduce((n, r) => n + r.refused, 0);
    t.diagnostic(summarize(results).join('\n'));
    assert.ok(failed > 0, 'the check sees the outage');
    assert.ok(refused > 0, 'refused connections among them');
  });

  it('baton down stops the instances, the data plane and baton up; again with nothing running it says so', async (t) => {
    const svc = await Service.create(t, { instances: 2, strategy: BLUE_GREEN });
    const d = await svc.start();
    await svc.deployApi('1.0.0');
    assert.equal(svc.pids().length, 2);
    assert.equal(dataPlanePids(svc.file).length, 1);
    const down = await runBaton(t, ['down', '-c', svc.file]);
    assert.equal(down.code, 0, down.stderr);
    assert.match(
      down.stdout,
      /^stopped: 2 instance\(s\) \(.+\), the data plane \(pid \d+\), baton up \(pid \d+\)$/m,
    );
    assert.deepEqual(await d.exited, { code: 0, signal: null }, d.stderr());
    assert.deepEqual(svc.pids(), []);
    assert.deepEqual(dataPlanePids(svc.file), []);
    assert.ok(!existsSync(path.join(svc.stateDir, 'dataplane.pid')));
    // The live release stays recorded: the next up brings it back.
    assert.equal(svc.state().live?.version, '1.0.0');

    // Without a controller: what it left running is stopped from the CLI.
    await svc.start();
    await waitFor(() => svc.pids('1.0.0').length === 2, { timeout: 20_000, what: '1.0.0 started again' });
    await stopController(svc, 'SIGTERM');
    assert.equal(svc.pids().length, 2);
    const offline = await runBaton(t, ['down', '-c', svc.file, '--json']);
    assert.equal(offline.code, 0, offline.stderr);
    assert.ok(offline.stdout.trim(), `baton down --json printed nothing; stderr: ${offline.stderr}`);
    const report = JSON.parse(offline.stdout) as {
      stopped: string[];
      dataPlane: number | null;
      down: boolean;
    };
    assert.equal(report.stopped.length, 2);
    assert.ok(report.dataPlane !== null);
    assert.deepEqual(svc.pids(), []);
    assert.deepEqual(dataPlanePids(svc.file), []);
  });

  it('a data plane that holds the lock but does not answer: baton up exits 14 saying what to do', async (t) => {
    const svc = await Service.create(t, { instances: 1, strategy: BLUE_GREEN });
    // A live process of ours recorded as the data plane (its real identity), with no socket.
    const stuck = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)', 'dataplane'], {
      stdio: 'ignore',
    });
    t.after(() => stuck.kill('SIGKILL'));
    await new Promise((r) => stuck.once('spawn', r));
    const pid = stuck.pid!;
    await waitFor(() => identityOf(pid).startTime !== undefined, { what: 'its start time' });
    mkdirSync(svc.stateDir, { recursive: true });
    writeFileSync(
      path.join(svc.stateDir, 'dataplane.pid'),
      `${pid} ${identityOf(pid).startTime} ${bootId()}\n`,
      {
        flag: 'w',
      },
    );
    const up = await runBaton(t, ['up', '-c', svc.file], { timeout: 30_000 });
    assert.equal(up.code, 14, up.stderr);
    assert.match(
      up.stderr,
      new RegExp(`the data plane \\(pid ${pid}, in \\S+dataplane\\.pid\\) runs but does not answer`),
    );
    assert.match(up.stderr, /If it is stuck, stop it/);
    assert.equal(svc.pids().length, 0, 'nothing started');
    assert.ok(readFileSync(path.join(svc.stateDir, 'dataplane.pid'), 'utf8').startsWith(`${pid} `));
  });
});
