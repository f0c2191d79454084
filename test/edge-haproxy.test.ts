// The HAProxy edge against a real HAProxy 2.6 (started by the test, master-worker) and real
// backends: the runtime API client, switching and draining through server-template slots,
// health-gated additions, weights, refusals, the server-state file across a reload, and a
// second Baton adopting what HAProxy already serves.
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { edgeSchema, type EdgeConfig } from '../src/config/schema.js';
import { EdgeError, type RouteSpec } from '../src/edge/edge.js';
import { HaproxyEdge } from '../src/edge/haproxy/haproxy.js';
import { haproxyWeights } from '../src/edge/haproxy/routes.js';
import {
  HaproxyRuntime,
  parseServerStats,
  parseSocketAddress,
  type ServerState,
} from '../src/edge/haproxy/runtime.js';
import { silentLogger } from '../src/log.js';
import { freePort, tempDir } from './helpers/cli.js';
import { startHaproxy, type HaproxyOptions, type HaproxyProcess } from './helpers/haproxy.js';
import { startBackend, startLoad, waitFor, type Backend } from './helpers/index.js';
import { answers, edgeOptions, fresh, idOf, routeTo } from './helpers/edges.js';

type HaproxyConfig = Extract<EdgeConfig, { type: 'haproxy' }>;
const MAINT = 0x23;
const DRAIN = 0x18;

function edgeConfig(input: unknown): HaproxyConfig {
  const cfg = edgeSchema.parse(input);
  if (cfg.type !== 'haproxy') throw new Error('not a haproxy edge config');
  return cfg;
}

function newEdge(cfg: HaproxyConfig): HaproxyEdge {
  return new HaproxyEdge(cfg, {
    ...edgeOptions(),
    baseDir: '/',
    log: silentLogger(),
  });
}

/** A real HAProxy and a started edge on it; `edge` overrides keys of its `edge:` section. */
async function haproxyEdge(
  t: TestContext,
  opts: HaproxyOptions = {},
  edge: Record<string, unknown> = {},
): Promise<{ h: HaproxyProcess; edge: HaproxyEdge; runtime: HaproxyRuntime }> {
  const h = await startHaproxy(t, opts);
  const e = newEdge(edgeConfig({ ...h.edgeConfig, ...edge }));
  await e.start();
  t.after(() => e.close());
  return { h, edge: e, runtime: runtimeOf(h.socket) };
}

const runtimeOf = (socket: string, timeoutMs = 2000): HaproxyRuntime =>
  new HaproxyRuntime(parseSocketAddress(socket, '/'), timeoutMs);

/** A backend answering its name; `/slow` after 1.5 s; `/health` with `health` (200). */
function named(t: TestContext, name: string, health = 200): Promise<Backend> {
  return startBackend(t, name, (req: IncomingMessage, res: ServerResponse) => {
    if (req.url === '/health') return void res.writeHead(health).end();
    if (req.url === '/slow') return void setTimeout(() => res.end(`slow ${name}`), 1500);
    res.end(name);
  });
}

const get = (url: string): ReturnType<typeof fresh> => fresh(url);

/** The backend's slots as HAProxy has them. */
async function slots(runtime: HaproxyRuntime): Promise<ServerState[]> {
  return (await runtime.serversState('web')).servers;
}

async function slotOf(runtime: HaproxyRuntime, b: Backend): Promise<ServerState | undefined> {
  return (await slots(runtime)).find((s) => s.port === b.port && (s.adminState & MAINT) === 0);
}

const requestsOf = (b: Backend): number => b.seen.filter((s) => s.url !== '/health').length;

