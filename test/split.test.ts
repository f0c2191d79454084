// The canary split of the built-in proxy, in process against real backends: the share by sticky
// bucket (Baton's own cookie, a user-named header), A/B rules, the fallback to stable when the
// canary side has nothing up, and when Baton hands out its cookie.
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { Agent, request } from 'undici';
import type { MatchSpec, RouteSpec, SplitSpec } from '../src/edge/edge.js';
import { BATON_COOKIE, bucketOf } from '../src/edge/builtin/split.js';
import { route, startBackend, startProxy, waitFor } from './helpers/index.js';

type Side = 'stable' | 'canary';

interface Answer {
  readonly status: number;
  readonly side: Side;
  /** Baton's bucket cookie when it set one ("baton_canary=N"), else null. */
  readonly cookie: string | null;
  /** Every Set-Cookie header of the answer. */
  readonly setCookies: string[];
}

interface Rig {
  readonly url: string;
  /** Routes: one stable and one canary backend, with this split (null: none). */
  split(spec: Partial<SplitSpec> | null): void;
  get(headers?: Record<string, string>): Promise<Answer>;
}

const split = (spec: Partial<SplitSpec>): SplitSpec => ({
  canaryPercent: 0,
  rules: [],
  sticky: 'baton',
  ...spec,
});

function setCookiesOf(h: string | string[] | undefined): string[] {
  return h === undefined ? [] : Array.isArray(h) ? h : [h];
}

/** A stable and a canary backend behind an in-process proxy; the split is set per test. */
async function rig(t: TestContext): Promise<Rig> {
  const stable = await startBackend(t, 'stable');
  const canary = await startBackend(t, 'canary');
  const routes: RouteSpec[] = [
    route(stable.port, 1, { version: '1.0.0' }),
    route(canary.port, 1, { version: '2.0.0', canary: true }),
  ];
  const { proxy, url } = await startProxy(t, routes);
  const agent = new Agent({ connections: 16, keepAliveTimeout: 10_000 });
  t.after(() => agent.close());
  return {
    url,
    split: (spec) => void proxy.setRoutes(routes, spec === null ? null : split(spec)),
    get: async (headers = {}) => {
      const res = await request(`${url}/`, { dispatcher: agent, headers });
      const body = await res.body.text();
      assert.equal(res.statusCode, 200, body);
      assert.ok(body === 'stable' || body === 'canary', body);
      const setCookies = setCookiesOf(res.headers['set-cookie']);
      const ours = setCookies.find((c) => c.startsWith(`${BATON_COOKIE}=`));
      return { status: res.statusCode, side: body, cookie: ours ? ours.split(';')[0]! : null, setCookies };
    },
  };
}

/** `n` requests, `concurrency` at a time. */
async function many<T>(n: number, concurrency: number, one: (i: number) => Promise<T>): Promise<T[]> {
  const out = new Array<T>(n);
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) {
        const i = next++;
        out[i] = await one(i);
      }
    }),
  );
  return out;
}

const bucketIn = (cookie: string): number => Number(cookie.split('=')[1]);

