// The zero-downtime proof (issue 5): for each zero-downtime strategy, deploys in a row under
// every kind of traffic at once (keep-alive and new-connection GETs, 1-2s requests in flight at
// every switch, POSTs with checked bodies, a streaming answer, long-lived WebSockets and
// WebSockets that reconnect all the time) and asserts that not one request failed and no
// WebSocket was cut without a Close frame. `recreate` under the same traffic must fail
// requests: the control that shows the traffic does see failures.
//
// The same proof runs on each edge, one test file each (proof.test.ts: the built-in proxy;
// proof-nginx / proof-haproxy: a real nginx / HAProxy started by the test).
//
// Short by default (npm test); PROOF_LONG=1 holds each version longer with more clients, and
// PROOF_DEPLOYS=N deploys N versions in a row (default: 2 on the built-in edge, 1 on nginx and
// HAProxy, whose edge-side steps the built-in proof and their own tests cover; each strategy
// still switches under the whole traffic once). `npm run proof` runs both, 5 deploys.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { before, describe, it, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Service, type DeployRun, type ServiceOptions } from './app-daemon.js';
import { ensureBuilt } from './cli.js';
import { startHaproxy } from './haproxy.js';
import { startNginx } from './nginx.js';
import { KINDS, startProofTraffic, summarize, type ProofOptions, type ProofTraffic } from './proof.js';

const LONG = process.env.PROOF_LONG === '1';
const deploysOn = (edge: EdgeKind): number =>
  Math.max(1, Number(process.env.PROOF_DEPLOYS ?? (edge === 'builtin' ? 2 : 1)) || 1);

/** Traffic per kind, and how long each version serves before the next deploy. */
export const TRAFFIC: ProofOptions = LONG
  ? {
      keepAlive: 6,
      newConnection: 3,
      slow: 6,
      post: 3,
      stream: 3,
      websockets: 8,
      churningWebsockets: 4,
      paceMs: 10,
    }
  : {
      keepAlive: 3,
      newConnection: 2,
      slow: 4,
      post: 2,
      stream: 2,
      websockets: 4,
      churningWebsockets: 2,
      paceMs: 25,
    };
const HOLD_MS = LONG ? 4000 : 300;

/**
 * Every kind of the proof's traffic with fewer clients, for runs that start more processes on
 * this machine (several hosts, two edges, a second Baton).
 */
export const LIGHT_TRAFFIC: ProofOptions = {
  keepAlive: 2,
  newConnection: 2,
  slow: 2,
  post: 1,
  stream: 1,
  websockets: 2,
  churningWebsockets: 1,
  paceMs: 25,
};

/**
 * The proof's app settings: the slow requests take up to 2s, so an instance must be given longer
 * than that to drain (and to stop) before it is signalled or killed, as any real service with
 * 2s requests would configure. The helper's 1s defaults would cut them by design.
 */
const APP_TIMEOUTS = { drainTimeout: '5s', stopTimeout: '5s' };

export async function proofService(
  t: TestContext,
  edge: EdgeKind,
  options: ServiceOptions,
): Promise<Service> {
  const svc = await Service.create(t, { readyTimeout: '15s', edge: await edgeFor(t, edge), ...options });
  useProofTimeouts(svc);
  await svc.start();
  await svc.deployApi('1.0.0');
  return svc;
}

/** Rewrites the service's baton.yaml with the proof's drain and stop timeouts (APP_TIMEOUTS). */
export function useProofTimeouts(svc: Service): void {
  let yaml = readFileSync(svc.file, 'utf8');
  for (const [key, value] of Object.entries(APP_TIMEOUTS)) {
    const line = new RegExp(`^  ${key}: .*$`, 'm');
    assert.match(yaml, line, `the helper's config has app.${key}`);
    yaml = yaml.replace(line, `  ${key}: ${value}`);
  }
  writeFileSync(svc.file, yaml);
}

export type EdgeKind = 'builtin' | 'nginx' | 'haproxy';

/** The service's edge: none to start for the built-in one; else a real nginx / HAProxy. */
async function edgeFor(t: TestContext, kind: EdgeKind): Promise<ServiceOptions['edge']> {
  if (kind === 'builtin') return undefined;
  const e = kind === 'nginx' ? await startNginx(t) : await startHaproxy(t);
  return { lines: [`edge: ${JSON.stringify(e.edgeConfig)}`], url: `http://127.0.0.1:${e.port}` };
}

const versionsToDeploy = (edge: EdgeKind): string[] =>
  Array.from({ length: deploysOn(edge) }, (_, i) => `1.0.${i + 1}`);

/** Every kind has answered (WebSockets: echoed) under 1.0.0 before the first deploy. */
export async function warm(traffic: ProofTraffic): Promise<void> {
  await traffic.waitForEach(0, 2, 15_000);
}

/**
 * Deploys each [version, extra CLI args] in turn under the traffic (each marks its phases); each
 * must succeed. `after` runs once each version is live.
 */
export async function deployEach(
  svc: Service,
  traffic: readonly ProofTraffic[],
  deploys: readonly (readonly [string, readonly string[]])[],
  after: (version: string) => void | Promise<void> = () => undefined,
): Promise<DeployRun[]> {
  const runs: DeployRun[] = [];
  for (const [version, args] of deploys) {
    for (const tr of traffic) tr.phase(`deploy ${version}`);
    const run = await svc.deploy(version, [...args], 90_000);
    for (const tr of traffic) tr.phase(`${version} live`);
    assert.equal(
      run.done?.result,
      'succeeded',
      `deploy ${version}: exit ${run.code}\n${run.stdout}\n${run.stderr}\n${traffic.flatMap((tr) => summarize(tr.results)).join('\n')}`,
    );
    runs.push(run);
    await after(version);
  }
  return runs;
}

