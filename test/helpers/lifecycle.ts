// Helpers of the issue-14 tests (test/lifecycle*.test.ts): stopping `baton up` alone, and the
// proof's traffic through a restart.
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import type { Service } from './app-daemon.js';
import { startProofTraffic, type ProofTraffic } from './proof.js';
import { LIGHT_TRAFFIC } from './proof-suite.js';

export const BLUE_GREEN = ['  type: blue-green', '  verify: 200ms', '  keepOld: 0s'];

export async function stopController(svc: Service, signal: NodeJS.Signals): Promise<void> {
  const d = svc.daemon;
  d.child.kill(signal);
  const exit = await d.exited;
  if (signal === 'SIGTERM') assert.deepEqual(exit, { code: 0, signal: null }, d.stderr());
}

/** Every kind keeps being answered while no controller runs. */
export async function servedWithoutController(traffic: ProofTraffic): Promise<void> {
  await traffic.waitForEach(Date.now(), 3, 15_000);
}

/** Traffic for a restart: every kind of the proof, bounded. */
export function restartTraffic(t: TestContext, url: string): ProofTraffic {
  const tr = startProofTraffic(url, { ...LIGHT_TRAFFIC, maxMs: 120_000 });
  t.after(() => tr.stop());
  return tr;
}
