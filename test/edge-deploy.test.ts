// Deploys through `baton up` with an nginx or HAProxy edge when the edge says no: an nginx whose
// config test fails, a socket that is not there, nginx not running, a strategy the edge cannot
// route. Each is a clear error naming the command, file or socket, with the exit code, and the
// previous version keeps serving with no instance of the refused one left behind.
import assert from 'node:assert/strict';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { Service } from './helpers/app-daemon.js';
import { ensureBuilt, runBaton, tempDir, writeFile } from './helpers/cli.js';
import { startHaproxy } from './helpers/haproxy.js';
import { assertNoDoubledPunctuation } from './helpers/messages.js';
import { startNginx } from './helpers/nginx.js';

const EDGE_EXIT = 14;

describe('deploys through an nginx or HAProxy edge that refuses', () => {
  it('nginx -t failing mid-deploy: the deploy fails (exit 14) naming the command, 1.0.0 keeps serving', async (t) => {
    ensureBuilt();
    const nginx = await startNginx(t);
    // The config test the user configured, with a switch that makes it fail as a broken
    // nginx.conf would.
    const dir = tempDir(t);
    const flag = path.join(dir, 'broken');
    const check = writeFile(
      dir,
      'nginx-test.sh',
      `#!/bin/sh\nif [ -e ${flag} ]; then echo 'nginx: [emerg] unknown directive "upstreem" in ${nginx.confFile}:12' >&2; echo 'nginx: configuration file ${nginx.confFile} test failed' >&2; exit 1; fi\nexec ${nginx.edgeConfig.test}\n`,
    );
    chmodSync(check, 0o755);
    const edge = { ...nginx.edgeConfig, test: check };
    const svc = await Service.create(t, {
      edge: { lines: [`edge: ${JSON.stringify(edge)}`], url: `http://127.0.0.1:${nginx.port}` },
    });
    await svc.start();
    await svc.deployApi('1.0.0');
    assert.deepEqual(await svc.versionsServed(), ['1.0.0']);
    const before = readFileSync(nginx.upstreamFile, 'utf8');

    writeFileSync(flag, '');
    const run = await svc.deploy('1.0.1');
    // The edge's refusal, not the app's failure: exit 14 (BATON_E_EDGE), as the README lists it.
    assert.equal(run.code, EDGE_EXIT, run.stdout + run.stderr);
    assert.equal(run.done?.result, 'failed');
    assert.equal(run.done?.code, 'BATON_E_EDGE');
    assert.match(run.done?.message ?? '', /nginx-test\.sh/);
    assert.match(run.done?.message ?? '', /unknown directive "upstreem"/);
    assertNoDoubledPunctuation(run.done?.message ?? '', 'nginx -t failing');
    assert.equal(readFileSync(nginx.upstreamFile, 'utf8'), before, 'the upstream file is put back');
    assert.deepEqual(await svc.versionsServed(), ['1.0.0']);
    assert.deepEqual(svc.pids('1.0.1'), [], 'no instance of the refused version is left');
    assert.equal((await svc.status()).live?.version, '1.0.0');

    // Fixed config: the same deploy goes through.
    const { rmSync } = await import('node:fs');
    rmSync(flag);
    const again = await svc.deploy('1.0.1');
    assert.equal(again.done?.result, 'succeeded', again.stdout + again.stderr);
    assert.deepEqual(await svc.versionsServed(), ['1.0.1']);
  });

  it('baton up refuses to start without the edge: a missing socket, nginx not running', async (t) => {
    ensureBuilt();
    const dir = tempDir(t);
    const socket = path.join(dir, 'no-such-admin.sock');
    const haproxyCfg = writeFile(
      dir,
      'haproxy.yaml',
      `service: web\nstateDir: state\napp:\n  command: node app.js --port {port}\nedge: { type: haproxy, runtimeSocket: ${socket}, backend: web }\n`,
    );
    const h = await runBaton(t, ['up', '-c', haproxyCfg]);
    assert.equal(h.code, EDGE_EXIT, h.stdout + h.stderr);
    assert.match(h.stderr, new RegExp(`${socket.replace(/[.]/g, '\\.')}.*not found`));

    const pidFile = path.join(dir, 'nginx.pid');
    const nginxCfg = writeFile(
      dir,
      'nginx.yaml',
      `service: web\nstateDir: state2\napp:\n  command: node app.js --port {port}\nedge: { type: nginx, upstreamFile: ${dir}/web.conf, pidFile: ${pidFile} }\n`,
    );
    const n = await runBaton(t, ['up', '-c', nginxCfg]);
    assert.equal(n.code, EDGE_EXIT, n.stdout + n.stderr);
    assert.match(n.stderr, /nginx is not running/);
    assert.ok(n.stderr.includes(pidFile), n.stderr);
  });

  it('HAProxy cannot route A/B rules: the deploy is refused before anything starts', async (t) => {
    ensureBuilt();
    const haproxy = await startHaproxy(t);
    const svc = await Service.create(t, {
      edge: { lines: [`edge: ${JSON.stringify(haproxy.edgeConfig)}`], url: haproxy.url },
      strategy: ['  type: ab', '  match: [{ header: X-Beta, equals: "yes" }]', '  duration: 1s'],
    });
    await svc.start();
    const first = await runBaton(t, [
      'deploy',
      '-c',
      svc.file,
      '--version',
      '1.0.0',
      '--strategy',
      'blue-green',
    ]);
    assert.equal(first.code, 0, first.stdout + first.stderr);
    const run = await svc.deploy('1.0.1');
    assert.equal(run.code, 2, run.stdout + run.stderr);
    assert.match(run.stderr, /cannot send requests to the new version by header, cookie or address/);
    assert.deepEqual(svc.pids('1.0.1'), []);
    assert.deepEqual(await svc.versionsServed(), ['1.0.0']);
  });
});
