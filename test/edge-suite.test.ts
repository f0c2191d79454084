// The shared edge suite: the same cases against each edge Baton drives — its built-in proxy, a
// real nginx and a real HAProxy, each started by the test on loopback ports. What every strategy
// relies on: apply() switches new requests, drain() waits for the old set's requests in flight,
// weights split, targets come and go, backups stand in, A/B rules route (where the edge can),
// and a stream of switches under load fails no request.
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { describe, it, type TestContext } from 'node:test';
import { edgeSchema } from '../src/config/schema.js';
import { BuiltinEdge } from '../src/edge/builtin/edge.js';
import { EdgeError, type Edge } from '../src/edge/edge.js';
import { HaproxyEdge } from '../src/edge/haproxy/haproxy.js';
import { NginxEdge } from '../src/edge/nginx/nginx.js';
import { startHaproxy } from './helpers/haproxy.js';
import { startBackend, startLoad, startProxy, waitFor, type Backend } from './helpers/index.js';
import { answers, edgeOptions, fresh, idOf, routeTo } from './helpers/edges.js';
import { startNginx } from './helpers/nginx.js';

interface EdgeUnderTest {
  readonly edge: Edge;
  /** Where clients send requests: the edge's own port. */
  readonly url: string;
}

const EDGES: Record<string, (t: TestContext) => Promise<EdgeUnderTest>> = {
  builtin: async (t) => {
    const { proxy, url } = await startProxy(t, []);
    return { edge: new BuiltinEdge(proxy), url };
  },
  nginx: async (t) => {
    const n = await startNginx(t);
    const cfg = edgeSchema.parse(n.edgeConfig);
    if (cfg.type !== 'nginx') throw new Error('not an nginx edge config');
    const edge = new NginxEdge(cfg, edgeOptions());
    await edge.start();
    t.after(() => edge.close());
    return { edge, url: `http://127.0.0.1:${n.port}` };
  },
  haproxy: async (t) => {
    const h = await startHaproxy(t);
    const cfg = edgeSchema.parse(h.edgeConfig);
    if (cfg.type !== 'haproxy') throw new Error('not a haproxy edge config');
    const edge = new HaproxyEdge(cfg, edgeOptions());
    await edge.start();
    t.after(() => edge.close());
    return { edge, url: `http://127.0.0.1:${h.port}` };
  },
};

/** When each backend (by name) answered its last `/slow` request. */
const slowAnswered = new Map<string, number>();

/** A backend answering its name; `/slow` after `slowMs`, and every answer after `delayMs`. */
function named(t: TestContext, name: string, { slowMs = 1200, delayMs = 0 } = {}): Promise<Backend> {
  return startBackend(t, name, (req: IncomingMessage, res: ServerResponse) => {
    // Health checks (HAProxy's own) answer at once.
    const ms = req.url === '/slow' ? slowMs : req.url === '/health' ? 0 : delayMs;
    const answer = (): void => {
      if (req.url === '/slow') slowAnswered.set(name, Date.now());
      res.end(req.url === '/slow' ? `slow ${name}` : name);
    };
    if (ms > 0) setTimeout(answer, ms);
    else answer();
  });
}

/** The body of one request on a new connection; throws unless it is a 200. */
async function body(url: string, headers: Record<string, string> = {}): Promise<string> {
  const r = await fresh(url, headers);
  if (r.status !== 200) throw new Error(`${r.status} ${r.body}`);
  return r.body;
}