/** Deploys each version under the traffic, holding each a while; resolves when the last returned. */
async function deployInARow(svc: Service, traffic: ProofTraffic, versions: string[]): Promise<number> {
  let lastReturned = 0;
  await deployEach(
    svc,
    [traffic],
    versions.map((v) => [v, []] as const),
    async () => {
      lastReturned = Date.now();
      await sleep(HOLD_MS);
    },
  );
  return lastReturned;
}

/** Zero failures of every kind, zero WebSocket cuts, and every kind ran. */
export function assertZeroDowntime(t: TestContext, edge: EdgeKind, results: ProofTraffic['results']): void {
  const lines = summarize(results);
  for (const l of lines) t.diagnostic(l);
  const report = lines.join('\n');
  for (const k of KINDS) {
    const r = results[k];
    assert.equal(
      r.failed,
      0,
      `${k}: ${r.failed} of ${r.sent} failed:\n  ${r.samples.join('\n  ')}\n${report}`,
    );
    assert.ok(r.ok > 0, `${k}: the traffic ran\n${report}`);
  }
  // Only nginx reloads; the built-in proxy and HAProxy switch without closing a client's idle
  // keep-alive connection.
  if (edge !== 'nginx') {
    for (const k of KINDS) assert.equal(results[k].idleCloses, 0, `${k}: idle connections closed\n${report}`);
  }
  const ws = results.websocket;
  assert.equal(
    ws.cuts,
    0,
    `WebSockets cut without a Close frame:\n  ${ws.cutSamples.join('\n  ')}\n${report}`,
  );
  assert.ok(ws.connections > 0, 'WebSockets connected');
}

/**
 * Traffic started after the last deploy returned is all on `version`: waits for a few answers
 * of every kind, then checks their versions.
 */
export async function assertEndedOn(traffic: ProofTraffic, since: number, version: string): Promise<void> {
  await traffic.waitForEach(since, 2, 15_000);
  const by = traffic.versionsSince(since);
  for (const k of KINDS) {
    assert.deepEqual(
      Object.keys(by[k]),
      [version],
      `${k}: answers after the last deploy: ${JSON.stringify(by[k])}`,
    );
  }
}

async function proveStrategy(t: TestContext, edge: EdgeKind, options: ServiceOptions): Promise<void> {
  const svc = await proofService(t, edge, options);
  const traffic = startProofTraffic(svc.url, { ...TRAFFIC, maxMs: 240_000 });
  t.after(() => traffic.stop());
  await warm(traffic);
  const versions = versionsToDeploy(edge);
  const since = await deployInARow(svc, traffic, versions);
  await assertEndedOn(traffic, since, versions.at(-1)!);
  traffic.phase('stopping');
  const results = await traffic.stop();
  assertZeroDowntime(t, edge, results);
  assert.equal((await svc.status()).live?.version, versions.at(-1));
}

/** The proof's cases on one edge. */
export function proofSuite(edge: EdgeKind): void {
  describe(
    `zero-downtime proof (${edge} edge): every kind of traffic at once, deploys in a row`,
    { timeout: LONG ? 600_000 : 120_000 },
    () => {
      before(() => ensureBuilt());

      it('blue-green', async (t) => {
        await proveStrategy(t, edge, {
          instances: 2,
          strategy: ['  type: blue-green', '  verify: 200ms', '  keepOld: 0s'],
        });
      });

      it('rolling (3 instances, maxSurge 1, maxUnavailable 0)', async (t) => {
        await proveStrategy(t, edge, {
          instances: 3,
          strategy: ['  type: rolling', '  maxSurge: 1', '  maxUnavailable: 0', '  minReady: 100ms'],
        });
      });

      it('canary (weights 25% then 50%, analysis on the proxy counters)', async (t) => {
        const pause = LONG ? '2s' : '400ms';
        await proveStrategy(t, edge, {
          instances: 2,
          strategy: [
            '  type: canary',
            '  canaryInstances: 1',
            `  steps: [{ setWeight: 25 }, { pause: ${pause} }, { setWeight: 50 }, { pause: ${pause} }]`,
            '  analysis: { interval: 300ms, failureLimit: 1, minRequests: 5, successRate: 100 }',
          ],
        });
      });

      it('recreate under the same traffic fails requests (the control)', async (t) => {
        const svc = await proofService(t, edge, { instances: 2, strategy: ['  type: recreate'] });
        const traffic = startProofTraffic(svc.url, { ...TRAFFIC, maxMs: 120_000 });
        t.after(() => traffic.stop());
        await warm(traffic);
        traffic.phase('deploy 1.0.1');
        const run = await svc.deploy('1.0.1', [], 60_000);
        assert.equal(run.done?.result, 'succeeded', `${run.stdout}\n${run.stderr}`);
        traffic.phase('1.0.1 live');
        await assertEndedOn(traffic, Date.now(), '1.0.1');
        const results = await traffic.stop();
        const lines = summarize(results);
        for (const l of lines) t.diagnostic(l);
        const failed = KINDS.reduce((n, k) => n + results[k].failed, 0);
        assert.ok(
          failed > 0,
          `recreate stops everything before starting: the traffic must see failures\n${lines.join('\n')}`,
        );
        t.diagnostic(
          `recreate: ${failed} failures, e.g. ${results['keep-alive'].samples[0] ?? results.slow.samples[0] ?? ''}`,
        );
      });
    },
  );
}
