// `baton deploy --verify-load` through an nginx or HAProxy edge: it owns the client port, so the
// load goes to `edge.url`, which GET /v1/health reports; without it the deploy is refused (exit 2)
// saying what to set, before anything starts.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { request } from 'undici';
import type { ApiErrorBody } from '../src/api/error.js';
import type { HealthAnswer } from '../src/api/health.js';
import { Service, type DeployRun } from './helpers/app-daemon.js';
import { ensureBuilt } from './helpers/cli.js';
import { startHaproxy } from './helpers/haproxy.js';
import { startNginx } from './helpers/nginx.js';

interface LoadLine {
  kind: 'load';
  result: { url: string; sent: number; failed: number; versions: Record<string, number>; samples: string[] };
}

function loadOf(run: DeployRun): LoadLine['result'] {
  const line = run.stdout.split('\n').find((l) => l.startsWith('{"kind":"load"'));
  assert.ok(line, `a load summary line in:\n${run.stdout}\n${run.stderr}`);
  return (JSON.parse(line) as LoadLine).result;
}

async function health(svc: Service): Promise<HealthAnswer> {
  const res = await request(`http://127.0.0.1:${svc.adminPort}/v1/health`, { reset: true });
  assert.equal(res.statusCode, 200);
  return (await res.body.json()) as HealthAnswer;
}

describe('deploy --verify-load with an nginx or HAProxy edge', () => {
  it('loads edge.url, which /v1/health reports: a blue-green deploy passes', async (t) => {
    ensureBuilt();
    const nginx = await startNginx(t);
    const url = `http://127.0.0.1:${nginx.port}/`;
    const svc = await Service.create(t, {
      edge: { lines: [`edge: ${JSON.stringify({ ...nginx.edgeConfig, url })}`], url: url.slice(0, -1) },
    });
    await svc.start();
    const h = await health(svc);
    assert.equal(h.edge, 'nginx');
    assert.equal(h.listen, null);
    assert.equal(h.url, url);
    await svc.deployApi('1.0.0');

    // A low rate: nginx's reload closes idle keep-alive connections, a race this test is not about.
    const run = await svc.deploy('1.0.1', ['--verify-load', '10']);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.equal(run.done?.result, 'succeeded');
    const load = loadOf(run);
    assert.equal(load.url, url, 'the load went to edge.url');
    assert.equal(load.failed, 0, load.samples.join('\n'));
    assert.ok(load.sent >= 5, `load ran during the deploy (${load.sent} sent)`);
    assert.ok(
      (load.versions['1.0.1'] ?? 0) > 0,
      `1.0.1 answered through nginx: ${JSON.stringify(load.versions)}`,
    );
    assert.deepEqual(await svc.versionsServed(), ['1.0.1']);
  });

  it('HAProxy too: edge.url is where the load goes', async (t) => {
    ensureBuilt();
    const haproxy = await startHaproxy(t);
    const url = `${haproxy.url}/`;
    const svc = await Service.create(t, {
      edge: { lines: [`edge: ${JSON.stringify({ ...haproxy.edgeConfig, url })}`], url: haproxy.url },
    });
    await svc.start();
    assert.equal((await health(svc)).url, url);
    await svc.deployApi('1.0.0');
    const run = await svc.deploy('1.0.1', ['--verify-load', '20']);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    const load = loadOf(run);
    assert.equal(load.url, url);
    assert.equal(load.failed, 0, load.samples.join('\n'));
    assert.ok((load.versions['1.0.1'] ?? 0) > 0, JSON.stringify(load.versions));
  });

  it('without edge.url: exit 2 saying to set it, nothing deployed', async (t) => {
    ensureBuilt();
    const nginx = await startNginx(t);
    const svc = await Service.create(t, {
      edge: { lines: [`edge: ${JSON.stringify(nginx.edgeConfig)}`], url: `http://127.0.0.1:${nginx.port}` },
    });
    await svc.start();
    assert.equal((await health(svc)).url, null);
    await svc.deployApi('1.0.0');

    const run = await svc.deploy('1.0.1', ['--verify-load', '10']);
    assert.equal(run.code, 2, run.stdout + run.stderr);
    assert.match(run.stderr, /^baton: --verify-load sends its requests where clients connect/m);
    assert.match(run.stderr, /the nginx edge owns the client port\. Set edge\.url in baton\.yaml/);
    assert.doesNotMatch(run.stderr, /TypeError|not null/);
    // --json: the error as JSON on stdout too, and no progress (the deploy never started).
    const lines = run.stdout.split('\n').filter((l) => l !== '');
    assert.equal(lines.length, 1, run.stdout);
    const body = JSON.parse(lines[0]!) as ApiErrorBody;
    assert.equal(body.error.code, 'BATON_E_USAGE');
    assert.match(body.error.message, /Set edge\.url/);
    assert.deepEqual(svc.pids('1.0.1'), [], 'no instance of 1.0.1 was started');
    assert.equal((await svc.status()).live?.version, '1.0.0');
    assert.deepEqual(await svc.versionsServed(), ['1.0.0']);
  });
});
