// The nginx edge against a real nginx (started per test by helpers/nginx.ts) and real backends:
// the file it renders (and that nginx -t accepts), switches confirmed by new workers, drains
// that wait for the old workers, refusals that leave the previous routes serving, A/B rules,
// weights, Baton's own health checks and slow start.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { pino } from 'pino';
import { Agent, request } from 'undici';
import { edgeSchema, type BalanceConfig, type HealthConfig } from '../src/config/schema.js';
import { splitCommand } from '../src/process/command.js';
import { EdgeError, type EdgeOptions, type RouteSpec } from '../src/edge/edge.js';
import { isAlive, NginxEdge } from '../src/edge/nginx/nginx.js';
import { fileHeader, renderUpstream, type UpstreamState } from '../src/edge/nginx/render.js';
import { isBatonError } from '../src/errors.js';
import { silentLogger, type Logger } from '../src/log.js';
import { startBackend, waitFor, type Backend } from './helpers/index.js';
import { answers, edgeOptions, idOf, routeTo } from './helpers/edges.js';
import { NGINX, startNginx, type NginxEdgeInput, type NginxProcess } from './helpers/nginx.js';

const ROUND_ROBIN: BalanceConfig = { algorithm: 'round-robin' };

function edgeFor(
  t: TestContext,
  n: NginxProcess,
  {
    edge = {},
    balance = ROUND_ROBIN,
    health = null,
    log = silentLogger(),
  }: {
    edge?: Partial<NginxEdgeInput>;
    balance?: BalanceConfig;
    health?: HealthConfig | null;
    log?: Logger;
  } = {},
): NginxEdge {
  const cfg = edgeSchema.parse({ ...n.edgeConfig, ...edge });
  assert.equal(cfg.type, 'nginx');
  const opts: EdgeOptions = { ...edgeOptions(), balance, health, baseDir: n.prefix, log };
  const e = new NginxEdge(cfg, opts);
  t.after(() => e.close());
  return e;
}

/** When each backend (by name) finished its last `/slow` answer, by its own clock. */
const slowEnded = new Map<string, number>();

/** A backend answering its name; `/slow` after `slowMs`. */
function named(t: TestContext, name: string, slowMs = 1500): Promise<Backend> {
  return startBackend(t, name, (req: IncomingMessage, res: ServerResponse) => {
    if (req.url === '/slow') {
      setTimeout(() => {
        res.end(`slow ${name}`);
        slowEnded.set(name, Date.now());
      }, slowMs);
    } else res.end(name);
  });
}

/** One request through nginx on a new connection (keep-alive would pin it to one worker). */
async function get(n: NginxProcess, urlPath = '/', headers: Record<string, string> = {}): Promise<string> {
  const res = await request(`http://127.0.0.1:${n.port}${urlPath}`, {
    headers: { ...headers, connection: 'close' },
    reset: true,
  });
  const body = await res.body.text();
  assert.equal(res.statusCode, 200, `GET ${urlPath}: ${res.statusCode} ${body}`);
  return body;
}

const tally = (
  n: NginxProcess,
  count: number,
  headers: Record<string, string> = {},
): Promise<Map<string, number>> => answers(`http://127.0.0.1:${n.port}/`, count, headers);

