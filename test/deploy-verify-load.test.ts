// `baton deploy --verify-load RATE`: the deploy's verdict includes what clients saw.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { Service, type DeployRun } from './helpers/app-daemon.js';

interface LoadLine {
  kind: 'load';
  result: { sent: number; failed: number; versions: Record<string, number> };
}

function loadOf(run: DeployRun): LoadLine['result'] {
  const line = run.stdout.split('\n').find((l) => l.startsWith('{"kind":"load"'));
  assert.ok(line, `a load summary line in:\n${run.stdout}`);
  return (JSON.parse(line) as LoadLine).result;
}

it('deploy --verify-load passes a clean blue-green deploy and fails a recreate that dropped requests', async (t) => {
  const svc = await Service.create(t);
  await svc.start();
  await svc.deployApi('1.0.0');
  const good = await svc.deploy('1.0.1', ['--verify-load', '100']);
  assert.equal(good.code, 0, good.stdout + good.stderr);
  const clean = loadOf(good);
  assert.equal(clean.failed, 0);
  assert.ok(clean.sent > 20, `load ran during the deploy (${clean.sent})`);
  assert.ok((clean.versions['1.0.1'] ?? 0) > 0, 'the new version answered some of it');
  const bad = await svc.deploy('1.0.2', ['--strategy', 'recreate', '--verify-load', '200']);
  assert.equal(bad.code, 10, bad.stdout + bad.stderr);
  assert.ok(loadOf(bad).failed > 0);
  assert.match(bad.stderr, /failed during the deploy: the deploy is not proven/);
  const usage = await svc.deploy('1.0.3', ['--verify-load', 'lots']);
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /--verify-load takes requests per second/);
});
