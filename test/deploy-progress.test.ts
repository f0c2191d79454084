// What a deploy says while it waits for new instances to get ready, against a real daemon and
// real app processes: a progress line every READY_PROGRESS_MS (in the deploy's output, and in
// the daemon's log when recovery starts instances), and an early failure on a health path the
// app does not serve, well before readyTimeout.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { DEFAULTS } from '../src/config/defaults.js';
import { READY_PROGRESS_MS } from '../src/controller/readiness.js';
import { waitFor } from './helpers/index.js';
import { ensureBuilt } from './helpers/cli.js';
import { logsWith, Service } from './helpers/app-daemon.js';

/** Longer than one progress interval, so that at least one waiting line is due. */
const START_DELAY_MS = READY_PROGRESS_MS + 1000;

/**
 * A waiting line while an instance does not listen yet (the app sleeps before it listens); on
 * a loaded machine one of the two may be ready by the first line.
 */
const WAITING =
  /^waiting for 2 instance\(s\) to be ready: [01] ready, last check: GET \/health failed: ECONNREFUSED.* \(\d+s of readyTimeout 30s\)$/;

// Concurrently: each waits on its own service's clock, and the file stays under ~20s.
describe('deploy progress while instances get ready', { concurrency: true }, () => {
  before(() => ensureBuilt());

  it('prints a waiting line with the counts while instances boot, and recovery logs the same', async (t) => {
    const svc = await Service.create(t, { readyTimeout: '30s' });
    svc.setFlags({ '1.0.1': ['--start-delay', String(START_DELAY_MS)] });
    await svc.start();
    await svc.deployApi('1.0.0');

    const r = await svc.deploy('1.0.1');
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    const waiting = r.events.filter((e) => e.kind === 'info' && WAITING.test(e.message));
    assert.ok(waiting.length >= 1, `a waiting line among the NDJSON events:\n${r.stdout}`);
    assert.deepEqual(await svc.versionsServed(4), ['1.0.1']);

    // A restart that finds the instances gone starts them again: its log says how that goes.
    svc.daemon.child.kill('SIGKILL');
    await svc.daemon.exited;
    for (const pid of svc.pids()) process.kill(-pid, 'SIGKILL');
    await svc.noneLeft('1.0.1');
    await svc.start();
    await waitFor(() => logsWith(svc.daemon, 'release restored').length === 1, {
      timeout: START_DELAY_MS + 10_000,
      what: 'recovery to start 1.0.1 again',
    });
    const logged = logsWith(svc.daemon, WAITING);
    assert.ok(logged.length >= 1, JSON.stringify(svc.daemon.logs()));
    assert.equal(logged[0]!.version, '1.0.1');
    assert.equal(logged[0]!.level, 30, 'pino info');
    assert.deepEqual(await svc.versionsServed(4), ['1.0.1']);
  });

  it('fails a deploy whose health path answers 404 within seconds, not after readyTimeout', async (t) => {
    const svc = await Service.create(t, { readyTimeout: '60s' });
    svc.setFlags({ '1.0.1': ['--health-404'] });
    await svc.start();
    await svc.deployApi('1.0.0');
    const oldPids = svc.pids('1.0.0');

    const began = Date.now();
    const r = await svc.deploy('1.0.1');
    const took = Date.now() - began;
    assert.equal(r.code, 10, `expected exit 10:\n${r.stdout}\n${r.stderr}`);
    assert.equal(r.done?.result, 'failed', r.stdout);
    assert.ok(took < 15_000, `failed after ${took}ms: readyTimeout (60s) must not be waited out`);
    const msg = r.done.message;
    assert.match(
      msg,
      new RegExp(
        `instance web-1\\.0\\.1-\\d+ \\(port \\d+\\) answered GET /health with 404 Not Found ` +
          `${DEFAULTS.healthPathMissingChecks} times in a row`,
      ),
    );
    assert.match(msg, /Check app\.health\.path/);

    // The previous version never noticed.
    assert.deepEqual(await svc.versionsServed(6), ['1.0.0']);
    const st = await svc.status();
    assert.equal(st.live?.version, '1.0.0');
    assert.deepEqual(
      st.live.instances.map((i) => i.pid).sort((a, b) => a - b),
      oldPids,
    );
    await svc.noneLeft('1.0.1');
  });
});
