// `baton up` as a real child process: proxying, the admin API through the CLI, tokens,
// graceful SIGTERM, SIGHUP reloads and routing state that survives a restart.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { before, describe, it, type TestContext } from 'node:test';
import { request } from 'undici';
import type { TargetsAnswer, TargetView } from '../src/api/targets.js';
import { startBackend, waitFor, type Backend } from './helpers/index.js';
import {
  ensureBuilt,
  freePort,
  runBaton,
  startDaemon,
  tempDir,
  writeFile,
  type DaemonProcess,
} from './helpers/cli.js';

const id = (b: Backend): string => `127.0.0.1:${b.port}`;

function configYaml(adminPort: number, backends: Backend[], extra = ''): string {
  return [
    'service: web',
    'listen: 127.0.0.1:0',
    `admin: 127.0.0.1:${adminPort}`,
    'stateDir: state',
    'targets:',
    ...backends.map((b) => `  - address: 127.0.0.1:${b.port}`),
    extra,
  ].join('\n');
}

/** A GET through the proxy (a fresh connection each time, so round-robin is visible). */
async function get(d: DaemonProcess, urlPath = '/'): Promise<{ status: number; body: string }> {
  const res = await request(d.url + urlPath, { reset: true, headersTimeout: 10_000, bodyTimeout: 10_000 });
  return { status: res.statusCode, body: await res.body.text() };
}

async function admin(
  port: number,
  method: string,
  urlPath: string,
  token?: string,
  body?: unknown,
): Promise<{ status: number; body: string }> {
  const res = await request(`http://127.0.0.1:${port}${urlPath}`, {
    method: method as 'GET',
    reset: true,
    headers: {
      ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.statusCode, body: await res.body.text() };
}

async function listTargets(t: TestContext, file: string): Promise<TargetView[]> {
  const r = await runBaton(t, ['targets', 'list', '--json', '-c', file]);
  assert.equal(r.code, 0, r.stderr);
  return (JSON.parse(r.stdout) as TargetsAnswer).targets;
}

/** GET /v1/targets straight from the admin API (cheaper than a CLI process). */
async function apiTargets(adminPort: number, token?: string): Promise<TargetView[]> {
  const r = await admin(adminPort, 'GET', '/v1/targets', token);
  assert.equal(r.status, 200, r.body);
  return (JSON.parse(r.body) as TargetsAnswer).targets;
}

function stateOf(targets: TargetView[], target: string): TargetView['state'] | undefined {
  return targets.find((x) => x.id === target)?.state;
}

/** True when a TCP connection to the port is refused. */
function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
  });
}

/** Sends `n` requests through the proxy; all must answer 200. Returns the bodies. */
async function hits(d: DaemonProcess, n: number): Promise<string[]> {
  const bodies: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = await get(d);
    assert.equal(r.status, 200, r.body);
    bodies.push(r.body);
  }
  return bodies;
}