describe('HAProxy runtime client', () => {
  it('parses show servers state and show stat from the real socket, over unix and tcp', async (t) => {
    const h = await startHaproxy(t, { tcpSocket: true });
    for (const spec of [h.socket, `unix:${h.socket}`, h.tcpSocket!]) {
      const runtime = runtimeOf(spec);
      const servers = await slots(runtime);
      assert.deepEqual(
        servers.map((s) => s.name),
        [...[1, 2, 3, 4, 5, 6, 7, 8].map((i) => `baton${i}`), ...[1, 2, 3, 4].map((i) => `baton-backup${i}`)],
      );
      for (const s of servers) {
        assert.equal(s.addr, '127.0.0.1');
        assert.equal(s.port, 1);
        assert.ok(s.adminState & MAINT, `${s.name} starts in maintenance (disabled)`);
        assert.equal(s.checkState & 0x6, 0x6, `${s.name} has its health check configured and enabled`);
      }
      const stats = await runtime.serverStats('web');
      assert.equal(stats.length, 12, 'servers only, no FRONTEND / BACKEND rows');
      assert.deepEqual(
        stats.map((s) => [s.name, s.status, s.backup, s.scur, s.stot]),
        servers.map((s) => [s.name, 'MAINT', s.name.includes('backup'), 0, 0]),
      );
    }
  });

  it('reads CSV fields by the header, quoted or not', () => {
    const [row] = parseServerStats(
      [
        '# pxname,svname,qcur,scur,stot,econ,eresp,status,bck,check_status,check_code,check_desc,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,cli_abrt,',
        'web,BACKEND,0,0,9,0,0,UP,0,,,,0,9,0,0,0,0,0,',
        'web,baton1,1,2,9,3,4,UP,0,L7STS,500,"Layer7 wrong status, ""bad""",0,5,0,1,2,1,7,',
      ].join('\n'),
    );
    assert.deepEqual(row, {
      name: 'baton1',
      status: 'UP',
      scur: 2,
      qcur: 1,
      stot: 9,
      hrsp: [0, 5, 0, 1, 2],
      hrspOther: 1,
      econ: 3,
      eresp: 4,
      cliAbrt: 7,
      backup: false,
      checkStatus: 'L7STS',
      checkCode: '500',
      checkDesc: 'Layer7 wrong status, "bad"',
    });
  });

  it('turns refusals and unreachable sockets into EdgeErrors that say what to do', async (t) => {
    const h = await startHaproxy(t);
    const runtime = runtimeOf(h.socket);
    await assert.rejects(runtime.command('show bogus'), (err: unknown) => {
      assert.ok(err instanceof EdgeError);
      assert.match(err.message, /`show bogus`/);
      assert.match(err.message, /Unknown command/);
      return true;
    });
    await assert.rejects(runtime.command('set weight web/nope 5'), /No such server/);
    await assert.rejects(runtime.command('set weight web/baton1 300'), /between 0 and 256/);

    const missing = path.join(tempDir(t), 'admin.sock');
    await assert.rejects(runtimeOf(missing).command('show info'), (err: unknown) => {
      assert.ok(err instanceof EdgeError);
      assert.match(
        err.message,
        new RegExp(`${missing} not found: is HAProxy running with \`stats socket ${missing} level admin\``),
      );
      return true;
    });
    await assert.rejects(
      runtimeOf(`127.0.0.1:${await freePort()}`).command('show info'),
      /refused the connection/,
    );

    // A socket that takes the command and never answers.
    const mute = path.join(tempDir(t), 'mute.sock');
    const server = net.createServer((s) => s.resume()); // reads, so it sees the client leave
    await new Promise<void>((r) => server.listen(mute, r));
    t.after(() => new Promise<void>((r) => server.close(() => r())));
    const started = Date.now();
    await assert.rejects(
      runtimeOf(mute, 300).command('show info'),
      /did not answer `show info` within 300ms/,
    );
    assert.ok(Date.now() - started < 2000);
  });
});