describe('canary share by Baton cookie', () => {
  it('sends about canaryPercent of cookie-less clients to the canary, each by the bucket it is given', async (t) => {
    const r = await rig(t);
    r.split({ canaryPercent: 20 });
    const answers = await many(2000, 16, () => r.get());
    const canary = answers.filter((a) => a.side === 'canary').length;
    // Binomial(2000, 0.2): sd ~18; 300..500 is over 5 sd either way.
    assert.ok(canary >= 300 && canary <= 500, `${canary} of 2000 on the canary at 20%`);
    for (const a of answers) {
      // Every new client gets a bucket, and its side is that bucket's side.
      assert.ok(a.cookie, 'a client without the cookie is given one');
      assert.match(a.cookie, /^baton_canary=\d{1,4}$/);
      assert.equal(a.side, bucketIn(a.cookie) < 2000 ? 'canary' : 'stable', a.cookie);
    }
    // The buckets are spread over 0..9999, not bunched.
    const buckets = answers.map((a) => bucketIn(a.cookie!));
    assert.ok(Math.min(...buckets) < 500 && Math.max(...buckets) > 9500);
  });

  it('keeps every cookie client on its side as the share grows 10 -> 50 -> 90: only stable -> canary', async (t) => {
    const r = await rig(t);
    r.split({ canaryPercent: 10 });
    const clients = (await many(300, 16, () => r.get())).map((a) => ({
      cookie: a.cookie!,
      sides: [a.side],
    }));
    for (const percent of [10, 50, 90]) {
      r.split({ canaryPercent: percent });
      // Three requests per client at each share, interleaved with everyone else's.
      const answers = await many(clients.length * 3, 16, (i) =>
        r.get({ cookie: clients[i % clients.length]!.cookie }),
      );
      answers.forEach((a, i) => {
        const c = clients[i % clients.length]!;
        assert.equal(a.cookie, null, `${c.cookie} already has a bucket: no new cookie`);
        assert.equal(
          a.side,
          bucketIn(c.cookie) < percent * 100 ? 'canary' : 'stable',
          `${c.cookie} at ${percent}%`,
        );
        c.sides.push(a.side);
      });
    }
    for (const c of clients) {
      // One switch at most, and only stable -> canary.
      const first = c.sides.indexOf('canary');
      if (first >= 0)
        assert.ok(
          c.sides.slice(first).every((s) => s === 'canary'),
          `${c.cookie}: ${c.sides.join(' ')}`,
        );
    }
    const canaryAt = (k: number): number => clients.filter((c) => c.sides[k] === 'canary').length;
    // sides: [first answer at 10%, 3 at 10%, 3 at 50%, 3 at 90%]
    assert.ok(canaryAt(1) < canaryAt(4) && canaryAt(4) < canaryAt(7), 'the canary side grew');
    assert.ok(canaryAt(7) > 230, `${canaryAt(7)} of 300 on the canary at 90%`);
  });

  it('compares the bucket with the share at the exact threshold, and old canary buckets stay canary', async (t) => {
    const r = await rig(t);
    const sideOf = async (bucket: string): Promise<Side> => {
      const a = await r.get({ cookie: `other=1; ${BATON_COOKIE}=${bucket}; more=2` });
      assert.equal(a.cookie, null, `bucket ${bucket} is valid: no new cookie`);
      return a.side;
    };
    const expect = async (cases: [string, Side][]): Promise<void> => {
      for (const [bucket, side] of cases) assert.equal(await sideOf(bucket), side, `bucket ${bucket}`);
    };
    r.split({ canaryPercent: 0 });
    await expect([
      ['0', 'stable'],
      ['9999', 'stable'],
    ]);
    r.split({ canaryPercent: 10 });
    await expect([
      ['0', 'canary'],
      ['999', 'canary'],
      ['0999', 'canary'],
      ['1000', 'stable'],
      ['9999', 'stable'],
    ]);
    r.split({ canaryPercent: 50 });
    await expect([
      ['0', 'canary'],
      ['999', 'canary'],
      ['1000', 'canary'],
      ['4999', 'canary'],
      ['5000', 'stable'],
    ]);
    r.split({ canaryPercent: 90 });
    await expect([
      ['999', 'canary'],
      ['4999', 'canary'],
      ['8999', 'canary'],
      ['9000', 'stable'],
    ]);
    r.split({ canaryPercent: 12.5 });
    await expect([
      ['1249', 'canary'],
      ['1250', 'stable'],
    ]);
    r.split({ canaryPercent: 100 });
    await expect([
      ['0', 'canary'],
      ['9999', 'canary'],
    ]);
  });
});

describe('sticky header', () => {
  it('maps a user to the same side every time; a larger share only adds users', async (t) => {
    const r = await rig(t);
    const users = Array.from({ length: 200 }, (_, i) => `user-${i}`);
    let before = new Set<string>();
    for (const percent of [10, 50, 90]) {
      r.split({ canaryPercent: percent, sticky: { header: 'X-User' } });
      const answers = await many(users.length * 3, 16, (i) => r.get({ 'x-user': users[i % users.length]! }));
      const sides = new Map<string, Set<Side>>();
      answers.forEach((a, i) => {
        const u = users[i % users.length]!;
        assert.equal(a.cookie, null, 'no Baton cookie with a sticky header');
        assert.equal(a.side, bucketOf(u) < percent * 100 ? 'canary' : 'stable', `${u} at ${percent}%`);
        sides.set(u, (sides.get(u) ?? new Set()).add(a.side));
      });
      for (const [u, s] of sides) assert.equal(s.size, 1, `${u} saw both sides at ${percent}%`);
      const now = new Set(users.filter((u) => sides.get(u)!.has('canary')));
      for (const u of before) assert.ok(now.has(u), `${u} was on the canary and went back at ${percent}%`);
      assert.ok(now.size > before.size, `the canary side grew at ${percent}% (${now.size})`);
      before = now;
    }
    // A plausible share of 200 users at 90%.
    assert.ok(before.size > 150, `${before.size} of 200 users on the canary at 90%`);
  });

  it('keeps a user on one side with a sticky cookie of the app', async (t) => {
    const r = await rig(t);
    r.split({ canaryPercent: 50, sticky: { cookie: 'session' } });
    for (const s of ['a1', 'b2', 'c3', 'd4', 'e5', 'f6']) {
      const sides = new Set<Side>();
      for (let i = 0; i < 5; i++) {
        const a = await r.get({ cookie: `theme=dark; session=${s}` });
        assert.equal(a.cookie, null);
        sides.add(a.side);
      }
      assert.deepEqual([...sides], [bucketOf(s) < 5000 ? 'canary' : 'stable'], `session ${s}`);
    }
  });
});

