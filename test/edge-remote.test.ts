// A built-in edge on another Baton (issue 7's `edges: [{ type: builtin, admin: host:port }]`):
// an edge-only `baton up` (listen + admin, no app, no targets) whose proxy a second Baton drives
// through the edge API. Here both run on loopback as separate processes, as they would on two
// machines. The proof's traffic through the edge Baton fails nothing across blue-green, rolling
// and a canary analysed from the remote counters; an edge Baton that is down or refuses the
// token fails cleanly, and one that restarts comes back with the routes it had.
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { request } from 'undici';
import type { EdgeViewAnswer } from '../src/api/edge.js';
import { Service } from './helpers/app-daemon.js';
import { ensureBuilt, freePort, startDaemon, tempDir, writeFile, type DaemonProcess } from './helpers/cli.js';
import { waitFor } from './helpers/index.js';
import { startProofTraffic } from './helpers/proof.js';
import {
  assertEndedOn,
  assertZeroDowntime,
  deployEach,
  LIGHT_TRAFFIC,
  useProofTimeouts,
  warm,
} from './helpers/proof-suite.js';

interface EdgeBaton {
  readonly url: string;
  readonly admin: number;
  start(env?: Record<string, string>): Promise<DaemonProcess>;
}

/** An edge-only Baton on fixed ports (so that a restart keeps them). */
async function edgeBaton(t: TestContext): Promise<EdgeBaton> {
  const [listen, admin] = [await freePort(), await freePort()];
  const file = writeFile(
    tempDir(t),
    'edge.yaml',
    [
      'service: web',
      `listen: 127.0.0.1:${listen}`,
      `admin: 127.0.0.1:${admin}`,
      'stateDir: state',
      // Its own health checks, from where it runs.
      'healthCheck: { path: /health, interval: 100ms, timeout: 500ms, healthyThreshold: 1, unhealthyThreshold: 2 }',
      '',
    ].join('\n'),
  );
  return { url: `http://127.0.0.1:${listen}`, admin, start: (env = {}) => startDaemon(t, file, { env }) };
}

function remoteEdge(edge: EdgeBaton, extra = ''): ServiceEdge {
  return {
    lines: [`edge: { type: builtin, admin: 127.0.0.1:${edge.admin}, timeout: 3s${extra} }`],
    url: edge.url,
  };
}
type ServiceEdge = { lines: string[]; url: string };

async function versionsVia(url: string, n = 8): Promise<string[]> {
  const seen = new Set<string>();
  for (let i = 0; i < n; i++) {
    const res = await request(url, { reset: true, headersTimeout: 5000 });
    seen.add(`${res.statusCode} ${(await res.body.text()).trim()}`);
  }
  return [...seen].sort();
}

describe('a built-in edge on another Baton, driven through its admin API', () => {
  it('blue-green, rolling and an analysed canary under the proof traffic through it: 0 failed', async (t) => {
    ensureBuilt();
    const edge = await edgeBaton(t);
    await edge.start();
    assert.equal(
      ((await (await request(`http://127.0.0.1:${edge.admin}/v1/health`)).body.json()) as { mode: string })
        .mode,
      'edge',
    );
    const svc = await Service.create(t, {
      readyTimeout: '15s',
      edge: remoteEdge(edge),
      strategy: [
        '  type: canary',
        '  canaryInstances: 1',
        '  steps: [{ setWeight: 50 }, { pause: 800ms }]',
        '  analysis: { interval: 300ms, failureLimit: 1, minRequests: 5, successRate: 100 }',
      ],
    });
    useProofTimeouts(svc);
    await svc.start();
    await svc.deployApi('1.0.0');
    const traffic = startProofTraffic(edge.url, { ...LIGHT_TRAFFIC, maxMs: 120_000 });
    t.after(() => traffic.stop());
    await warm(traffic);
    const runs = await deployEach(
      svc,
      [traffic],
      [
        ['1.0.1', ['--strategy', 'blue-green']],
        ['1.0.2', ['--strategy', 'rolling']],
        ['1.0.3', []],
      ],
    );
    // The canary was judged on the edge Baton's own counters, fetched over its API.
    const verdicts = runs[2]!.events.filter((ev) => ev.kind === 'info' && ev.message.startsWith('analysis '));
    assert.ok(
      verdicts.some((v) =>
        /^analysis pass: success rate 100%, p99 [\d.]+ms over \d+ request\(s\)$/.test(v.message),
      ),
      verdicts.map((v) => v.message).join('\n') || 'no verdict',
    );
    const since = Date.now();
    await assertEndedOn(traffic, since, '1.0.3');
    assertZeroDowntime(t, 'builtin', await traffic.stop());
    // The edge Baton serves what the controller pushed: the 1.0.3 instances only.
    const targets = (await (
      await request(`http://127.0.0.1:${edge.admin}/v1/edge/view`)
    ).body.json()) as EdgeViewAnswer;
    assert.deepEqual([...new Set(targets.targets.map((x) => x.version))], ['1.0.3']);
  });

  it('down at start: exit 14 naming it; a wrong token: refused with the variable to set; a restart keeps its routes', async (t) => {
    ensureBuilt();
    const edge = await edgeBaton(t);
    const token = { BATON_EDGE_TOKEN: 'edge-secret' };
    const svc = await Service.create(t, { edge: remoteEdge(edge, ', tokenEnv: BATON_EDGE_TOKEN') });

    // Nothing answers there yet.
    await assert.rejects(svc.start(token), (err: Error) => {
      assert.match(err.message, /exited early \(14\)/);
      assert.match(
        err.message,
        new RegExp(`the Baton at 127\\.0\\.0\\.1:${edge.admin} did not answer: ECONNREFUSED`),
      );
      return true;
    });

    let e = await edge.start({ BATON_ADMIN_TOKEN: 'edge-secret' });
    await assert.rejects(svc.start({ BATON_EDGE_TOKEN: 'wrong' }), (err: Error) => {
      assert.match(err.message, /exited early \(14\)/);
      assert.match(
        err.message,
        /refused to answer: 401 missing or wrong admin token.*Set BATON_EDGE_TOKEN here/s,
      );
      return true;
    });

    await svc.start(token);
    await svc.deployApi('1.0.0');
    assert.deepEqual(await versionsVia(edge.url), ['200 1.0.0']);

    // The edge Baton goes away: a deploy fails naming it, and nothing is left started.
    e.child.kill('SIGKILL');
    await e.exited;
    const failed = await svc.deploy('1.0.1');
    assert.equal(failed.code, 14, failed.stdout + failed.stderr);
    assert.match(
      failed.done?.message ?? '',
      new RegExp(
        `the Baton at 127\\.0\\.0\\.1:${edge.admin} did not change its routes: ECONNREFUSED .*it got nothing, so whatever it routed before, it still routes`,
      ),
    );
    await svc.noneLeft('1.0.1');

    // Back: it serves the routes it had before it went away, before the controller says a word.
    e = await edge.start({ BATON_ADMIN_TOKEN: 'edge-secret' });
    await waitFor(async () => (await versionsVia(edge.url)).join() === '200 1.0.0', {
      what: 'the restarted edge serving 1.0.0',
      timeout: 10_000,
    });
    const again = await svc.deploy('1.0.1');
    assert.equal(again.done?.result, 'succeeded', again.stdout + again.stderr);
    assert.deepEqual(await versionsVia(edge.url), ['200 1.0.1']);
  });
});
