// The nginx edge against the setup users have (a real nginx started by helpers/nginx.ts, a real
// `baton up`): app.maxFails / app.failTimeout reach the rendered upstream and nginx -t takes
// them; a blue-green deploy reloads nginx once (each reload closes idle keep-alive client
// connections), with the old set still standing in for a new one that fails its checks; and a
// missing upstream file is written at start so that nginx can load it.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { pino } from 'pino';
import { request } from 'undici';
import { appSchema, edgeSchema, type HealthConfig } from '../src/config/schema.js';
import type { EdgeOptions } from '../src/edge/edge.js';
import { NginxEdge } from '../src/edge/nginx/nginx.js';
import { splitCommand } from '../src/process/command.js';
import { silentLogger, type Logger } from '../src/log.js';
import { Service } from './helpers/app-daemon.js';
import { ensureBuilt } from './helpers/cli.js';
import { answers, edgeOptions, idOf, routeTo } from './helpers/edges.js';
import { startBackend, waitFor, type Backend } from './helpers/index.js';
import { startNginx, type NginxEdgeInput, type NginxProcess } from './helpers/nginx.js';

/** Runs a command line of the edge config (nginx -t, nginx -s reload) as Baton would: no shell. */
function runCommand(line: string): { status: number | null; output: string } {
  const [bin, ...args] = splitCommand(line);
  const r = spawnSync(bin!, args, { encoding: 'utf8' });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

/** Reloads nginx has carried out so far: its master logs each SIGHUP (error_log at notice). */
function reloads(n: NginxProcess): number {
  const log = existsSync(n.errorLog) ? readFileSync(n.errorLog, 'utf8') : '';
  return log.match(/signal 1 \(SIGHUP\) received/g)?.length ?? 0;
}

const upstreamText = (n: NginxProcess): string => readFileSync(n.upstreamFile, 'utf8');
const generationOf = (text: string): number => Number(/# generation (\d+),/.exec(text)?.[1] ?? -1);

function edgeFor(
  t: TestContext,
  n: NginxProcess,
  {
    edge = {},
    health = null,
    log = silentLogger(),
  }: { edge?: Partial<NginxEdgeInput>; health?: HealthConfig | null; log?: Logger } = {},
): NginxEdge {
  const cfg = edgeSchema.parse({ ...n.edgeConfig, ...edge });
  assert.equal(cfg.type, 'nginx');
  const opts: EdgeOptions = { ...edgeOptions(), health, baseDir: n.prefix, log };
  const e = new NginxEdge(cfg, opts);
  t.after(() => e.close());
  return e;
}

/** A `baton up` whose edge is this nginx, with one instance per version. */
async function serviceBehind(t: TestContext, n: NginxProcess, app: string[] = []): Promise<Service> {
  const svc = await Service.create(t, {
    instances: 1,
    app,
    edge: { lines: [`edge: ${JSON.stringify(n.edgeConfig)}`], url: `http://127.0.0.1:${n.port}` },
    strategy: ['  type: blue-green', '  verify: 300ms', '  keepOld: 0s'],
  });
  await svc.start();
  return svc;
}

test('app.maxFails and app.failTimeout are rendered into the upstream, and nginx -t takes them', async (t) => {
  ensureBuilt();
  // Left out, they are nginx's own defaults.
  const defaults = appSchema.parse({ command: 'node app.js' });
  assert.deepEqual([defaults.maxFails, defaults.failTimeout], [1, 10_000]);

  const n = await startNginx(t, { workers: 1 });
  const svc = await serviceBehind(t, n, ['  maxFails: 3', '  failTimeout: 1500ms']);
  await svc.deployApi('1.0.0');
  // fail_timeout takes whole seconds: 1500ms is rounded up.
  assert.match(upstreamText(n), /\n {4}server 127\.0\.0\.1:\d+ weight=1 max_fails=3 fail_timeout=2s;\n/);
  const check = runCommand(n.edgeConfig.test);
  assert.equal(check.status, 0, check.output);
  assert.deepEqual(await svc.versionsServed(), ['1.0.0']);
});

test('a blue-green deploy through nginx reloads it once, at the switch', async (t) => {
  ensureBuilt();
  const n = await startNginx(t);
  const svc = await serviceBehind(t, n);
  await svc.deployApi('1.0.0');
  const before = reloads(n);
  assert.ok(before >= 1, 'the first deploy reloaded nginx');

  await svc.deployApi('1.0.1');
  assert.deepEqual(await svc.versionsServed(), ['1.0.1']);
  // The old instance was drained and stopped all the same.
  await svc.noneLeft('1.0.0');
  assert.equal(
    reloads(n) - before,
    1,
    `nginx reloads during one blue-green deploy:\n${readFileSync(n.errorLog, 'utf8')}`,
  );
  assert.doesNotMatch(upstreamText(n), /backup/);
});

test('the old set held out as backup comes back while every new target fails its checks', async (t) => {
  const n = await startNginx(t, { workers: 1 });
  let healthy = true;
  const old = await startBackend(t, 'old', (_req, res) => res.end('old'));
  const fresh: Backend = await startBackend(t, 'new', (req, res) => {
    if (req.url === '/health') res.statusCode = healthy ? 200 : 500;
    res.end('new'); // other paths keep answering: only Baton's check can take it out
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
  await edge.apply([routeTo(old)], null);
  const url = `http://127.0.0.1:${n.port}/`;

  // The switch: new requests reach the new set at once; the old one is not in the file.
  const atSwitch = reloads(n);
  await edge.apply([routeTo(fresh), routeTo(old, { backup: true })], null);
  assert.equal(reloads(n) - atSwitch, 1);
  assert.deepEqual([...(await answers(url, 10))], [['new', 10]]);
  assert.ok(!upstreamText(n).includes(idOf(old)), upstreamText(n));

  // Every new target failing: the old set is back as nginx backup servers.
  healthy = false;
  await waitFor(
    () => upstreamText(n).includes(`server ${idOf(old)} weight=1 max_fails=1 fail_timeout=10s backup;`),
    {
      what: 'the old set back in the file as backup',
    },
  );
  await waitFor(async () => (await answers(url, 5)).get('old') === 5, { what: 'traffic on the old set' });

  // Healthy again: the old set leaves the file; dropping it from the routes then costs no reload.
  healthy = true;
  await waitFor(() => !upstreamText(n).includes(idOf(old)), { what: 'the old set out of the file again' });
  // Queued behind that reload, and the same routes: nothing to do.
  await edge.apply([routeTo(fresh), routeTo(old, { backup: true })], null);
  const settled = upstreamText(n);
  const quiet = reloads(n);
  await edge.apply([routeTo(fresh)], null);
  assert.equal(upstreamText(n), settled, 'the file is not rewritten');
  assert.equal(reloads(n), quiet, 'no reload');
  assert.equal(generationOf(settled), generationOf(upstreamText(n)));
  const [drained] = await edge.drain([idOf(old)], 5000);
  assert.equal(drained?.drained, true, JSON.stringify(drained));
  assert.deepEqual([...(await answers(url, 10))], [['new', 10]]);
});

test('a missing upstream file is written at start, and nginx loads it', async (t) => {
  const n = await startNginx(t, { workers: 1 });
  rmSync(n.upstreamFile);
  const lines: string[] = [];
  const log = pino({ level: 'info' }, { write: (line: string) => void lines.push(line) });
  await edgeFor(t, n, { log }).start();

  const text = upstreamText(n);
  assert.match(text, /^# Managed by Baton for service web/);
  assert.match(text, /upstream web \{\n(?: {4}#.*\n)* {4}server 127\.0\.0\.1:1 down;\n/);
  assert.ok(
    lines.some((l) => l.includes('nginx upstream file was missing') && l.includes(n.upstreamFile)),
    lines.join(''),
  );
  const check = runCommand(n.edgeConfig.test);
  assert.equal(check.status, 0, check.output);
  // nginx runs on it: no target, so 502.
  const workers = n.workers().map((w) => w.pid);
  const reload = runCommand(n.edgeConfig.reload);
  assert.equal(reload.status, 0, reload.output);
  await waitFor(() => n.workers().some((w) => !workers.includes(w.pid) && !w.shuttingDown), {
    what: 'nginx workers on the written file',
  });
  const res = await request(`http://127.0.0.1:${n.port}/`, { reset: true });
  await res.body.dump();
  assert.equal(res.statusCode, 502);

  // A file that exists is left as it is.
  await edgeFor(t, n).start();
  assert.equal(upstreamText(n), text);

  // nginx not running yet: the file is written all the same, and the error says so.
  rmSync(n.upstreamFile);
  await assert.rejects(
    edgeFor(t, n, { edge: { pidFile: path.join(n.prefix, 'missing.pid') } }).start(),
    (err: unknown) => {
      assert.match(
        String(err),
        /nginx is not running .*start nginx before Baton.*The upstream file .* is in place now/s,
      );
      return true;
    },
  );
  assert.match(upstreamText(n), /server 127\.0\.0\.1:1 down;/);
});
