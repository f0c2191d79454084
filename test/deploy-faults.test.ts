// Deploys that go wrong, against a real daemon and real app processes: each one must fail with a
// clear error (what happened, which instance, what to do; exit 10 for a failed deploy, 2 for bad
// input), leave the previous version answering through the proxy, and leave no process of the
// failed version running.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { request } from 'undici';
import { startLoad, waitFor } from './helpers/index.js';
import { ensureBuilt, freePort, runBaton, writeFile } from './helpers/cli.js';
import { logsWith, Service, type DeployRun, type ServiceOptions } from './helpers/app-daemon.js';
import { portFree } from '../src/drivers/local/local.js';

/** A service with 1.0.0 deployed and serving; returns it with the pids of 1.0.0. */
async function serving(
  t: Parameters<typeof Service.create>[0],
  options: ServiceOptions = {},
  flags: Record<string, string[]> = {},
): Promise<{ svc: Service; oldPids: number[] }> {
  const svc = await Service.create(t, options);
  svc.setFlags(flags);
  await svc.start();
  await svc.deployApi('1.0.0');
  assert.deepEqual(await svc.versionsServed(4), ['1.0.0']);
  const oldPids = svc.pids('1.0.0');
  assert.equal(oldPids.length, options.instances ?? 2);
  return { svc, oldPids };
}

/** A deploy that failed: exit 10, a 'done' event with that result, and its message. */
function failed(r: DeployRun, result: 'failed' | 'rolled-back'): string {
  assert.equal(r.code, 10, `expected exit 10:\n${r.stdout}\n${r.stderr}`);
  assert.equal(r.done?.result, result, r.stdout);
  return r.done.message;
}

/** The previous release is untouched: same processes, live, and answering through the proxy. */
async function previousStillServes(svc: Service, oldPids: number[], failedVersion: string): Promise<void> {
  assert.deepEqual(await svc.versionsServed(10), ['1.0.0']);
  const st = await svc.status();
  assert.equal(st.live?.version, '1.0.0');
  assert.equal(st.deployment, null);
  assert.deepEqual(
    st.live.instances.map((i) => i.pid).sort((a, b) => a - b),
    oldPids,
  );
  assert.ok(
    st.live.instances.every((i) => i.alive && i.version === '1.0.0'),
    JSON.stringify(st),
  );
  await svc.noneLeft(failedVersion);
  assert.deepEqual(svc.pids(), oldPids, 'only the 1.0.0 processes run');
}