for (const [kind, startEdge] of Object.entries(EDGES)) {
  describe(`edge suite: ${kind}`, () => {
    it('switches new requests at once, and drain waits for the old set’s request in flight', async (t) => {
      const { edge, url } = await startEdge(t);
      const [a, b] = await Promise.all([named(t, 'a'), named(t, 'b')]);
      await edge.apply([routeTo(a)], null);
      assert.deepEqual([...(await answers(url, 5))], [['a', 5]]);
      slowAnswered.delete('a');
      const slow = body(`${url}/slow`);
      await waitFor(() => a.seen.some((s) => s.url === '/slow'), { what: 'the slow request on a' });
      await edge.apply([routeTo(b)], null);
      // Every request sent after apply() resolved reaches the new set.
      assert.deepEqual([...(await answers(url, 20))], [['b', 20]]);
      const [result] = await edge.drain([idOf(a)], 10_000);
      const drainedAt = Date.now();
      assert.equal(result?.drained, true, `drain result: ${JSON.stringify(result)}`);
      assert.equal(await slow, 'slow a');
      // The backend's clock, not the client's: how soon this test's client reads the relayed
      // answer depends on the machine's load, when a answered does not.
      const answeredAt = slowAnswered.get('a') ?? Infinity;
      assert.ok(answeredAt <= drainedAt, 'drain resolved after the old request finished');
    });

    it('adds and removes targets', async (t) => {
      const { edge, url } = await startEdge(t);
      const [a, b] = await Promise.all([named(t, 'a'), named(t, 'b')]);
      await edge.apply([routeTo(a)], null);
      await edge.apply([routeTo(a), routeTo(b)], null);
      const both = await answers(url, 40);
      assert.ok((both.get('a') ?? 0) >= 10 && (both.get('b') ?? 0) >= 10, JSON.stringify([...both]));
      await edge.apply([routeTo(b)], null);
      assert.deepEqual([...(await answers(url, 20))], [['b', 20]]);
      await edge.drain([idOf(a)], 5000);
      const view = await edge.view();
      assert.deepEqual(
        view.map((v) => v.id),
        [idOf(b)],
        `the edge lists only what is routed: ${JSON.stringify(view)}`,
      );
    });

    it('splits traffic by the canary share', async (t) => {
      const { edge, url } = await startEdge(t);
      const [a, b] = await Promise.all([named(t, 'stable'), named(t, 'canary')]);
      await edge.apply([routeTo(a), routeTo(b, { canary: true })], {
        canaryPercent: 25,
        rules: [],
        sticky: 'baton',
      });
      const seen = await answers(url, 400);
      const share = (seen.get('canary') ?? 0) / 400;
      assert.ok(share > 0.15 && share < 0.35, `canary share ${share} for 25%`);
    });

    it('sends requests matching an A/B rule to the canary, where the edge can', async (t) => {
      const { edge, url } = await startEdge(t);
      const [a, b] = await Promise.all([named(t, 'stable'), named(t, 'canary')]);
      await edge.apply([routeTo(a)], null);
      const ab = { canaryPercent: 0, rules: [{ header: 'X-Beta', equals: 'yes' }], sticky: 'baton' as const };
      const routes = [routeTo(a), routeTo(b, { canary: true })];
      if (!edge.can.matchRules) {
        await assert.rejects(edge.apply(routes, ab), (err: unknown) => {
          assert.ok(err instanceof EdgeError);
          assert.match(err.message, /A\/B|match rules|header/i);
          return true;
        });
        assert.deepEqual([...(await answers(url, 5))], [['stable', 5]], 'a refused change changed nothing');
        return;
      }
      await edge.apply(routes, ab);
      assert.deepEqual([...(await answers(url, 10, { 'x-beta': 'yes' }))], [['canary', 10]]);
      assert.deepEqual([...(await answers(url, 10, { 'x-beta': 'no' }))], [['stable', 10]]);
      assert.deepEqual([...(await answers(url, 10))], [['stable', 10]]);
    });

    it('a backup takes traffic only while the primaries are down', async (t) => {
      const { edge, url } = await startEdge(t);
      const [a, b] = await Promise.all([named(t, 'primary'), named(t, 'backup')]);
      await edge.apply([routeTo(a), routeTo(b, { backup: true })], null);
      assert.deepEqual([...(await answers(url, 10))], [['primary', 10]]);
      await a.close();
      await waitFor(
        async () => {
          try {
            return (await body(url)) === 'backup';
          } catch {
            return false;
          }
        },
        { what: 'the backup to answer', timeout: 10_000 },
      );
    });

    it('fails no request, keep-alive or new-connection, through switches under load', async (t) => {
      const { edge, url } = await startEdge(t);
      const [a, b] = await Promise.all([named(t, 'a', { delayMs: 5 }), named(t, 'b', { delayMs: 5 })]);
      await edge.apply([routeTo(a)], null);
      const keepAlive = startLoad(url, { concurrency: 4, maxMs: 30_000, retryIdleClose: true });
      const newConn = startLoad(url, { concurrency: 4, maxMs: 30_000, keepAlive: false });
      try {
        await waitFor(() => keepAlive.result.ok > 50 && newConn.result.ok > 50, { what: 'load to flow' });
        let from = a;
        for (let i = 0; i < 6; i++) {
          const to = from === a ? b : a;
          await edge.apply([routeTo(to)], null);
          const sent = keepAlive.result.sent + newConn.result.sent;
          await waitFor(() => keepAlive.result.sent + newConn.result.sent > sent + 40, {
            what: 'load on the new set',
          });
          const [r] = await edge.drain([idOf(from)], 10_000);
          assert.equal(r?.drained, true);
          from = to;
        }
      } finally {
        await Promise.all([keepAlive.stop(), newConn.stop()]);
      }
      const [k, n] = [keepAlive.result, newConn.result];
      assert.ok(k.ok > 100 && n.ok > 100, `load flowed: ${k.ok} keep-alive, ${n.ok} new-connection`);
      assert.equal(n.failed, 0, `new-connection failures: ${n.failures.join('; ')}`);
      assert.equal(k.failed, 0, `keep-alive failures: ${k.failures.join('; ')}`);
      // nginx's old workers close idle keep-alive connections at a reload: a client that sends
      // on one at that instant gets no answer, and must send again (RFC 9112 §9.3.1; browsers
      // do, undici does not). Edges that switch without a reload never do that.
      t.diagnostic(`${kind}: ${k.idleCloses} keep-alive connection(s) closed before an answer`);
      if (kind !== 'nginx') assert.equal(k.idleCloses, 0, 'no idle connection closed under the client');
    });

    it('control: stopping the old set without waiting for drain does fail requests', async (t) => {
      const { edge, url } = await startEdge(t);
      // Slow answers: some are surely in flight on `a` when it is killed, after any edge's switch.
      const [a, b] = await Promise.all([named(t, 'a', { delayMs: 1000 }), named(t, 'b')]);
      await edge.apply([routeTo(a)], null);
      // POSTs: no edge may retry them elsewhere, so a cut shows as a failure.
      const load = startLoad(url, {
        concurrency: 8,
        maxMs: 20_000,
        keepAlive: false,
        method: 'POST',
        body: 'x',
      });
      try {
        await waitFor(() => a.seen.filter((s) => s.method === 'POST').length > 8, { what: 'load on a' });
        await edge.apply([routeTo(b)], null);
        // What a hand-written switch script does: kill the old process right after the reload.
        a.server.closeAllConnections();
        await a.close();
        await waitFor(() => load.result.failed > 0 || load.result.ok > 400, { what: 'the cut to show' });
      } finally {
        await load.stop();
      }
      assert.ok(load.result.failed > 0, 'requests in flight on the killed set failed');
    });
  });
}
