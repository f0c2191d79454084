// Issue 14 (continued from lifecycle.test.ts): a controller killed mid-deploy, and an instance that
// dies while no controller runs.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { dataPlanePids, ensureBuilt } from './helpers/cli.js';
import { startLoad, waitFor } from './helpers/index.js';
import { BLUE_GREEN, restartTraffic, servedWithoutController, stopController } from './helpers/lifecycle.js';
import { assertZeroDowntime, proofService } from './helpers/proof-suite.js';

describe(
  'baton up killed mid-deploy, an instance dying without a controller (issue 14)',
  { timeout: 240_000 },
  () => {
    before(() => ensureBuilt());

    for (const edge of ['builtin', 'nginx', 'haproxy'] as const) {
      it(`SIGKILL mid-deploy (blue-green verify) and start again 3s later, ${edge} edge: 0 failed, back on 1.0.0, then a deploy works`, async (t) => {
        const svc = await proofService(t, edge, {
          instances: 2,
          strategy: ['  type: blue-green', '  verify: 20s', '  keepOld: 0s'],
        });
        const old = svc.pids('1.0.0');
        const dataPlanes = dataPlanePids(svc.file);
        assert.equal(dataPlanes.length, edge === 'builtin' ? 1 : 0);
        const tr = restartTraffic(t, svc.url);
        await tr.waitForEach(0, 2, 15_000);
        tr.phase('deploy 1.0.1');
        const deploy = svc.deploy('1.0.1', [], 60_000);
        await waitFor(() => svc.state().deployment?.step === 'verifying', {
          timeout: 30_000,
          what: 'the deploy of 1.0.1 to verify',
        });
        tr.phase('SIGKILL');
        await stopController(svc, 'SIGKILL');
        const cut = await deploy;
        assert.notEqual(cut.code, 0, 'the deploy client saw its daemon go');
        tr.phase('no controller');
        await servedWithoutController(tr);
        const start = Date.now();
        await waitFor(() => Date.now() - start >= 3000, { what: '3s without a controller' });
        tr.phase('restart');
        await svc.start();
        await waitFor(async () => (await svc.status()).live?.version === '1.0.0', {
          timeout: 30_000,
          what: 'the restarted controller to go back to 1.0.0',
        });
        await svc.noneLeft('1.0.1', 15_000);
        assert.deepEqual(svc.pids('1.0.0'), old, 'the 1.0.0 instances were adopted, not replaced');
        assert.deepEqual(dataPlanePids(svc.file), dataPlanes, 'the same data plane');
        const history = await svc.history();
        assert.equal(
          history.find((h) => h.version === '1.0.1')?.result,
          'rolled-back',
          JSON.stringify(history),
        );
        tr.phase('deploy after');
        const again = await svc.deploy('1.0.2', [], 60_000);
        assert.equal(again.done?.result, 'succeeded', `${again.stdout}\n${again.stderr}`);
        tr.phase('stopping');
        assertZeroDowntime(t, edge, await tr.stop());
      });
    }

    it('an instance that dies while no controller runs is taken out by the data plane, and replaced by the next controller', async (t) => {
      const svc = await proofService(t, 'builtin', { instances: 2, strategy: BLUE_GREEN });
      await stopController(svc, 'SIGTERM');
      // Idempotent GETs only: a request the dead instance held is sent again elsewhere.
      const load = startLoad(svc.url, { concurrency: 4, maxMs: 60_000 });
      t.after(() => load.stop());
      await waitFor(() => load.result.ok > 50, { what: 'load through the data plane' });
      const [victim, survivor] = svc.pids('1.0.0');
      process.kill(victim!, 'SIGKILL');
      const sentAt = load.result.sent;
      await waitFor(() => load.result.sent > sentAt + 300, { timeout: 20_000, what: '300 more requests' });
      assert.deepEqual(svc.pids('1.0.0'), [survivor], 'nothing restarted it: no controller runs');
      await svc.start();
      await waitFor(() => svc.pids('1.0.0').length === 2, {
        timeout: 20_000,
        what: 'the restarted controller to start the missing instance',
      });
      const result = await load.stop();
      assert.equal(
        result.failed,
        0,
        `${result.failed} of ${result.sent} failed: ${result.failures.join('; ')}`,
      );
    });
  },
);