describe('deploy faults', () => {
  before(() => ensureBuilt());

  it('refuses an unknown config key or strategy at `baton up` (exit 2, did you mean) and `deploy --strategy canery`', async (t) => {
    const { svc, oldPids } = await serving(t);

    const bad = writeFile(
      svc.dir,
      'bad.yaml',
      [
        'service: web',
        'listen: 127.0.0.1:0',
        'app:',
        '  command: node app.js --port {port}',
        '  instancse: 2',
        'strategy:',
        '  type: rolling',
        '  maxSurg: 1',
      ].join('\n'),
    );
    const up = await runBaton(t, ['up', '-c', bad]);
    assert.equal(up.code, 2, up.stderr);
    assert.match(
      up.stderr,
      /bad\.yaml:5:3 app\.instancse: unknown key "instancse"; did you mean "instances"\?/,
    );
    assert.match(up.stderr, /bad\.yaml:8:\d+ strategy\.maxSurg: .*did you mean "maxSurge"\?/);

    const typo = writeFile(
      svc.dir,
      'typo.yaml',
      [
        'service: web',
        'listen: 127.0.0.1:0',
        'app:',
        '  command: node app.js',
        'strategy:',
        '  type: canery',
      ].join('\n'),
    );
    const up2 = await runBaton(t, ['up', '-c', typo]);
    assert.equal(up2.code, 2, up2.stderr);
    assert.match(
      up2.stderr,
      /typo\.yaml:6:\d+ strategy\.type: must be one of: blue-green, rolling, recreate/,
    );

    const r = await svc.deploy('1.0.1', ['--strategy', 'canery']);
    assert.equal(r.code, 2, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stderr, /canery/);
    assert.match(r.stderr, /blue-green.*rolling.*recreate/);
    assert.equal(r.events.length, 0, 'nothing started');
    await previousStillServes(svc, oldPids, '1.0.1');
  });

  it('fails a deploy whose command is not found (after a SIGHUP reload), naming the command', async (t) => {
    const { svc, oldPids } = await serving(t);
    svc.configure({ command: './does-not-exist {port}' });
    svc.daemon.child.kill('SIGHUP');
    await waitFor(
      () => logsWith(svc.daemon, 'config reloaded; app settings apply from the next deploy').length,
      {
        what: 'the reload',
      },
    );

    const r = await svc.deploy('1.0.1');
    const msg = failed(r, 'failed');
    assert.match(msg, /command not found: "\.\/does-not-exist" \(app\.command\)/);
    assert.match(
      msg,
      new RegExp(`relative paths start from ${svc.dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`),
    );
    assert.match(msg, /1\.0\.0 is serving/);
    await previousStillServes(svc, oldPids, '1.0.1');
    const [h] = await svc.history();
    assert.equal(h?.version, '1.0.1');
    assert.equal(h.result, 'failed');
    assert.match(h.reason ?? '', /command not found/);
  });

  it('fails a deploy when app.ports has no free port left for the new set', async (t) => {
    // Four free neighbouring ports (a range too small for blue-green's two sets is a config
    // error): 1.0.0 takes the first two, another process holds the other two.
    const from = await waitFor(
      async () => {
        const p = await freePort();
        if (p >= 65533) return 0;
        for (let i = 1; i < 4; i++) if (!(await portFree(p + i))) return 0;
        return p;
      },
      { what: 'four free neighbouring ports' },
    );
    const { svc, oldPids } = await serving(t, { app: [`  ports: ${from}-${from + 3}`] });
    const st = await svc.status();
    assert.deepEqual(st.live?.instances.map((i) => i.port).sort(), [from, from + 1]);
    for (const port of [from + 2, from + 3]) {
      const holder = net.createServer();
      await new Promise<void>((resolve) => holder.listen(port, '127.0.0.1', resolve));
      t.after(() => new Promise<void>((resolve) => holder.close(() => resolve())));
    }

    const r = await svc.deploy('1.0.1');
    const msg = failed(r, 'failed');
    assert.match(msg, new RegExp(`no free port left in app\\.ports ${from}-${from + 3}`));
    assert.match(msg, /Widen the range/);
    await previousStillServes(svc, oldPids, '1.0.1');
  });

  it('refuses versions with shell metacharacters and never runs them through a shell', async (t) => {
    const { svc, oldPids } = await serving(t);
    const pwned = path.join(svc.dir, 'pwned');
    for (const version of [
      `1.0;touch ${pwned}`,
      `$(touch ${pwned})`,
      `\`touch ${pwned}\``,
      '1.0 --ignore-sigterm',
    ]) {
      const r = await svc.deploy(version);
      assert.equal(r.code, 2, `${version}: ${r.stdout}\n${r.stderr}`);
      assert.ok(r.stderr.includes(`version "${version}" is not allowed`), r.stderr);
      assert.match(r.stderr, /use letters, digits and \. _ \+ -/);
      assert.equal(r.events.length, 0);
    }
    // Straight to the admin API too: the daemon itself refuses, not just the CLI.
    const res = await request(`http://127.0.0.1:${svc.adminPort}/v1/deploy`, {
      method: 'POST',
      reset: true,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ version: `1.0&&touch ${pwned}` }),
    });
    assert.equal(res.statusCode, 400, await res.body.text());
    assert.equal(existsSync(pwned), false, 'no shell ever ran the version');
    await previousStillServes(svc, oldPids, '1.0.1');
    assert.equal((await svc.history()).length, 1, 'a refused version is not a deploy');
  });

  it('fails when the new version never passes its health check (404), naming the instance and the last result', async (t) => {
    const { svc, oldPids } = await serving(t, { readyTimeout: '1s' }, { '1.0.1': ['--health-404'] });
    const r = await svc.deploy('1.0.1');
    const msg = failed(r, 'failed');
    assert.match(
      msg,
      // A steady 404 fails before readyTimeout once it answered healthPathMissingChecks times
      // (deploy-progress.test.ts); on a slow machine readyTimeout 1s may come first.
      /instance web-1\.0\.1-\d+ \(port \d+\) (was not ready within readyTimeout 1000ms: GET \/health answered 404, expected 2xx|answered GET \/health with 404 Not Found \d+ times in a row)/,
    );
    assert.match(msg, /Check app\.health\.path/);
    assert.match(msg, /app 1\.0\.1 listening on 127\.0\.0\.1:\d+ \(no \/health\)/, 'the log tail');
    await previousStillServes(svc, oldPids, '1.0.1');
  });

  it('kills an old instance that ignores SIGTERM with SIGKILL after stopTimeout', async (t) => {
    const { svc, oldPids } = await serving(t, {}, { '1.0.0': ['--ignore-sigterm'] });
    const oldIds = (await svc.status()).live!.instances.map((i) => i.id).sort();
    const r = await svc.deploy('1.0.1');
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    assert.deepEqual(await svc.versionsServed(6), ['1.0.1']);
    const killed = await waitFor(
      () => {
        const l = logsWith(svc.daemon, 'ignored SIGTERM for stopTimeout; killed with SIGKILL');
        return l.length === 2 ? l : null;
      },
      { what: 'the daemon to log both kills' },
    );
    assert.deepEqual(killed.map((l) => String(l.instance)).sort(), oldIds);
    await svc.noneLeft('1.0.0');
    for (const pid of oldPids) assert.ok(!svc.pids().includes(pid), `pid ${pid} is gone`);
    // Not before stopTimeout (1s) after the old set left rotation: SIGTERM had its chance.
    const drained = Date.parse(r.events.find((e) => e.step === 'draining')!.time);
    for (const l of killed) assert.ok(Date.parse(String(l.time)) - drained >= 900, JSON.stringify(l));
  });

  it('fails with the last log lines when the new version exits right after it starts', async (t) => {
    const { svc, oldPids } = await serving(t, {}, { '1.0.1': ['--exit-after', '0'] });
    const r = await svc.deploy('1.0.1');
    const msg = failed(r, 'failed');
    assert.match(
      msg,
      /instance web-1\.0\.1-\d+ \(pid \d+, port \d+\) exited with code 3 before it was ready/,
    );
    assert.match(msg, /Last log lines \(.*web-1\.0\.1-\d+\.log\)/);
    assert.match(msg, /app 1\.0\.1: exiting on purpose \(--exit-after\)/);
    await previousStillServes(svc, oldPids, '1.0.1');
  });

  it('rolls blue-green back when the new set becomes unhealthy after the switch', async (t) => {
    const { svc, oldPids } = await serving(
      t,
      { strategy: ['  type: blue-green', '  verify: 3s', '  keepOld: 0s'] },
      { '1.0.1': ['--unhealthy-after', '400'] },
    );
    const r = await svc.deploy('1.0.1');
    const msg = failed(r, 'rolled-back');
    assert.match(
      msg,
      /instance web-1\.0\.1-\d+ became unhealthy after the switch: GET \/health answered 503/,
    );
    assert.match(msg, /traffic switched back to 1\.0\.0/);
    assert.ok(r.events.some((e) => e.step === 'switching'));
    assert.ok(r.events.some((e) => e.step === 'rolling-back'));
    await previousStillServes(svc, oldPids, '1.0.1');
    const [h] = await svc.history();
    assert.equal(h?.result, 'rolled-back');
  });

  it('rolls a rolling deploy back when a batch becomes unhealthy within minReady', async (t) => {
    const { svc, oldPids } = await serving(
      t,
      { strategy: ['  type: rolling', '  maxSurge: 1', '  maxUnavailable: 0', '  minReady: 3s'] },
      { '1.0.1': ['--unhealthy-after', '400'] },
    );
    const r = await svc.deploy('1.0.1');
    const msg = failed(r, 'rolled-back');
    assert.match(msg, /instance web-1\.0\.1-\d+ became unhealthy after the switch/);
    assert.match(msg, /rolled back to 1\.0\.0/);
    assert.ok(r.events.some((e) => e.step === 'batch'));
    assert.ok(r.events.some((e) => e.step === 'rolling-back'));
    await previousStillServes(svc, oldPids, '1.0.1');
  });

  it('restarts a live instance killed with SIGKILL while traffic keeps flowing', async (t) => {
    const { svc, oldPids } = await serving(t);
    const load = startLoad(svc.daemon.url, { concurrency: 4, maxMs: 15_000 });
    await waitFor(() => load.result.ok >= 20, { what: 'load to flow' });
    const victim = oldPids[0]!;
    process.kill(victim, 'SIGKILL');
    const st = await waitFor(
      async () => {
        const s = await svc.status();
        const pids = s.live?.instances.map((i) => i.pid) ?? [];
        const ok =
          pids.length === 2 &&
          !pids.includes(victim) &&
          s.live!.instances.every((i) => i.alive && i.health === 'healthy' && i.version === '1.0.0');
        return ok ? s : null;
      },
      { timeout: 8000, what: 'the supervisor to restart the killed instance' },
    );
    const before = load.result.ok;
    await waitFor(() => load.result.ok >= before + 20, { what: 'load to flow after the restart' });
    const res = await load.stop();
    assert.equal(res.failed, 0, res.failures.join('\n'));
    assert.deepEqual([...res.byBody.keys()], ['1.0.0\n']);
    const pids = st.live!.instances.map((i) => i.pid).sort((a, b) => a - b);
    assert.ok(pids.includes(oldPids[1]!), 'the other instance was not touched');
    assert.deepEqual(svc.pids(), pids, 'no other app process runs');
    const exited = logsWith(svc.daemon, 'instance exited; out of rotation, restarting');
    assert.equal(exited.length, 1);
    assert.equal(exited[0]!.signal, 'SIGKILL');
  });
});
