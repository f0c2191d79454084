// Review of the deploy proof: HAProxy readings that overlap (the proof's sampler and a route
// change both read) are recorded one at a time and in order, never an older after a newer
// (which looked like a restarted HAProxy and counted the slots' whole history again); HAProxy's
// counters keep at most KEPT_VERSIONS versions; a sum of snapshots (edges, a data plane's
// processes) says when one part restarted; a deploy finished by recovery says why it has no
// counts. Against a real HAProxy where it reads one.
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { describe, it } from 'node:test';
import { edgeSchema } from '../src/config/schema.js';
import { KEPT_VERSIONS } from '../src/edge/builtin/stats.js';
import type { TrafficSnapshot, VersionTraffic } from '../src/edge/edge.js';
import { HaproxyEdge } from '../src/edge/haproxy/haproxy.js';
import type { HaproxyRuntime, ServerStat } from '../src/edge/haproxy/runtime.js';
import { SlotTraffic } from '../src/edge/haproxy/traffic.js';
import { restarted, trafficDiff, trafficSum, trafficTotal } from '../src/edge/traffic.js';
import { RESTARTED_PROOF_NOTE } from '../src/controller/recovery.js';
import { uncountedProof } from '../src/controller/proof.js';
import { proofLines } from '../src/api/proof.js';
import { silentLogger } from '../src/log.js';
import { startHaproxy } from './helpers/haproxy.js';
import { startBackend } from './helpers/index.js';
import { answers, edgeOptions, routeTo } from './helpers/edges.js';

/** One slot's `show stat` row with `ok` 2xx answers and `bad` 5xx. */
function stat(name: string, ok: number, bad = 0): ServerStat {
  return {
    name,
    status: 'UP',
    scur: 0,
    qcur: 0,
    stot: ok + bad,
    hrsp: [0, ok, 0, 0, bad],
    hrspOther: 0,
    econ: 0,
    eresp: 0,
    cliAbrt: 0,
    backup: false,
    checkStatus: '',
    checkCode: '',
    checkDesc: '',
  };
}

const requestsOf = (s: TrafficSnapshot): Record<string, number> =>
  Object.fromEntries(s.versions.map((v) => [v.version, v.requests]));

const vt = (version: string, requests: number, status5xx = 0): VersionTraffic => ({
  version,
  requests,
  status5xx,
  proxyErrors: 0,
  clientAborts: 0,
  buckets: [requests - status5xx, status5xx],
});