describe('baton up', () => {
  before(() => ensureBuilt());

  it('proxies to its targets, and the CLI lists, drains, undrains and weighs them', async (t) => {
    const dir = tempDir(t);
    const [a, b] = [await startBackend(t, 'a'), await startBackend(t, 'b')];
    const adminPort = await freePort();
    const file = writeFile(dir, 'baton.yaml', configYaml(adminPort, [a, b]));
    const d = await startDaemon(t, file);

    const bodies = await hits(d, 10);
    assert.deepEqual([...new Set(bodies)].sort(), ['a', 'b']);
    assert.ok(a.seen.length >= 4 && b.seen.length >= 4, `a=${a.seen.length} b=${b.seen.length}`);

    const listed = await listTargets(t, file);
    assert.deepEqual(
      listed.map((x) => `${x.id} ${x.state} ${x.weight}`).sort(),
      [a, b].map((x) => `${id(x)} active 1`).sort(),
    );
    assert.equal(
      listed.reduce((n, x) => n + x.requests, 0),
      10,
    );

    // The table form too.
    const table = await runBaton(t, ['targets', '-c', file]);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^TARGET\s+VERSION\s+STATE\s+HEALTH\s+WEIGHT\s+IN-FLIGHT\s+REQUESTS$/m);
    assert.match(table.stdout, new RegExp(`^${id(a)}\\s+-\\s+active\\s+unknown\\s+1\\s+0\\s+\\d+$`, 'm'));

    // weight 0: a stays in the table but gets no new traffic; back to 1, it gets its share again.
    const weight = await runBaton(t, ['targets', 'weight', id(a), '0', '-c', file]);
    assert.equal(weight.code, 0, weight.stderr);
    assert.equal(weight.stdout, `${id(a)}: weight 0\n`);
    const afterWeight = await apiTargets(adminPort);
    assert.equal(afterWeight.find((x) => x.id === id(a))?.weight, 0);
    assert.equal(stateOf(afterWeight, id(a)), 'active');
    assert.deepEqual(new Set(await hits(d, 6)), new Set(['b']));
    assert.equal(
      (await admin(adminPort, 'PATCH', `/v1/targets/${id(a)}`, undefined, { weight: 1 })).status,
      200,
    );
    assert.deepEqual(new Set(await hits(d, 6)), new Set(['a', 'b']));

    // drain: b leaves rotation; every request goes to a.
    const drain = await runBaton(t, ['targets', 'drain', id(b), '--timeout', '5s', '-c', file]);
    assert.equal(drain.code, 0, drain.stderr);
    assert.equal(drain.stdout, `${id(b)}: drained\n`);
    assert.equal(stateOf(await apiTargets(adminPort), id(b)), 'drained');
    const bBefore = b.seen.length;
    assert.deepEqual(new Set(await hits(d, 6)), new Set(['a']));
    assert.equal(b.seen.length, bBefore);

    // undrain: b is back in rotation (its traffic: see the next test).
    const undrain = await runBaton(t, ['targets', 'undrain', id(b), '-c', file]);
    assert.equal(undrain.code, 0, undrain.stderr);
    assert.equal(undrain.stdout, `${id(b)}: back in rotation\n`);
    assert.equal(stateOf(await apiTargets(adminPort), id(b)), 'active');

    // Errors from the API come back as the CLI's exit code and message.
    const unknown = await runBaton(t, ['targets', 'drain', '127.0.0.1:1', '-c', file]);
    assert.equal(unknown.code, 4);
    assert.match(unknown.stderr, /no target 127\.0\.0\.1:1/);
    const badWeight = await runBaton(t, ['targets', 'weight', id(a), 'lots', '-c', file]);
    assert.equal(badWeight.code, 2);
    assert.match(badWeight.stderr, /weight must be a whole number >= 0, not "lots"/);

    // /metrics: a baton_requests_total line per target and status class.
    const metrics = await admin(adminPort, 'GET', '/metrics');
    assert.equal(metrics.status, 200);
    for (const backend of [a, b]) {
      const m = new RegExp(
        `^baton_requests_total\\{service="web",target="${id(backend)}",version="",class="2xx"\\} (\\d+)$`,
        'm',
      ).exec(metrics.body);
      assert.ok(m, `no 2xx line for ${id(backend)} in:\n${metrics.body}`);
      assert.equal(Number(m[1]), backend.seen.length);
      assert.match(
        metrics.body,
        new RegExp(
          `^baton_requests_total\\{service="web",target="${id(backend)}",version="",class="5xx"\\} 0$`,
          'm',
        ),
      );
    }
    // This process's own metrics, under their standard names.
    assert.match(metrics.body, /^process_cpu_seconds_total /m);
    assert.doesNotMatch(metrics.body, /^baton_process_/m);

    const health = await admin(adminPort, 'GET', '/v1/health');
    assert.equal(health.status, 200);
    assert.equal((JSON.parse(health.body) as { service: string }).service, 'web');
  });

  it('an undrained target gets traffic again', async (t) => {
    const dir = tempDir(t);
    const [a, b] = [await startBackend(t, 'a'), await startBackend(t, 'b')];
    const adminPort = await freePort();
    const file = writeFile(dir, 'baton.yaml', configYaml(adminPort, [a, b]));
    const d = await startDaemon(t, file);
    assert.equal((await admin(adminPort, 'POST', `/v1/targets/${id(b)}/drain`)).status, 200);
    assert.equal((await admin(adminPort, 'POST', `/v1/targets/${id(b)}/undrain`)).status, 200);
    assert.deepEqual(new Set(await hits(d, 6)), new Set(['a', 'b']));
  });

  it('refuses admin calls without the right token when BATON_ADMIN_TOKEN is set', async (t) => {
    const dir = tempDir(t);
    const a = await startBackend(t, 'a');
    const adminPort = await freePort();
    const file = writeFile(dir, 'baton.yaml', configYaml(adminPort, [a]));
    await startDaemon(t, file, { env: { BATON_ADMIN_TOKEN: 'right-token' } });

    for (const token of ['wrong-token', undefined, 'right-token-but-longer']) {
      const r = await admin(adminPort, 'GET', '/v1/targets', token);
      assert.equal(r.status, 401, `token ${token}`);
      assert.equal((JSON.parse(r.body) as { error: { code: string } }).error.code, 'BATON_E_UNAUTHORIZED');
    }
    const denied = await admin(adminPort, 'POST', `/v1/targets/${id(a)}/drain`, 'wrong-token');
    assert.equal(denied.status, 401);

    const ok = await admin(adminPort, 'GET', '/v1/targets', 'right-token');
    assert.equal(ok.status, 200);
    assert.equal(stateOf((JSON.parse(ok.body) as { targets: TargetView[] }).targets, id(a)), 'active');

    // The CLI sends the token from its environment.
    const wrong = await runBaton(t, ['targets', 'list', '-c', file], { env: { BATON_ADMIN_TOKEN: 'nope' } });
    assert.equal(wrong.code, 3);
    assert.match(wrong.stderr, /missing or wrong admin token/);
    const right = await runBaton(t, ['targets', 'list', '--json', '-c', file], {
      env: { BATON_ADMIN_TOKEN: 'right-token' },
    });
    assert.equal(right.code, 0, right.stderr);
  });

  it('refuses to start with admin beyond loopback and no token (exit 2)', async (t) => {
    const dir = tempDir(t);
    const file = writeFile(dir, 'baton.yaml', 'service: web\nlisten: 127.0.0.1:0\nadmin: 0.0.0.0:0\n');
    const r = await runBaton(t, ['up', '-c', file]);
    assert.equal(r.code, 2);
    assert.match(
      r.stderr,
      /admin listens on 0\.0\.0\.0:0, beyond loopback, but BATON_ADMIN_TOKEN is not set/,
    );
    // Refused before anything listened or was written.
    assert.doesNotMatch(r.stdout, /proxy listening/);
    assert.equal(existsSync(path.join(dir, '.baton')), false);
  });

  it('SIGTERM lets an in-flight slow request finish, then exits 0', async (t) => {
    const dir = tempDir(t);
    const slow = await startBackend(t, 'slow', (_req, res) => {
      setTimeout(() => res.end('slow done'), 1000);
    });
    const adminPort = await freePort();
    const file = writeFile(dir, 'baton.yaml', configYaml(adminPort, [slow]));
    const d = await startDaemon(t, file);

    const started = Date.now();
    const inFlight = get(d, '/slow');
    await waitFor(() => slow.seen.length === 1, { what: 'the slow request to reach the backend' });
    d.child.kill('SIGTERM');
    // New connections are refused while the slow request finishes.
    await waitFor(() => refused(d.port), { what: 'the proxy to stop accepting connections' });
    assert.equal(slow.seen.length, 1);
    const r = await inFlight;
    assert.equal(r.status, 200);
    assert.equal(r.body, 'slow done');
    assert.ok(Date.now() - started >= 900);
    const exit = await d.exited;
    assert.deepEqual(exit, { code: 0, signal: null }, d.stderr());
    assert.match(d.stdout(), /"msg":"stopped"/);
  });

  it('SIGHUP applies an edited targets list, and keeps the old config when the file is broken', async (t) => {
    const dir = tempDir(t);
    const [a, b, c] = [await startBackend(t, 'a'), await startBackend(t, 'b'), await startBackend(t, 'c')];
    const adminPort = await freePort();
    const file = writeFile(dir, 'baton.yaml', configYaml(adminPort, [a, b]));
    const d = await startDaemon(t, file);
    assert.deepEqual(new Set(await hits(d, 4)), new Set(['a', 'b']));

    // Edited list: b out, c in.
    writeFile(dir, 'baton.yaml', configYaml(adminPort, [a, c]));
    d.child.kill('SIGHUP');
    await waitFor(
      async () => {
        const ts = await apiTargets(adminPort);
        return stateOf(ts, id(c)) === 'active' && stateOf(ts, id(b)) === 'drained';
      },
      { timeout: 10_000, what: 'the reload to add c and drain b' },
    );
    const bBefore = b.seen.length;
    assert.deepEqual(new Set(await hits(d, 6)), new Set(['a', 'c']));
    assert.equal(b.seen.length, bBefore);

    // A broken file: the reload is refused and nothing changes.
    writeFile(dir, 'baton.yaml', `${configYaml(adminPort, [a])}\nproxy:\n  retries: lots\n`);
    d.child.kill('SIGHUP');
    await waitFor(() => d.logs().some((l) => l.msg === 'config reload refused; keeping the running config'), {
      what: 'the broken reload to be refused',
    });
    const refused = d.logs().find((l) => l.msg === 'config reload refused; keeping the running config');
    assert.match(String(refused?.error), /proxy\.retries/);
    assert.equal(d.child.exitCode, null);
    // The CLI reads the same broken file, so ask the admin API directly.
    const targets = await apiTargets(adminPort);
    assert.equal(stateOf(targets, id(a)), 'active');
    assert.equal(stateOf(targets, id(c)), 'active');
    assert.deepEqual(new Set(await hits(d, 6)), new Set(['a', 'c']));
  });

  it('keeps a drained target drained across a restart, unless the targets list changed', async (t) => {
    const dir = tempDir(t);
    const [a, b, c] = [await startBackend(t, 'a'), await startBackend(t, 'b'), await startBackend(t, 'c')];
    const adminPort = await freePort();
    const file = writeFile(dir, 'baton.yaml', configYaml(adminPort, [a, b]));

    const first = await startDaemon(t, file);
    const drain = await runBaton(t, ['targets', 'drain', id(b), '-c', file]);
    assert.equal(drain.code, 0, drain.stderr);
    const saved = JSON.parse(readFileSync(path.join(dir, 'state/routes.json'), 'utf8')) as {
      routes: { port: number }[];
      drained: { port: number }[];
    };
    assert.deepEqual(
      saved.routes.map((r) => r.port),
      [a.port],
    );
    assert.deepEqual(
      saved.drained.map((r) => r.port),
      [b.port],
    );
    first.child.kill('SIGTERM');
    assert.equal((await first.exited).code, 0);

    // Same config: routing comes back from routes.json, b still drained.
    const second = await startDaemon(t, file);
    assert.ok(second.logs().some((l) => l.msg === 'routing restored from state'));
    const restored = await apiTargets(adminPort);
    assert.equal(stateOf(restored, id(a)), 'active');
    assert.equal(stateOf(restored, id(b)), 'drained');
    assert.deepEqual(new Set(await hits(second, 4)), new Set(['a']));
    second.child.kill('SIGTERM');
    assert.equal((await second.exited).code, 0);

    // Edited targets list: the config wins over the saved state.
    writeFile(dir, 'baton.yaml', configYaml(adminPort, [a, b, c]));
    const third = await startDaemon(t, file);
    assert.ok(
      third
        .logs()
        .some((l) => l.msg === 'config targets changed since the last run; routing from the config'),
    );
    const fromConfig = await apiTargets(adminPort);
    assert.deepEqual(
      fromConfig.map((x) => `${x.id} ${x.state}`).sort(),
      [a, b, c].map((x) => `${id(x)} active`).sort(),
    );
    assert.deepEqual(new Set(await hits(third, 6)), new Set(['a', 'b', 'c']));
  });
});