describe('A/B rules', () => {
  it('routes header equals / prefix / regex and cookie equals exactly as configured, at 0% share', async (t) => {
    const r = await rig(t);
    const rules: MatchSpec[] = [
      { header: 'X-Beta', equals: 'yes' },
      { header: 'x-tier', prefix: 'gold' },
      { header: 'x-email', regex: '@example\\.com$' },
      { cookie: 'beta', equals: '1' },
    ];
    r.split({ canaryPercent: 0, rules });
    const cases: [Record<string, string>, Side][] = [
      [{}, 'stable'],
      [{ 'x-beta': 'yes' }, 'canary'],
      [{ 'X-BETA': 'yes' }, 'canary'],
      [{ 'x-beta': 'YES' }, 'stable'],
      [{ 'x-beta': 'yes please' }, 'stable'],
      [{ 'x-beta': '' }, 'stable'],
      [{ 'x-tier': 'gold' }, 'canary'],
      [{ 'x-tier': 'gold-plus' }, 'canary'],
      [{ 'x-tier': 'rose-gold' }, 'stable'],
      [{ 'x-tier': 'Gold' }, 'stable'],
      [{ 'x-email': 'ann@example.com' }, 'canary'],
      [{ 'x-email': 'ann@example.com.evil.net' }, 'stable'],
      [{ 'x-email': 'ann@exampleXcom' }, 'stable'],
      [{ cookie: 'beta=1' }, 'canary'],
      [{ cookie: 'theme=dark; beta=1; x=2' }, 'canary'],
      [{ cookie: 'beta=10' }, 'stable'],
      [{ cookie: 'notbeta=1' }, 'stable'],
      [{ 'x-other': 'yes', cookie: 'beta=0' }, 'stable'],
      // The rules go before the bucket: a client whose bucket says stable still matches.
      [{ 'x-beta': 'yes', cookie: `${BATON_COOKIE}=9999` }, 'canary'],
    ];
    for (let round = 0; round < 3; round++) {
      for (const [headers, side] of cases) {
        assert.equal((await r.get(headers)).side, side, JSON.stringify(headers));
      }
    }
  });

  it('matches the client address by CIDR range or single address', async (t) => {
    const r = await rig(t);
    const sides = async (): Promise<Side[]> => (await many(20, 4, () => r.get())).map((a) => a.side);
    const only = async (ip: string, side: Side): Promise<void> => {
      r.split({ canaryPercent: 0, rules: [{ ip }] });
      assert.deepEqual([...new Set(await sides())], [side], `ip ${ip}`);
    };
    await only('127.0.0.0/8', 'canary');
    await only('127.0.0.1', 'canary');
    await only('10.0.0.0/8', 'stable');
    await only('127.0.0.2', 'stable');
    await only('::1', 'stable');
    // With a share, an address outside the rule goes by its bucket.
    r.split({ canaryPercent: 100, rules: [{ ip: '10.0.0.0/8' }] });
    assert.deepEqual([...new Set(await sides())], ['canary']);
  });
});