describe('deploy proof review', () => {
  it('HAProxy counts: a reading older than the last recorded is ignored, not taken for a restart', () => {
    const c = new SlotTraffic();
    const v1 = (): string => 'v1';
    c.observe([stat('s1', 1000)], v1, 100);
    c.observe([stat('s1', 1010)], v1, 300);
    // Recorded late: an older reading (lower counts) after the newer one.
    c.observe([stat('s1', 1005)], v1, 200);
    c.observe([stat('s1', 1020)], v1, 400);
    assert.deepEqual(requestsOf(c.snapshot()), { v1: 20 });
    assert.equal(c.snapshot().at, 400);
    // A real restart (counts down in a newer reading) still counts from zero.
    c.observe([stat('s1', 3)], v1, 500);
    assert.deepEqual(requestsOf(c.snapshot()), { v1: 23 });
  });

  it(`HAProxy counts keep at most ${KEPT_VERSIONS} versions, never the one a slot serves`, () => {
    const c = new SlotTraffic();
    let version = 'v0';
    let n = 0;
    c.observe([stat('s1', n)], () => version, 0);
    for (let i = 1; i <= KEPT_VERSIONS + 8; i++) {
      n += 5;
      version = `v${i}`;
      // Each reading gives the slot's requests to the version it had, then names the next one.
      c.observe([stat('s1', n), stat('s2', n)], (slot) => (slot === 's2' ? 'pinned' : version), i);
    }
    const kept = requestsOf(c.snapshot());
    assert.equal(Object.keys(kept).length, KEPT_VERSIONS);
    assert.ok('pinned' in kept, 'the version a slot serves is kept');
    assert.ok(`v${KEPT_VERSIONS + 7}` in kept, 'the newest versions are kept');
    assert.ok(!('v0' in kept), 'the oldest one no slot serves is dropped');
  });

  it('a sum says when one of its parts restarted: since is the newest, absent when none has one', () => {
    const a = { at: 10, since: 1, versions: [vt('v1', 10, 1)], unknown: [] };
    const b = { at: 12, since: 2, versions: [vt('v1', 5), vt('v2', 3)], unknown: ['p99Ms'], note: 'b' };
    const start = trafficSum([a, b]);
    assert.equal(start.since, 2);
    assert.equal(start.at, 12);
    assert.deepEqual(start.unknown, ['p99Ms']);
    assert.deepEqual(requestsOf(start), { v1: 15, v2: 3 });
    assert.deepEqual(start.versions.find((v) => v.version === 'v1')?.buckets, [14, 1]);
    // b's process replaced: its counters start again (lower), a's go on.
    const end = trafficSum([
      { ...a, at: 20, versions: [vt('v1', 30, 1)] },
      { ...b, at: 20, since: 15, versions: [vt('v2', 4)] },
    ]);
    assert.equal(end.since, 15);
    assert.ok(restarted(end, start), 'the proof sees the restart');
    assert.equal(restarted(trafficSum([a, { ...b, at: 30 }]), start), false);
    assert.equal(trafficSum([{ ...a, since: undefined }]).since, undefined);
    assert.equal('since' in trafficSum([{ at: 1, versions: [], unknown: [] }]), false);
    // The total of a diff, as the proof shows it.
    const total = trafficTotal(trafficDiff(end, start));
    assert.deepEqual([total.version, total.requests, total.status5xx], ['', 34, 1]);
  });

  it('a deploy finished by recovery says why it has no counts', () => {
    const p = uncountedProof('builtin', new Date(0).toISOString(), RESTARTED_PROOF_NOTE);
    assert.equal(p.requests, null);
    assert.equal(p.failed, null);
    assert.deepEqual(proofLines(p), [
      'requests during this deploy: unknown (the controller restarted during the deploy: not counted)',
    ]);
  });

  it('HAProxy: overlapping readings run one at a time, the counts exact', async (t) => {
    const h = await startHaproxy(t);
    const cfg = edgeSchema.parse(h.edgeConfig);
    if (cfg.type !== 'haproxy') throw new Error('not a haproxy edge config');
    const edge = new HaproxyEdge(cfg, { ...edgeOptions(), baseDir: '/', log: silentLogger() });
    await edge.start();
    t.after(() => edge.close());
    const a = await startBackend(t, 'a', (req: IncomingMessage, res: ServerResponse) =>
      req.url === '/health' ? void res.writeHead(200).end() : void res.end('a'),
    );
    await edge.apply([routeTo(a)], null);
    const base = requestsOf(await edge.traffic()).a ?? 0;

    // The real runtime client, its show stat calls counted (and the first one slowed: an older
    // reading that would otherwise be recorded after the newer ones).
    const runtime = (edge as unknown as { runtime: HaproxyRuntime }).runtime;
    const real = runtime.serverStats.bind(runtime);
    let inflight = 0;
    let most = 0;
    let calls = 0;
    runtime.serverStats = async (backend: string) => {
      inflight++;
      most = Math.max(most, inflight);
      try {
        const first = calls++ === 0;
        const stats = await real(backend);
        if (first) await new Promise((r) => setTimeout(r, 300));
        return stats;
      } finally {
        inflight--;
      }
    };
    let sent = 0;
    for (let round = 0; round < 5; round++) {
      const n = 10 + round;
      assert.deepEqual([...(await answers(h.url, n))], [['a', n]]);
      sent += n;
      const snaps = await Promise.all(Array.from({ length: 4 }, () => edge.traffic()));
      for (const s of snaps)
        assert.ok((s.versions.find((v) => v.version === 'a')?.requests ?? 0) - base <= sent);
    }
    assert.equal(most, 1, 'one show stat at a time');
    assert.equal(calls, 20);
    assert.equal((requestsOf(await edge.traffic()).a ?? 0) - base, sent);
  });
});
