// Warm-up: requests straight to each new instance before it takes real traffic, and the
// slow-start ramp after it enters rotation; both shown in the deploy's progress.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { Service } from './helpers/app-daemon.js';

it('warms each new instance up before the switch and announces the slow start', async (t) => {
  const svc = await Service.create(t, {
    app: ['  warmup: { paths: [/, /slow?ms=10], count: 6, concurrency: 2 }', '  slowStart: 2s'],
  });
  await svc.start();
  await svc.deployApi('1.0.0');
  const run = await svc.deploy('1.0.1');
  assert.equal(run.code, 0, run.stdout + run.stderr);
  const messages = run.events.map((e) => `${e.kind}:${e.step ?? ''}:${e.message}`);
  const warm = messages.filter((m) => /warm-up of web-1\.0\.1-\d+: 6\/6 requests ok/.test(m));
  assert.equal(warm.length, 2, `one warm-up line per new instance:\n${messages.join('\n')}`);
  const switching = messages.findIndex((m) => m.startsWith('step:switching'));
  const lastWarm = messages.lastIndexOf(warm[1]!);
  assert.ok(lastWarm >= 0 && lastWarm < switching, 'warm-up finished before traffic moved');
  assert.ok(messages.some((m) => m.includes('slow start: new instances ramp up to full weight over 2000ms')));
});

it('reports warm-up requests that fail without failing the deploy', async (t) => {
  const svc = await Service.create(t, { app: ['  warmup: { paths: [/nope-500], count: 3 }'] });
  svc.setFlags({ '1.0.1': ['--fail-rate', '1'] });
  await svc.start();
  await svc.deployApi('1.0.0');
  const run = await svc.deploy('1.0.1', ['--strategy', 'rolling']);
  const warm = run.events.find((e) => e.message.startsWith('warm-up of'));
  assert.ok(warm, run.stdout);
  assert.match(warm.message, /0\/3 requests ok .*\(failed: 3x 500\)/);
});
