// Issue 14: `baton upgrade` hands the built-in proxy's listener to the Baton installed now,
// without a gap. The service runs from a copy of this build; the copy is then "upgraded" (its
// package.json says another version, as after `npm install -g` of a new release) and the data
// plane is told to upgrade while the proof's traffic runs: 0 failed, 0 refused, 0 WebSocket
// cuts (they get a Close frame from the old process and reconnect to the new one); the new data
// plane reports the new version, the old one exits, and deploys go on through the new one. An
// upgrade to a broken build fails, says why, and the old data plane serves on.
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { before, describe, it, type TestContext } from 'node:test';
import { Service } from './helpers/app-daemon.js';
import { dataPlanePids, ensureBuilt, runBaton } from './helpers/cli.js';
import { ROOT, waitFor } from './helpers/index.js';
import { startProofTraffic } from './helpers/proof.js';
import { assertZeroDowntime, LIGHT_TRAFFIC, useProofTimeouts } from './helpers/proof-suite.js';

interface Upgraded {
  readonly from: { readonly pid: number; readonly version: string };
  readonly to: { readonly pid: number; readonly version: string };
  readonly routes: number;
}

/** A copy of this build (bin, dist, package.json; node_modules linked) to upgrade in place. */
function copyBuild(t: TestContext): { bin: string; setVersion: (v: string) => void; root: string } {
  const root = mkdtempSync(path.join(os.tmpdir(), 'baton-build-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  for (const part of ['bin', 'dist', 'package.json'])
    cpSync(path.join(ROOT, part), path.join(root, part), { recursive: true });
  symlinkSync(path.join(ROOT, 'node_modules'), path.join(root, 'node_modules'));
  const pkg = path.join(root, 'package.json');
  return {
    root,
    bin: path.join(root, 'bin', 'baton.js'),
    setVersion: (v) => {
      const json = JSON.parse(readFileSync(pkg, 'utf8')) as { version: string };
      writeFileSync(pkg, JSON.stringify({ ...json, version: v }, null, 2));
    },
  };
}

const gone = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return false;
  } catch {
    return true;
  }
};

describe('baton upgrade: the data plane hands over its listener (issue 14)', { timeout: 180_000 }, () => {
  before(() => ensureBuilt());

  it('under the proof traffic: 0 failed, the new build serves, the old one exits; SIGUSR2 does the same; deploys go on', async (t) => {
    const build = copyBuild(t);
    const svc = await Service.create(t, {
      instances: 2,
      readyTimeout: '15s',
      strategy: ['  type: blue-green', '  verify: 200ms', '  keepOld: 0s'],
    });
    useProofTimeouts(svc);
    await svc.start({}, [], build.bin);
    await svc.deployApi('1.0.0');
    const [first] = dataPlanePids(svc.file);
    assert.ok(first);
    const traffic = startProofTraffic(svc.url, { ...LIGHT_TRAFFIC, maxMs: 120_000 });
    t.after(() => traffic.stop());
    await traffic.waitForEach(0, 2, 15_000);

    traffic.phase('upgrade');
    build.setVersion('9.9.9-next');
    const up = await runBaton(t, ['upgrade', '-c', svc.file, '--json'], { timeout: 60_000 });
    assert.equal(up.code, 0, up.stderr);
    const r = JSON.parse(up.stdout) as Upgraded;
    assert.equal(r.from.pid, first);
    assert.notEqual(r.to.pid, first);
    assert.equal(r.to.version, '9.9.9-next');
    assert.equal(r.routes, 2);
    await waitFor(() => gone(first), { timeout: 30_000, what: 'the old data plane to finish and exit' });
    assert.deepEqual(dataPlanePids(svc.file), [r.to.pid]);
    await traffic.waitForEach(Date.now(), 3, 15_000);
    const health = JSON.parse((await runBaton(t, ['targets', '-c', svc.file, '--json'])).stdout) as {
      targets: unknown[];
    };
    assert.equal(health.targets.length, 2, 'the new data plane routes the two instances');

    traffic.phase('deploy through the new data plane');
    const run = await svc.deploy('1.0.1', [], 60_000);
    assert.equal(run.done?.result, 'succeeded', `${run.stdout}\n${run.stderr}`);

    traffic.phase('SIGUSR2');
    build.setVersion('9.9.10-next');
    process.kill(r.to.pid, 'SIGUSR2');
    await waitFor(() => gone(r.to.pid), {
      timeout: 30_000,
      what: 'the data plane upgraded by SIGUSR2 to exit',
    });
    const [third] = dataPlanePids(svc.file);
    assert.ok(third !== undefined && third !== r.to.pid);
    await traffic.waitForEach(Date.now(), 3, 15_000);
    traffic.phase('deploy 1.0.2');
    const again = await svc.deploy('1.0.2', [], 60_000);
    assert.equal(again.done?.result, 'succeeded', `${again.stdout}\n${again.stderr}`);
    traffic.phase('stopping');
    const results = await traffic.stop();
    if (process.env.BATON_TEST_KEEP_LOGS)
      cpSync(path.join(svc.stateDir, 'logs'), process.env.BATON_TEST_KEEP_LOGS, { recursive: true });
    assertZeroDowntime(t, 'builtin', results);
    assert.ok(
      results.websocket.gracefulCloses > 0,
      'the old data planes closed their WebSockets with a Close frame',
    );
  });

  it('to a build that does not start: exit 14 with its error, and the old data plane serves on', async (t) => {
    const build = copyBuild(t);
    const svc = await Service.create(t, {
      instances: 1,
      strategy: ['  type: blue-green', '  verify: 200ms'],
    });
    await svc.start({}, [], build.bin);
    await svc.deployApi('1.0.0');
    const [dp] = dataPlanePids(svc.file);
    writeFileSync(
      path.join(build.root, 'dist', 'cli', 'main.js'),
      'throw new Error("broken build for the test");\n',
    );
    const up = await runBaton(t, ['upgrade', '-c', svc.file], { timeout: 60_000 });
    assert.equal(up.code, 14, up.stderr);
    assert.match(up.stderr, /upgrade failed: the new data plane .* did not take over: it exited/);
    assert.match(up.stderr, /This one keeps serving as before/);
    assert.match(up.stderr, /broken build for the test/);
    assert.deepEqual(dataPlanePids(svc.file), [dp]);
    assert.equal((await svc.get('/')).status, 200);
  });
});
