// A blue-green deploy under keep-alive and new-connection load that must fail nothing, then the
// control: the same kind of load sees failures once the new instances are killed (proxy-raw and
// proxy-workers run it on their own proxy setups).
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import type { Service } from './app-daemon.js';
import { startLoad, waitFor } from './index.js';

/** Deploys `version` under load: 0 failed, then `fresh` new connections all answer `version`. */
export async function deployUnderLoadWithControl(
  t: TestContext,
  svc: Service,
  version: string,
  fresh: number,
): Promise<void> {
  const load = startLoad(svc.url, { concurrency: 8, maxMs: 60_000 });
  const newConns = startLoad(svc.url, { concurrency: 4, maxMs: 60_000, keepAlive: false });
  t.after(() => Promise.all([load.stop(), newConns.stop()]));
  await waitFor(() => load.result.ok > 200 && newConns.result.ok > 100, { what: 'load before the deploy' });
  const run = await svc.deploy(version, [], 60_000);
  assert.equal(run.done?.result, 'succeeded', `${run.stdout}\n${run.stderr}`);
  const [r1, r2] = await Promise.all([load.stop(), newConns.stop()]);
  t.diagnostic(`keep-alive ${r1.sent} sent / ${r1.failed} failed; new connections ${r2.sent} / ${r2.failed}`);
  assert.equal(r1.failed + r2.failed, 0, [...r1.failures, ...r2.failures].join('\n'));
  assert.deepEqual(await svc.versionsServed(fresh), [version]);

  // Control: the same check sees failures when the instances are killed under the load.
  const control = startLoad(svc.url, { concurrency: 4, maxMs: 20_000 });
  await waitFor(() => control.result.ok > 50, { what: 'control load' });
  for (const p of svc.pids(version)) process.kill(p, 'SIGKILL');
  await waitFor(() => control.result.failed > 0, {
    timeout: 10_000,
    what: 'failures once the instances are gone',
  });
  assert.ok((await control.stop()).failed > 0);
}