describe('canary side down', () => {
  it('sends the canary share to stable when the canary target does not answer (no failure)', async (t) => {
    const stable = await startBackend(t, 'stable');
    const canary = await startBackend(t, 'canary');
    const routes = [route(stable.port), route(canary.port, 1, { canary: true })];
    const { proxy, url } = await startProxy(t, routes);
    proxy.setRoutes(routes, split({ canaryPercent: 100 }));
    assert.equal(await (await request(url)).body.text(), 'canary');
    await canary.close();
    // Connection refused on the canary: the retry goes to stable, and the passive check then
    // takes the canary out for failTimeout.
    const answers = await many(50, 4, async () => {
      const res = await request(url, { reset: true });
      return `${res.statusCode} ${await res.body.text()}`;
    });
    assert.deepEqual([...new Set(answers)], ['200 stable']);
  });

  it('sends everything to stable when the canary fails its health checks or has no target', async (t) => {
    const stable = await startBackend(t, 'stable');
    let sick = false;
    const canary = await startBackend(t, 'canary', (req, res) => {
      if (req.url === '/health') res.writeHead(sick ? 503 : 200);
      res.end('canary');
    });
    const routes = [route(stable.port), route(canary.port, 1, { canary: true })];
    const { proxy, url } = await startProxy(
      t,
      routes,
      'healthCheck: { path: /health, interval: 50ms, timeout: 500ms, healthyThreshold: 1, unhealthyThreshold: 1 }\n',
    );
    proxy.setRoutes(routes, split({ canaryPercent: 100 }));
    const body = async (): Promise<string> => (await request(url, { reset: true })).body.text();
    await waitFor(async () => (await body()) === 'canary', { what: 'the canary to serve' });
    sick = true;
    await waitFor(() => proxy.view().find((v) => v.id.endsWith(`:${canary.port}`))?.health === 'unhealthy', {
      what: 'the canary to be marked unhealthy',
    });
    const before = canary.seen.filter((s) => s.url !== '/health').length;
    const answers = await many(30, 4, async () => {
      const res = await request(url, { reset: true });
      return `${res.statusCode} ${await res.body.text()}`;
    });
    assert.deepEqual([...new Set(answers)], ['200 stable']);
    assert.equal(
      canary.seen.filter((s) => s.url !== '/health').length,
      before,
      'no request reached the sick canary',
    );
    // A split with no canary target at all.
    proxy.setRoutes([route(stable.port)], split({ canaryPercent: 100, rules: [{ header: 'x-beta' }] }));
    for (let i = 0; i < 10; i++) {
      const res = await request(url, { reset: true, headers: { 'x-beta': '1' } });
      assert.equal(`${res.statusCode} ${await res.body.text()}`, '200 stable');
    }
  });
});

describe('Baton cookie', () => {
  it('is set only for clients without a valid one, beside the app cookies', async (t) => {
    const stable = await startBackend(t, 'stable', (_req, res) => {
      res.setHeader('set-cookie', 'session=abc; Path=/');
      res.end('stable');
    });
    const canary = await startBackend(t, 'canary', (_req, res) => {
      res.setHeader('set-cookie', 'session=xyz; Path=/');
      res.end('canary');
    });
    const routes = [route(stable.port), route(canary.port, 1, { canary: true })];
    const { proxy, url } = await startProxy(t, routes);
    proxy.setRoutes(routes, split({ canaryPercent: 50 }));
    const get = async (cookie?: string): Promise<string[]> => {
      const res = await request(url, { headers: cookie === undefined ? {} : { cookie } });
      await res.body.text();
      return setCookiesOf(res.headers['set-cookie']);
    };
    const first = await get();
    const ours = first.filter((c) => c.startsWith(`${BATON_COOKIE}=`));
    assert.equal(ours.length, 1, first.join(' | '));
    assert.match(ours[0]!, /^baton_canary=\d{1,4}; Path=\/; Max-Age=\d+; HttpOnly; SameSite=Lax$/);
    assert.ok(
      first.some((c) => c.startsWith('session=')),
      'the app cookie is still there',
    );
    const cookie = ours[0]!.split(';')[0]!;
    for (let i = 0; i < 5; i++) {
      const again = await get(`session=abc; ${cookie}`);
      assert.deepEqual(
        again.filter((c) => c.startsWith(`${BATON_COOKIE}=`)),
        [],
        'a client with a valid cookie is not given another',
      );
      assert.equal(again.length, 1, 'the app cookie is passed on');
    }
    for (const bad of ['', 'abc', '-1', '10000', '12345', '1.5', '12a']) {
      const again = await get(`${BATON_COOKIE}=${bad}`);
      assert.equal(
        again.filter((c) => c.startsWith(`${BATON_COOKIE}=`)).length,
        1,
        `a client with baton_canary="${bad}" is given a valid one`,
      );
    }
    // No split, no cookie.
    proxy.setRoutes(routes);
    assert.deepEqual(
      (await get()).filter((c) => c.startsWith(`${BATON_COOKIE}=`)),
      [],
      'no Baton cookie without a split',
    );
  });
});