const upstreamText = (n: NginxProcess): string => readFileSync(n.upstreamFile, 'utf8');
const generationOf = (text: string): number => Number(/# generation (\d+),/.exec(text)?.[1] ?? -1);

/** Runs a command line of the edge config (nginx -t) as Baton would: no shell. */
function runCommand(line: string): { status: number | null; output: string } {
  const [bin, ...args] = splitCommand(line);
  const r = spawnSync(bin!, args, { encoding: 'utf8' });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

function rejectsWith(pattern: RegExp): (err: unknown) => boolean {
  return (err) => {
    assert.ok(err instanceof EdgeError, `expected an EdgeError, got ${String(err)}`);
    assert.match(err.message, pattern);
    return true;
  };
}

test('renders the upstream file, and nginx -t accepts every variant', async (t) => {
  const n = await startNginx(t, { workers: 1 });
  const base: UpstreamState = {
    service: 'web',
    routes: [],
    split: null,
    balance: ROUND_ROBIN,
    keepalive: 16,
    down: new Set(),
    ramp: new Map(),
  };
  const r = (port: number, extra: Partial<RouteSpec> = {}): RouteSpec => ({
    host: '127.0.0.1',
    port,
    weight: 1,
    ...extra,
  });
  const variants: { name: string; state: UpstreamState; expect: string[]; absent?: string[] }[] = [
    {
      name: 'least-conn with a backup',
      state: {
        ...base,
        balance: { algorithm: 'least-conn' },
        routes: [r(9001, { weight: 2, maxFails: 3, failTimeoutMs: 1500 }), r(9002, { backup: true })],
      },
      expect: [
        'upstream web {\n    least_conn;\n',
        '    server 127.0.0.1:9001 weight=2 max_fails=3 fail_timeout=2s;\n',
        '    server 127.0.0.1:9002 weight=1 max_fails=1 fail_timeout=10s backup;\n',
        '    keepalive 16;\n}',
        'map "" $baton_web {\n    default web;\n}',
      ],
      absent: ['upstream web_canary'],
    },
    {
      name: 'a 25% canary, sticky on a header, with a backup',
      state: {
        ...base,
        routes: [r(9001), r(9002), r(9003, { canary: true }), r(9004, { backup: true })],
        split: { canaryPercent: 25, rules: [], sticky: { header: 'X-User' } },
      },
      expect: [
        'map $http_x_user $baton_web_sticky {\n    "" $request_id;\n    default $http_x_user;\n}',
        // 2 stable at 3, 1 canary at 2: 2 / (6 + 2) = 25%
        [
          'upstream web {',
          '    hash $baton_web_sticky consistent;',
          "    # backup servers left out: nginx's hash balancing has no backup servers",
          '    server 127.0.0.1:9001 weight=3 max_fails=1 fail_timeout=10s;',
          '    server 127.0.0.1:9002 weight=3 max_fails=1 fail_timeout=10s;',
          '    server 127.0.0.1:9003 weight=2 max_fails=1 fail_timeout=10s;',
          '    keepalive 16;',
          '}',
        ].join('\n'),
        // The canary upstream (round-robin) falls back on everyone else.
        [
          'upstream web_canary {',
          '    server 127.0.0.1:9003 weight=1 max_fails=1 fail_timeout=10s;',
          '    server 127.0.0.1:9001 weight=1 max_fails=1 fail_timeout=10s backup;',
          '    server 127.0.0.1:9002 weight=1 max_fails=1 fail_timeout=10s backup;',
          '    server 127.0.0.1:9004 weight=1 max_fails=1 fail_timeout=10s backup;',
          '    keepalive 16;',
          '}',
        ].join('\n'),
      ],
    },
    {
      name: 'A/B rules of every kind',
      state: {
        ...base,
        routes: [r(9001), r(9002, { canary: true })],
        split: {
          canaryPercent: 0,
          sticky: 'baton',
          rules: [
            { header: 'X-Beta', equals: 'yes' },
            { header: 'X-Version', prefix: 'v1.2 (beta)*' },
            { header: 'User-Agent', regex: '^Mozilla/\\d+ "q\\\\' },
            { cookie: 'plan', equals: 'default' },
            { cookie: 'ab-test' },
            { ip: '10.0.0.0/8' },
            { ip: 'fd00::/8' },
          ],
        },
      },
      expect: [
        'upstream web {\n    server 127.0.0.1:9001 weight=1 max_fails=1 fail_timeout=10s;\n    keepalive 16;\n}',
        'upstream web_canary {\n    server 127.0.0.1:9002 weight=1 ',
        'map $http_x_beta $baton_web_r0 {\n    default 0;\n    "~^yes$" 1;\n}',
        'map $http_x_version $baton_web_r1 {\n    default 0;\n    "~^v1\\\\.2 \\\\(beta\\\\)\\\\*" 1;\n}',
        'map $http_user_agent $baton_web_r2 {\n    default 0;\n    "~^Mozilla/\\\\d+ \\"q\\\\\\\\" 1;\n}',
        'map $cookie_plan $baton_web_r3 {\n    default 0;\n    "~^default$" 1;\n}',
        'map $http_cookie $baton_web_r4_cookie {',
        'map $baton_web_r4_cookie $baton_web_r4 {\n    default 1;\n    "" 0;\n}',
        'geo $baton_web_r5 {\n    default 0;\n    10.0.0.0/8 1;\n}',
        'geo $baton_web_r6 {\n    default 0;\n    fd00::/8 1;\n}',
        'map "$baton_web_r0$baton_web_r1$baton_web_r2$baton_web_r3$baton_web_r4$baton_web_r5$baton_web_r6" $baton_web {\n    default web;\n    "~1" web_canary;\n}',
      ],
    },
    {
      name: 'no routes',
      state: base,
      expect: [
        'upstream web {\n    # no targets: a placeholder that is down',
        '    server 127.0.0.1:1 down;\n',
      ],
    },
    {
      name: 'an IPv6 target, hashed on a cookie nginx cannot name',
      state: {
        ...base,
        balance: { algorithm: 'hash', hashKey: 'cookie:session-id' },
        routes: [{ host: '::1', port: 9001, weight: 1 }],
      },
      expect: [
        'map $http_cookie $baton_web_hash_cookie {\n    default "";\n    "~(?:^|;\\\\s*)session-id=(?<baton_web_hash_cookie_value>[^;]*)" $baton_web_hash_cookie_value;\n}',
        'map $baton_web_hash_cookie $baton_web_hash {\n    "" $request_id;\n',
        'upstream web {\n    hash $baton_web_hash consistent;\n    server [::1]:9001 weight=1 ',
      ],
    },
    {
      name: 'hashed on the client address, one target down and one in slow start',
      state: {
        ...base,
        balance: { algorithm: 'hash', hashKey: 'ip' },
        routes: [r(9001), r(9002, { weight: 2 }), r(9003, { backup: true })],
        down: new Set(['127.0.0.1:9001']),
        ramp: new Map([['127.0.0.1:9002', 1]]),
      },
      expect: [
        '    hash $remote_addr consistent;\n',
        '    server 127.0.0.1:9001 weight=4 max_fails=1 fail_timeout=10s down;  # failing health checks\n',
        '    server 127.0.0.1:9002 weight=2 max_fails=1 fail_timeout=10s;  # slow start 1/4\n',
      ],
      absent: ['9003'],
    },
  ];
  for (const v of variants) {
    const text = fileHeader('web', 1, new Date()) + '\n' + renderUpstream(v.state);
    for (const line of v.expect) assert.ok(text.includes(line), `${v.name}: expected\n${line}\nin\n${text}`);
    for (const line of v.absent ?? [])
      assert.ok(!text.includes(line), `${v.name}: unexpected\n${line}\nin\n${text}`);
    writeFileSync(n.upstreamFile, text);
    const check = runCommand(n.edgeConfig.test);
    assert.equal(check.status, 0, `${v.name}: nginx -t refused\n${text}\n${check.output}`);
  }
  // A header nginx has no variable for is refused before anything is written.
  assert.throws(
    () =>
      renderUpstream({
        ...base,
        routes: [r(9001), r(9002, { canary: true })],
        split: { canaryPercent: 0, sticky: 'baton', rules: [{ header: 'X.Beta' }] },
      }),
    rejectsWith(/header "X\.Beta" cannot be read by nginx/),
  );
});

test('apply switches every new request from A to B, keep-alive or not', async (t) => {
  const n = await startNginx(t);
  const [a, b] = await Promise.all([named(t, 'a'), named(t, 'b')]);
  const edge = edgeFor(t, n);
  await edge.start();
  await edge.apply([routeTo(a)], null);
  assert.deepEqual([...(await tally(n, 10))], [['a', 10]]);
  const agent = new Agent({ connections: 1 });
  t.after(() => agent.close());
  const viaKeepAlive = async (): Promise<string> =>
    (await request(`http://127.0.0.1:${n.port}/`, { dispatcher: agent })).body.text();
  assert.equal(await viaKeepAlive(), 'a');

  await edge.apply([routeTo(b)], null);
  assert.deepEqual([...(await tally(n, 30))], [['b', 30]]);
  // The old worker closed its idle keep-alive connection: the client is on b too.
  for (let i = 0; i < 5; i++) assert.equal(await viaKeepAlive(), 'b');
  assert.match(upstreamText(n), new RegExp(`server ${idOf(b)} weight=1 `));
  assert.deepEqual(
    (await edge.view()).map((v) => [v.id, v.version, v.health]),
    [[idOf(b), 'b', 'unknown']],
  );
});

test('a request in flight on A finishes after the switch, and drain waits for it', async (t) => {
  const n = await startNginx(t);
  const [a, b] = await Promise.all([named(t, 'a'), named(t, 'b')]);
  const edge = edgeFor(t, n);
  await edge.apply([routeTo(a)], null);
  let slowDoneAt = 0;
  const slow = get(n, '/slow').then((body) => {
    slowDoneAt = Date.now();
    return body;
  });
  await waitFor(() => a.seen.some((s) => s.url === '/slow'), { what: 'the slow request on a' });
  const oldWorkers = n.workers();

  await edge.apply([routeTo(b)], null);
  assert.equal(slowDoneAt, 0, 'apply did not wait for the request in flight');
  assert.deepEqual([...(await tally(n, 10))], [['b', 10]]);
  await assert.rejects(
    edge.drain([idOf(b)], 100),
    (err: unknown) => isBatonError(err) && err.code === 'BATON_E_CONFLICT',
  );

  // A short drain gives up at its timeout, never later.
  const [early] = await edge.drain([idOf(a)], 200);
  assert.equal(early?.drained, false);
  assert.ok(early.inflightLeft >= 1, JSON.stringify(early));
  assert.ok(early.waitedMs >= 200 && early.waitedMs < 400, JSON.stringify(early));

  const [done] = await edge.drain([idOf(a)], 5000);
  const drainedAt = Date.now();
  assert.deepEqual({ ...done, waitedMs: 0 }, { id: idOf(a), drained: true, waitedMs: 0, inflightLeft: 0 });
  assert.ok(done!.waitedMs > 200, `drain waited for the request: ${JSON.stringify(done)}`);
  assert.equal(await slow, 'slow a');
  // The backend's clock, not the client's receipt (which may come a moment after nginx's old
  // worker has sent it and exited): the drain resolved after the request was answered.
  const answeredAt = slowEnded.get('a') ?? Infinity;
  assert.ok(slowDoneAt > 0 && answeredAt <= drainedAt, 'drain resolved after the request finished');
  for (const w of oldWorkers) assert.equal(isAlive(w), false, `old worker ${w.pid} is gone`);
  // Nothing left to wait for the second time.
  const [again] = await edge.drain([idOf(a)], 1000);
  assert.equal(again?.drained, true);
  assert.ok(again.waitedMs < 100);
});

test('nginx -t refusing the config: EdgeError with its output, file and traffic unchanged', async (t) => {
  const n = await startNginx(t);
  const [a, b] = await Promise.all([named(t, 'a'), named(t, 'b')]);
  await edgeFor(t, n).apply([routeTo(a)], null);
  const before = upstreamText(n);
  const broken = path.join(n.prefix, 'broken.conf');
  writeFileSync(
    broken,
    `pid ${n.pidFile};\nevents {}\nhttp {\n    include ${n.upstreamFile};\n    no_such_directive on;\n}\n`,
  );
  const test = `${NGINX} -p ${n.prefix}/ -c ${broken} -e ${n.errorLog} -t`;
  const edge = edgeFor(t, n, { edge: { test } });
  await assert.rejects(edge.apply([routeTo(b)], null), (err: unknown) => {
    assert.ok(err instanceof EdgeError);
    assert.ok(err.message.includes(test), err.message);
    assert.ok(err.message.includes(n.upstreamFile), err.message);
    assert.match(err.message, /\[emerg\] unknown directive "no_such_directive"/);
    assert.match(err.message, /traffic stays on the previous routes/);
    return true;
  });
  assert.equal(upstreamText(n), before);
  assert.deepEqual([...(await tally(n, 10))], [['a', 10]]);
});

test('a reload command that fails: EdgeError, file put back, traffic unchanged', async (t) => {
  const n = await startNginx(t);
  const [a, b] = await Promise.all([named(t, 'a'), named(t, 'b')]);
  await edgeFor(t, n).apply([routeTo(a)], null);
  const before = upstreamText(n);
  for (const [reload, status] of [
    ['false', /`false` failed \(exit 1\)/],
    ['/nonexistent/nginx -s reload', /`\/nonexistent\/nginx -s reload` failed: command not found/],
  ] as const) {
    const edge = edgeFor(t, n, { edge: { reload } });
    await assert.rejects(edge.apply([routeTo(b)], null), rejectsWith(status));
    assert.equal(upstreamText(n), before, `after ${reload}`);
  }
  assert.deepEqual([...(await tally(n, 10))], [['a', 10]]);
});

test('a reload nginx never carries out: no new workers, so the file is put back', async (t) => {
  const n = await startNginx(t);
  const [a, b] = await Promise.all([named(t, 'a'), named(t, 'b')]);
  await edgeFor(t, n).apply([routeTo(a)], null);
  const before = upstreamText(n);
  const workers = n.workers().map((w) => w.pid);
  // `true` exits 0 without signalling nginx, as a reload nginx refuses at runtime looks.
  const edge = edgeFor(t, n, { edge: { reload: 'true', reloadTimeout: '500ms' } });
  const started = Date.now();
  await assert.rejects(
    edge.apply([routeTo(b)], null),
    rejectsWith(
      /no new worker processes within 500ms of `true` \(master pid \d+\)[\s\S]*error log ends with/,
    ),
  );
  assert.ok(Date.now() - started < 2000, 'gave up at reloadTimeout');
  assert.equal(upstreamText(n), before);
  assert.deepEqual(
    n.workers().map((w) => w.pid),
    workers,
  );
  assert.deepEqual([...(await tally(n, 10))], [['a', 10]]);
});

test('an upstream file Baton cannot write: EdgeError naming the file, nginx untouched', async (t) => {
  const n = await startNginx(t);
  const a = await named(t, 'a');
  const workers = n.workers().map((w) => w.pid);
  const missing = path.join(n.prefix, 'no-such-dir', 'web.conf');
  const edge = edgeFor(t, n, { edge: { upstreamFile: missing } });
  const fails = rejectsWith(
    new RegExp(`cannot write the nginx upstream file ${missing}: ENOENT; the folder .* does not exist`),
  );
  await assert.rejects(edge.start(), fails);
  await assert.rejects(edge.apply([routeTo(a)], null), fails);
  assert.deepEqual(
    n.workers().map((w) => w.pid),
    workers,
  );
});

test(
  'an upstream folder without write permission: EdgeError saying so',
  { skip: process.getuid?.() === 0 && 'root writes through file permissions' },
  async (t) => {
    const n = await startNginx(t);
    const a = await named(t, 'a');
    const dir = path.join(n.prefix, 'locked');
    mkdirSync(dir);
    chmodSync(dir, 0o555);
    const edge = edgeFor(t, n, { edge: { upstreamFile: path.join(dir, 'web.conf') } });
    const fails = rejectsWith(
      /cannot write the nginx upstream file .*locked\/web\.conf: EACCES; give the user running Baton write access/,
    );
    await assert.rejects(edge.start(), fails);
    await assert.rejects(edge.apply([routeTo(a)], null), fails);
  },
);

test('start() checks nginx, its pid file and the folder, and writes nothing', async (t) => {
  const n = await startNginx(t);
  const before = upstreamText(n);
  await edgeFor(t, n).start();
  assert.equal(upstreamText(n), before);
  await assert.rejects(
    edgeFor(t, n, { edge: { pidFile: 'missing.pid' } }).start(),
    rejectsWith(
      new RegExp(
        `nginx is not running \\(pid file ${n.prefix}/missing\\.pid: ENOENT\\): start nginx before Baton`,
      ),
    ),
  );
  await assert.rejects(
    edgeFor(t, n, { edge: { test: 'no-such-nginx -t' } }).start(),
    rejectsWith(/^nginx not found: "no-such-nginx"/),
  );
  // A stopped nginx leaves a stale pid file behind, or none.
  writeFileSync(path.join(n.prefix, 'stale.pid'), `${n.pid}\n`);
  await n.stop();
  await assert.rejects(
    edgeFor(t, n, { edge: { pidFile: 'stale.pid' } }).start(),
    rejectsWith(/nginx is not running .*stale\.pid: no process/),
  );
});

test('A/B rules send matching requests to the canary, the rest to stable', async (t) => {
  const n = await startNginx(t);
  const [a, b] = await Promise.all([named(t, 'stable'), named(t, 'canary')]);
  const edge = edgeFor(t, n);
  const routes = [routeTo(a), routeTo(b, { canary: true })];
  await edge.apply(routes, {
    canaryPercent: 0,
    sticky: 'baton',
    rules: [
      { header: 'X-Beta', equals: 'yes' },
      { header: 'X-Version', prefix: 'v2.0*' },
      { header: 'X-Tag', regex: '^(rc|beta)-\\d+$' },
      { cookie: 'ab-test' },
      { ip: '10.0.0.0/8' },
    ],
  });
  const side = async (headers: Record<string, string>): Promise<string> =>
    [...(await tally(n, 4, headers)).keys()].join();
  assert.equal(await side({ 'x-beta': 'yes' }), 'canary');
  assert.equal(await side({ 'x-beta': 'YES' }), 'stable', 'equals is case-sensitive');
  assert.equal(await side({ 'x-version': 'v2.0*-build7' }), 'canary');
  assert.equal(await side({ 'x-version': 'v2x0*-build7' }), 'stable', 'the prefix is literal');
  assert.equal(await side({ 'x-tag': 'beta-12' }), 'canary');
  assert.equal(await side({ 'x-tag': 'beta-12x' }), 'stable');
  assert.equal(await side({ cookie: 'a=1; ab-test=on' }), 'canary');
  assert.equal(await side({ cookie: 'ab-testing=on' }), 'stable');
  assert.equal(await side({}), 'stable');

  await edge.apply(routes, { canaryPercent: 0, sticky: 'baton', rules: [{ ip: '127.0.0.0/8' }] });
  assert.equal(await side({}), 'canary');
});

test('a 25% canary: the share per request, and per user with a sticky header', async (t) => {
  const n = await startNginx(t);
  const [a, b] = await Promise.all([named(t, 'stable'), named(t, 'canary')]);
  const warnings: string[] = [];
  const log = pino({ level: 'warn' }, { write: (line: string) => void warnings.push(line) });
  const edge = edgeFor(t, n, { log });
  const routes = [routeTo(a), routeTo(b, { canary: true })];
  await edge.apply(routes, { canaryPercent: 25, rules: [], sticky: 'baton' });
  const perRequest = (await tally(n, 400)).get('canary') ?? 0;
  assert.ok(perRequest >= 60 && perRequest <= 140, `canary answered ${perRequest} of 400 at 25%`);
  await edge.apply(routes, { canaryPercent: 30, rules: [], sticky: 'baton' });
  assert.equal(warnings.length, 1, `one warning that nginx cannot use Baton's cookie: ${warnings.join()}`);
  assert.match(warnings[0]!, /canary share is per request/);

  await edge.apply(routes, { canaryPercent: 25, rules: [], sticky: { header: 'X-User' } });
  let canaryUsers = 0;
  for (let u = 0; u < 200; u++) {
    const sides = await tally(n, u < 20 ? 3 : 1, { 'x-user': `user-${u}` });
    assert.equal(sides.size, 1, `user-${u} stays on one side: ${JSON.stringify([...sides])}`);
    if (sides.has('canary')) canaryUsers++;
  }
  assert.ok(canaryUsers >= 20 && canaryUsers <= 80, `${canaryUsers} of 200 users on the canary at 25%`);
});

test("Baton's health checks mark a failing target down in nginx, and back up", async (t) => {
  const n = await startNginx(t, { workers: 1 }); // one worker: round-robin is exact
  let healthy = true;
  const a = await named(t, 'a');
  const c = await startBackend(t, 'c', (req, res) => {
    if (req.url === '/health') res.statusCode = healthy ? 200 : 500;
    res.end('c'); // other paths keep answering: only Baton's check can take c out
  });
  const health: HealthConfig = {
    path: '/health',
    interval: 50,
    timeout: 500,
    expectStatus: '2xx',
    healthyThreshold: 2,
    unhealthyThreshold: 2,
  };
  const edge = edgeFor(t, n, { health });
  await edge.apply([routeTo(a), routeTo(c)], null);
  const healthOf = async (id: string): Promise<string | undefined> =>
    (await edge.view()).find((v) => v.id === id)?.health;
  await waitFor(async () => (await healthOf(idOf(c))) === 'healthy', { what: 'c healthy' });
  assert.equal((await tally(n, 20)).get('c'), 10);

  healthy = false;
  await waitFor(async () => (await healthOf(idOf(c))) === 'unhealthy', { what: 'c unhealthy' });
  await waitFor(
    () => upstreamText(n).includes(`server ${idOf(c)} weight=1 max_fails=1 fail_timeout=10s down;`),
    {
      what: 'c down in the file',
    },
  );
  await waitFor(async () => (await tally(n, 20)).get('a') === 20, { what: 'traffic on a only' });

  healthy = true;
  await waitFor(async () => (await healthOf(idOf(c))) === 'healthy', { what: 'c healthy again' });
  await waitFor(async () => ((await tally(n, 20)).get('c') ?? 0) > 0, { what: 'traffic on c again' });
  assert.doesNotMatch(upstreamText(n), / down;/);
});

test('slow start ramps a new target up in reloads, and stops for a removed one', async (t) => {
  const n = await startNginx(t, { workers: 1 }); // one worker: round-robin is exact
  const [a, b, c] = await Promise.all([named(t, 'a'), named(t, 'b'), named(t, 'c')]);
  const edge = edgeFor(t, n);
  // Nothing serves yet: nothing to ramp against.
  await edge.apply([routeTo(a, { slowStartMs: 600 })], null);
  assert.match(upstreamText(n), new RegExp(`server ${idOf(a)} weight=1 max_fails=1 fail_timeout=10s;\\n`));
  // Only b is new: a keeps its weight even with slowStartMs set.
  await edge.apply([routeTo(a, { slowStartMs: 600 }), routeTo(b, { slowStartMs: 600 })], null);
  const first = upstreamText(n);
  assert.match(first, new RegExp(`server ${idOf(a)} weight=4 .*;\\n`));
  assert.match(first, new RegExp(`server ${idOf(b)} weight=1 .*;  # slow start 1/4\\n`));
  const gen = generationOf(first);
  for (const [step, weight] of [
    [1, 'weight=2 .*;  # slow start 2/4'],
    [2, 'weight=3 .*;  # slow start 3/4'],
    [3, 'weight=1 max_fails=1 fail_timeout=10s;\\n'],
  ] as const) {
    const text = await waitFor(
      () => {
        const s = upstreamText(n);
        return generationOf(s) === gen + step ? s : null;
      },
      { interval: 10, what: `slow start step ${step}` },
    );
    assert.match(text, new RegExp(`server ${idOf(b)} ${weight}`));
  }
  // An apply queues behind the ramp's last reload; b is not new any more, so no new ramp.
  await edge.apply([routeTo(a), routeTo(b, { slowStartMs: 600 })], null);
  for (const x of [a, b]) {
    assert.match(upstreamText(n), new RegExp(`server ${idOf(x)} weight=1 max_fails=1 fail_timeout=10s;\\n`));
  }
  assert.deepEqual([...(await tally(n, 20))].sort(), [
    ['a', 10],
    ['b', 10],
  ]);

  await edge.apply([routeTo(a), routeTo(b), routeTo(c, { slowStartMs: 300 })], null);
  await edge.apply([routeTo(a), routeTo(b)], null);
  const settled = generationOf(upstreamText(n));
  // Proving that nothing happens takes a wait: past c's first step (100ms) and more.
  await delay(400);
  assert.equal(generationOf(upstreamText(n)), settled, 'no reload for a removed target');
});