describe('HAProxy edge', () => {
  it('maps route weights and canary shares onto HAProxy weights (0..256)', () => {
    const r = (weight: number, extra: Partial<RouteSpec> = {}): RouteSpec => ({
      host: '127.0.0.1',
      port: 1,
      weight,
      ...extra,
    });
    assert.deepEqual(haproxyWeights([r(1), r(1)], null), [10, 10]);
    assert.deepEqual(haproxyWeights([r(1), r(3), r(0)], null), [10, 30, 0], 'ratios kept');
    assert.deepEqual(haproxyWeights([r(1), r(1000)], null), [1, 256], 'scaled into 256, never 0');
    const split = (canaryPercent: number) => ({ canaryPercent, rules: [], sticky: 'baton' as const });
    const routes = [r(1), r(1), r(1, { canary: true }), r(1, { backup: true })];
    assert.deepEqual(haproxyWeights(routes, split(20)), [2, 2, 1, 10], '1 canary of 3 primaries at 20%');
    assert.deepEqual(haproxyWeights(routes, split(0)), [1, 1, null, 10], 'the canary side is out');
    assert.deepEqual(haproxyWeights(routes, split(100)), [null, null, 1, 10], 'the stable side is out');
  });

  it('switches A to B once B is up, and drain waits for the slow request still on A', async (t) => {
    const { h, edge, runtime } = await haproxyEdge(t);
    const [a, b] = await Promise.all([named(t, 'a'), named(t, 'b')]);
    await edge.apply([routeTo(a)], null);
    assert.deepEqual([...(await answers(h.url, 10))], [['a', 10]]);

    const slow = get(`${h.url}/slow`);
    await waitFor(() => a.seen.some((s) => s.url === '/slow'), { what: 'the slow request on a' });
    const slowStarted = Date.now();
    await edge.apply([routeTo(b)], null);
    assert.deepEqual([...(await answers(h.url, 20))], [['b', 20]], 'every request after apply() reaches b');
    assert.equal((await slotOf(runtime, a))!.adminState & DRAIN, 0x08, "a's slot drains");

    // A drain never blocks past its timeout: the slow request is still on a.
    const [early] = await edge.drain([idOf(a)], 200);
    assert.deepEqual(
      { ...early, waitedMs: 0 },
      { id: idOf(a), drained: false, waitedMs: 0, inflightLeft: 1 },
    );
    assert.ok(early!.waitedMs >= 150 && early!.waitedMs < 1000, `waited ${early!.waitedMs}ms`);

    const [result] = await edge.drain([idOf(a)], 10_000);
    const drainedAt = Date.now();
    assert.equal(result?.drained, true, JSON.stringify(result));
    assert.equal(result.inflightLeft, 0);
    assert.ok(result.waitedMs > 300, `drain waited for the slow request (${result.waitedMs}ms)`);
    assert.deepEqual(await slow, { status: 200, body: 'slow a' });
    assert.ok(drainedAt - slowStarted >= 1300, 'drain resolved after the slow request finished');
    const aSlot = (await slots(runtime)).find((s) => s.port === a.port);
    assert.ok(aSlot && aSlot.adminState & MAINT, `a's slot is free (MAINT) again: ${JSON.stringify(aSlot)}`);

    const view = await edge.view();
    assert.deepEqual(
      view.map((v) => ({ ...v, requests: v.requests! > 0 })),
      [
        {
          id: idOf(b),
          version: 'b',
          weight: 10,
          backup: false,
          health: 'healthy',
          inflight: 0,
          requests: true,
        },
      ],
    );
  });

  it('reuses a slot whose drain timed out (a long request still on it) when no slot is free', async (t) => {
    // Two slots: a deploy whose old target still holds a request after drainTimeout (a
    // WebSocket, say) must not run the backend out of slots for the next change.
    const { h, edge } = await haproxyEdge(t, { slots: 2 });
    const [a, b, c] = await Promise.all([named(t, 'a'), named(t, 'b'), named(t, 'c')]);
    await edge.apply([routeTo(a)], null);
    const slow = get(`${h.url}/slow`);
    await waitFor(() => a.seen.some((s) => s.url === '/slow'), { what: 'the slow request on a' });
    await edge.apply([routeTo(b)], null);
    const [timedOut] = await edge.drain([idOf(a)], 100);
    assert.equal(timedOut?.drained, false, 'a still holds the slow request');
    await edge.apply([routeTo(c)], null);
    assert.deepEqual([...(await answers(h.url, 10))], [['c', 10]]);
    assert.deepEqual(await slow, { status: 200, body: 'slow a' }, 'reusing the slot cut nothing');
  });

  it('refuses a target whose health check fails; the old one serves throughout', async (t) => {
    const { h, edge, runtime } = await haproxyEdge(t, {}, { timeout: '1500ms' });
    const [a, bad] = await Promise.all([named(t, 'a'), named(t, 'bad', 500)]);
    await edge.apply([routeTo(a)], null);

    let applying = true;
    const during = (async () => {
      const seen = new Map<string, number>();
      while (applying) {
        const { status, body } = await get(h.url);
        const key = status === 200 ? body : `${status}`;
        seen.set(key, (seen.get(key) ?? 0) + 1);
      }
      return seen;
    })();
    const started = Date.now();
    await assert.rejects(edge.apply([routeTo(bad)], null), (err: unknown) => {
      assert.ok(err instanceof EdgeError);
      assert.match(
        err.message,
        // Caught while HAProxy runs its next check, the code is not known yet: L7STS alone.
        new RegExp(`did not bring ${idOf(bad)} \\(web/baton\\d: DOWN, health check L7STS( 500)?`),
      );
      assert.match(err.message, /previous routes still serve/);
      return true;
    });
    applying = false;
    assert.ok(Date.now() - started < 4000, 'bounded by edge.timeout');
    const seen = await during;
    assert.deepEqual([...seen.keys()], ['a'], `answers while applying: ${JSON.stringify([...seen])}`);
    assert.equal(requestsOf(bad), 0, 'the failing target got no request');

    assert.deepEqual([...(await answers(h.url, 10))], [['a', 10]]);
    assert.deepEqual(
      (await edge.view()).map((v) => v.id),
      [idOf(a)],
    );
    const routed = (await slots(runtime)).filter((s) => (s.adminState & MAINT) === 0);
    assert.deepEqual(
      routed.map((s) => [s.port, s.adminState & DRAIN, s.weight]),
      [[a.port, 0, 10]],
      "bad's slot is free again, a is untouched",
    );
  });

  it('splits by weight: a 25% canary gets a quarter of 400 requests, counted by stats()', async (t) => {
    const { h, edge } = await haproxyEdge(t);
    const [stable, canary] = await Promise.all([named(t, 'stable'), named(t, 'canary')]);
    await edge.apply([routeTo(stable), routeTo(canary, { canary: true })], {
      canaryPercent: 25,
      rules: [],
      sticky: 'baton',
    });
    const view = await edge.view();
    assert.deepEqual(
      view.map((v) => [v.id, v.weight]),
      [
        [idOf(stable), 3],
        [idOf(canary), 1],
      ],
    );
    const before = await edge.stats([idOf(canary)]);
    const seen = await answers(h.url, 400);
    const share = (seen.get('canary') ?? 0) / 400;
    assert.ok(share > 0.2 && share < 0.3, `canary share ${share} for 25%`);
    const after = await edge.stats([idOf(canary)]);
    assert.deepEqual(after.buckets, [], 'HAProxy keeps no latency histogram');
    assert.deepEqual(
      after.byClass.map((v, i) => v - before.byClass[i]!),
      [0, seen.get('canary'), 0, 0, 0, 0],
    );

    // 100%: the stable side is out (drained), the canary takes everything.
    await edge.apply([routeTo(stable), routeTo(canary, { canary: true })], {
      canaryPercent: 100,
      rules: [],
      sticky: 'baton',
    });
    assert.deepEqual([...(await answers(h.url, 10))], [['canary', 10]]);
  });

  it('refuses A/B match rules before changing anything', async (t) => {
    const { h, edge, runtime } = await haproxyEdge(t);
    const [a, b] = await Promise.all([named(t, 'a'), named(t, 'b')]);
    await edge.apply([routeTo(a)], null);
    const before = await slots(runtime);
    const rules = [{ header: 'X-Beta', equals: 'yes' }];
    await assert.rejects(
      edge.apply([routeTo(a), routeTo(b, { canary: true })], { canaryPercent: 0, rules, sticky: 'baton' }),
      (err: unknown) =>
        err instanceof EdgeError && /A\/B match rules need the built-in or nginx edge/.test(err.message),
    );
    const after = await slots(runtime);
    const shape = (s: ServerState[]): unknown =>
      s.map((x) => [x.name, x.addr, x.port, x.adminState, x.weight]);
    assert.deepEqual(shape(after), shape(before));
    assert.deepEqual([...(await answers(h.url, 5))], [['a', 5]]);
    assert.equal(edge.can.matchRules, false);
  });

  it('puts backup routes in -backupN slots: they serve only when the primaries are down', async (t) => {
    const { h, edge, runtime } = await haproxyEdge(t);
    const [a, b] = await Promise.all([named(t, 'primary'), named(t, 'backup')]);
    await edge.apply([routeTo(a), routeTo(b, { backup: true })], null);
    assert.match((await slotOf(runtime, b))!.name, /^baton-backup\d$/);
    assert.match((await slotOf(runtime, a))!.name, /^baton\d$/);
    assert.deepEqual([...(await answers(h.url, 10))], [['primary', 10]]);
    assert.deepEqual(
      (await edge.view()).map((v) => [v.id, v.backup]),
      [
        [idOf(a), false],
        [idOf(b), true],
      ],
    );
  });

  it('refuses what it cannot do, with what to change', async (t) => {
    // Too few slots: nothing is changed.
    const { edge, runtime } = await haproxyEdge(t, { slots: 2, backupSlots: 0 });
    const bs = await Promise.all(['a', 'b', 'c'].map((n) => named(t, n)));
    await assert.rejects(
      edge.apply(
        bs.map((b) => routeTo(b)),
        null,
      ),
      (err: unknown) => {
        assert.ok(err instanceof EdgeError);
        assert.match(err.message, /has 2 free batonN slot\(s\) of 2 but this change needs 3/);
        assert.match(err.message, /`server-template baton 1-3 127\.0\.0\.1:1 disabled check`/);
        return true;
      },
    );
    await assert.rejects(
      edge.apply([routeTo(bs[0]!, { backup: true })], null),
      /baton-backupN slot.*needs 1/,
    );
    assert.ok(
      (await slots(runtime)).every((s) => s.adminState & MAINT),
      'every slot still free',
    );

    const h = await startHaproxy(t);
    const start = (edge: Record<string, unknown>): Promise<void> =>
      newEdge(edgeConfig({ ...h.edgeConfig, ...edge })).start();
    await assert.rejects(start({ backend: 'nope' }), (err: unknown) => {
      assert.ok(err instanceof EdgeError);
      assert.equal(
        err.message,
        `HAProxy (${h.socket}) has no backend nope: set edge.backend to a backend of haproxy.cfg`,
      );
      return true;
    });
    await assert.rejects(
      start({ serverPrefix: 'app' }),
      /backend web has no server-template slots named app1\.\.: add `server-template app 1-10 127\.0\.0\.1:1 disabled check` to it/,
    );
    const missing = path.join(tempDir(t), 'haproxy.sock');
    await assert.rejects(start({ runtimeSocket: missing }), new RegExp(`${missing} not found`));

    // A socket below level admin: refused at start, and each change would be.
    const user = await startHaproxy(t, { level: 'user' });
    await assert.rejects(
      newEdge(edgeConfig(user.edgeConfig)).start(),
      /is at level user: Baton changes servers, which needs `stats socket .* level admin`/,
    );
    await assert.rejects(
      runtimeOf(user.socket).command('set server web/baton1 state ready'),
      (err: unknown) => {
        assert.ok(err instanceof EdgeError);
        assert.match(err.message, /refused `set server web\/baton1 state ready` on .*: Permission denied/);
        return true;
      },
    );
  });

  it('keeps the routes across a HAProxy reload through the server-state file', async (t) => {
    const { h, edge, runtime } = await haproxyEdge(t);
    const [a, b] = await Promise.all([named(t, 'a'), named(t, 'b')]);
    await edge.apply([routeTo(a)], null);
    await edge.apply([routeTo(b)], null);
    await edge.drain([idOf(a)], 5000);
    await h.reload();
    assert.deepEqual([...(await answers(h.url, 10))], [['b', 10]], 'the new worker routes to b');
    assert.equal((await slotOf(runtime, b))?.weight, 10);
    assert.equal(await slotOf(runtime, a), undefined, "a's slot is still free");
    // The edge carries on against the reloaded HAProxy.
    await edge.apply([routeTo(a), routeTo(b)], null);
    const both = await answers(h.url, 20);
    assert.ok((both.get('a') ?? 0) >= 8 && (both.get('b') ?? 0) >= 8, JSON.stringify([...both]));

    // The control: without the state file a reload forgets every route.
    const bare = await haproxyEdge(t, { stateFile: false });
    await bare.edge.apply([routeTo(a)], null);
    assert.deepEqual([...(await answers(bare.h.url, 2))], [['a', 2]]);
    await bare.h.reload();
    assert.deepEqual([...(await answers(bare.h.url, 2))], [['503', 2]]);
  });

  it('a second edge adopts what HAProxy serves, and changes only what differs', async (t) => {
    const { h, edge, runtime } = await haproxyEdge(t);
    const [a, b, c] = await Promise.all([named(t, 'a'), named(t, 'b'), named(t, 'c')]);
    await edge.apply([routeTo(a), routeTo(b)], null);
    const aSlot = (await slotOf(runtime, a))!;

    // A Baton restart: a new edge on the same HAProxy, under load.
    const load = startLoad(h.url, { concurrency: 4, maxMs: 20_000 });
    try {
      await waitFor(() => load.result.ok > 20, { what: 'load to flow' });
      const again = newEdge(edgeConfig(h.edgeConfig));
      await again.start();
      assert.deepEqual(
        (await again.view()).map((v) => [v.id, v.version, v.weight]),
        [
          [idOf(a), '', 10],
          [idOf(b), '', 10],
        ],
        'adopted routes, versions unknown',
      );
      const sent = load.result.sent;
      await again.apply([routeTo(a), routeTo(c)], null);
      await waitFor(() => load.result.sent > sent + 20, { what: 'load after the change' });
      const aNow = (await slotOf(runtime, a))!;
      assert.equal(aNow.name, aSlot.name, 'a stays in its slot');
      assert.equal(aNow.adminState & (MAINT | DRAIN), 0, 'a was not taken out');
      assert.equal((await slotOf(runtime, b))!.adminState & DRAIN, 0x08, 'b drains');
      assert.deepEqual(
        (await again.view()).map((v) => [v.id, v.version]),
        [
          [idOf(a), 'a'],
          [idOf(c), 'c'],
        ],
        'versions as applied',
      );
      const [drained] = await again.drain([idOf(b)], 5000);
      assert.equal(drained?.drained, true);
    } finally {
      await load.stop();
    }
    assert.equal(load.result.failed, 0, `failures: ${load.result.failures.join('; ')}`);
    assert.ok(requestsOf(c) > 0, 'c took requests');
  });

  it('stops HAProxy and every worker at teardown', async (t) => {
    const h = await startHaproxy(t);
    await h.reload();
    const pids = h.pids();
    assert.ok(pids.length >= 3, `master and two workers: ${pids.join(', ')}`);
    await h.stop();
    for (const pid of pids) assert.throws(() => process.kill(pid, 0), { code: 'ESRCH' });
  });
});
