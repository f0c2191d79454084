// A full disk under stateDir, for real: the service's state folder is a small tmpfs that the
// test fills until ENOSPC and frees again. A state file that cannot be written must never wedge
// the daemon: a deploy is refused at once (or stops at its next step) with the file and the
// error, the lock is released, the previous version serves every request, `baton abort`
// reaches the deploy, the next deploy works once there is room, and SIGTERM still stops the
// daemon (exit 8, saying why). Mounting a tmpfs needs root: skipped with the reason otherwise.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdtempSync,
  openSync,
  rmdirSync,
  symlinkSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { before, describe, it, type TestContext } from 'node:test';
import { startLoad, waitFor } from './helpers/index.js';
import { ensureBuilt, runBaton } from './helpers/cli.js';
import { logsWith, Service, type DeployEvent, type ServiceOptions } from './helpers/app-daemon.js';

interface Disk {
  /** Writes a file until the tmpfs has no byte left. */
  fill(): void;
  free(): void;
}

/** The service's stateDir on a 4 MiB tmpfs (stateDir a symlink to it); a reason when it can't be. */
function smallDisk(t: TestContext, svc: Service): Disk | string {
  if (process.getuid?.() !== 0) return 'mounting a tmpfs needs root';
  const mnt = mkdtempSync(path.join(os.tmpdir(), 'baton-enospc-'));
  const mount = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', mnt], { encoding: 'utf8' });
  if (mount.status !== 0) {
    rmdirSync(mnt);
    return `cannot mount a tmpfs here (needs CAP_SYS_ADMIN): ${mount.stderr.trim()}`;
  }
  // After the service's teardown (added before this): its processes are gone by then.
  // Lazy (-l): a process still closing its log files there must not leave the mount behind.
  t.after(() => {
    spawnSync('umount', ['-l', mnt]);
    rmdirSync(mnt);
  });
  symlinkSync(mnt, svc.stateDir);
  const filler = path.join(mnt, 'filler');
  return {
    fill: () => {
      const fd = openSync(filler, 'a');
      try {
        // Big chunks, then ever smaller ones: every page of the tmpfs ends up taken.
        for (const size of [256 * 1024, 4096, 1]) {
          const chunk = Buffer.alloc(size, 'x');
          for (let i = 0; i < 100_000; i++) {
            try {
              writeSync(fd, chunk);
            } catch (err) {
              if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
              break;
            }
          }
        }
      } finally {
        closeSync(fd);
      }
      assert.equal(
        spawnSync('df', ['--output=avail', mnt], { encoding: 'utf8' }).stdout.split('\n')[1]?.trim(),
        '0',
      );
    },
    free: () => unlinkSync(filler),
  };
}

const OPTIONS: ServiceOptions = { instances: 2, readyTimeout: '10s' };

/** 1.0.0 live on a service whose stateDir can be filled, with requests going through it. */
async function liveOnSmallDisk(
  t: TestContext,
  strategy?: string[],
): Promise<{ svc: Service; disk: Disk; traffic: ReturnType<typeof startLoad> } | null> {
  const svc = await Service.create(t, { ...OPTIONS, ...(strategy ? { strategy } : {}) });
  const disk = smallDisk(t, svc);
  if (typeof disk === 'string') {
    t.skip(disk);
    return null;
  }
  await svc.start();
  await svc.deployApi('1.0.0');
  const traffic = startLoad(svc.url, { concurrency: 1, maxMs: 120_000 });
  t.after(() => traffic.stop());
  return { svc, disk, traffic };
}

async function assertAllServed(traffic: ReturnType<typeof startLoad>): Promise<void> {
  const r = await traffic.stop();
  assert.ok(r.sent > 50, `only ${r.sent} requests went through`);
  assert.deepEqual(r.failures, [], `${r.failed} of ${r.sent} requests failed`);
}

function doneOf(stdout: string): DeployEvent | undefined {
  return stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as DeployEvent)
    .find((e) => e.kind === 'done');
}

const WRITE_FAILED =
  /cannot write \S+service\.json \(ENOSPC: no space left on device, write\): the disk of \S+ is full; free space there/;

describe('a full disk under stateDir never wedges the daemon', () => {
  before(() => ensureBuilt());

  it('a deploy whose state cannot be written is refused at once; once there is room, it works', async (t) => {
    const s = await liveOnSmallDisk(t);
    if (!s) return;
    const { svc, disk, traffic } = s;
    disk.fill();
    const r = await svc.deploy('1.0.1');
    assert.equal(r.code, 8, `exit ${r.code ?? r.signal}:\n${r.stdout}\n${r.stderr}`);
    assert.match(r.stderr, /^baton: deploy of 1\.0\.1 not started: /);
    assert.match(r.stderr, WRITE_FAILED);
    assert.match(r.stderr, /Nothing changed \(1\.0\.0 still serves\)/);
    const st = await svc.status();
    assert.equal(st.deployment, null, 'no deploy holds the lock');
    assert.equal(st.live?.version, '1.0.0');
    assert.deepEqual(svc.pids('1.0.1'), [], 'nothing of 1.0.1 started');
    // Still refused for the disk, not for a lock (exit 11).
    assert.equal((await svc.deploy('1.0.1')).code, 8);

    disk.free();
    const ok = await svc.deploy('1.0.1');
    assert.equal(ok.code, 0, `${ok.stdout}\n${ok.stderr}`);
    assert.equal(ok.done?.result, 'succeeded');
    assert.deepEqual(await svc.versionsServed(6), ['1.0.1']);
    assert.equal(svc.state().live?.version, '1.0.1');
    await assertAllServed(traffic);
  });

  it('the disk fills during a deploy: it stops at its next step and switches back', async (t) => {
    // A long verify: the disk fills while all traffic is on 1.0.1 and the old set is its backup.
    const s = await liveOnSmallDisk(t, ['  type: blue-green', '  verify: 3s', '  keepOld: 0s']);
    if (!s) return;
    const { svc, disk, traffic } = s;
    const deploying = svc.deploy('1.0.1');
    await waitFor(() => svc.state().deployment?.step === 'verifying', {
      timeout: 10_000,
      what: 'the deploy of 1.0.1 to verify',
    });
    disk.fill();
    const r = await deploying;
    assert.equal(r.code, 10, `exit ${r.code ?? r.signal}:\n${r.stdout}\n${r.stderr}`);
    assert.equal(r.done?.result, 'rolled-back');
    assert.match(r.done?.message ?? '', WRITE_FAILED);
    assert.match(r.done?.message ?? '', /; traffic switched back to 1\.0\.0; 1\.0\.0 is serving$/);
    await svc.noneLeft('1.0.1');
    const st = await svc.status();
    assert.equal(st.deployment, null);
    assert.equal(st.live?.version, '1.0.0');
    assert.equal(st.live?.instances.length, 2);
    assert.deepEqual(await svc.versionsServed(6), ['1.0.0']);
    assert.ok(logsWith(svc.daemon, /^could not save the state/).length > 0, 'the daemon says so in its log');

    // The state on disk catches up by itself once there is room again.
    disk.free();
    await waitFor(
      () => {
        const on = svc.state();
        // The log line after the write: it may reach us a moment after the file changed.
        return (
          on.deployment === null &&
          on.live?.version === '1.0.0' &&
          logsWith(svc.daemon, 'state saved again').length > 0
        );
      },
      { timeout: 10_000, what: 'the state file written again, and the log saying so' },
    );
    await assertAllServed(traffic);
  });

  it('a rollback aborted while the disk is full: abort reaches it, the lock is released; the next rollback is not refused', async (t) => {
    const s = await liveOnSmallDisk(t);
    if (!s) return;
    const { svc, disk, traffic } = s;
    await svc.deployApi('1.0.1');
    // keepOld 0s: the rollback deploys 1.0.0 again, slow to get ready: slower than the abort
    // takes to arrive on a loaded machine, since once ready, an instance writing its first log
    // line to the full disk dies, and the rollback would end on its own before the abort.
    svc.setFlags({ '1.0.0': ['--start-delay', '15000'] });
    const rolling = runBaton(t, ['rollback', '-c', svc.file, '--json'], { timeout: 30_000 });
    await waitFor(() => svc.state().deployment?.started.length === 2, {
      timeout: 10_000,
      what: 'the rollback to have started 1.0.0',
    });
    disk.fill();
    const a = await runBaton(t, ['abort', '-c', svc.file]);
    assert.equal(a.code, 0, a.stderr);
    const r = await rolling;
    assert.equal(r.code, 10, `exit ${r.code ?? r.signal}:\n${r.stdout}\n${r.stderr}`);
    const done = doneOf(r.stdout);
    assert.equal(done?.result, 'failed');
    assert.match(done?.message ?? '', /aborted by .*; 1\.0\.1 is serving$/);
    await svc.noneLeft('1.0.0');
    assert.equal((await svc.status()).deployment, null);
    // Nothing runs now: abort says so (exit 4). Another rollback is not refused for the disk: it
    // runs, though here the new instances cannot start (their logs are on the full disk too); it
    // fails cleanly and 1.0.1 keeps serving.
    assert.equal((await runBaton(t, ['abort', '-c', svc.file])).code, 4);
    svc.setFlags({});
    const full = await runBaton(t, ['rollback', '-c', svc.file, '--json'], { timeout: 30_000 });
    assert.match(full.stdout, /rolling back anyway/, full.stdout);
    assert.equal(full.code, 10, `${full.stdout}\n${full.stderr}`);
    await svc.noneLeft('1.0.0');
    assert.deepEqual(await svc.versionsServed(6), ['1.0.1']);

    disk.free();
    const back = await runBaton(t, ['rollback', '-c', svc.file, '--json'], { timeout: 30_000 });
    assert.equal(back.code, 0, `${back.stdout}\n${back.stderr}`);
    assert.deepEqual(await svc.versionsServed(6), ['1.0.0']);
    await waitFor(() => svc.state().live?.version === '1.0.0', {
      timeout: 10_000,
      what: 'the state file to say 1.0.0 is live',
    });
    await assertAllServed(traffic);
  });

  it('SIGTERM (--stop-on-exit) with the disk full: the daemon stops its instances and exits 8, saying why', async (t) => {
    const svc = await Service.create(t, OPTIONS);
    const disk = smallDisk(t, svc);
    if (typeof disk === 'string') return t.skip(disk);
    const daemon = await svc.start({}, ['--stop-on-exit']);
    await svc.deployApi('1.0.0');
    disk.fill();
    const t0 = Date.now();
    daemon.child.kill('SIGTERM');
    // drainTimeout 1s and stopTimeout 1s: well within 10s.
    const exit = await Promise.race([
      daemon.exited,
      new Promise<null>((r) => setTimeout(() => r(null), 10_000).unref()),
    ]);
    assert.ok(exit, `still running 10s after SIGTERM:\n${daemon.stdout().slice(-2000)}`);
    assert.equal(exit.code, 8, daemon.stderr());
    assert.ok(Date.now() - t0 < 10_000);
    assert.match(
      daemon.stderr(),
      /^baton: the instances were stopped, but cannot write \S+service\.json \(ENOSPC/m,
    );
    assert.match(daemon.stderr(), /the next `baton up` starts from the state last saved/);
    assert.deepEqual(svc.pids(), [], 'its instances were stopped');
    assert.ok(!existsSync(path.join(svc.stateDir, 'daemon.pid')), 'the daemon lock was released');

    // It starts again once there is room, from the state last saved: 1.0.0 back.
    disk.free();
    await svc.start();
    await waitFor(
      async () => {
        const st = await svc.status();
        return (
          st.live?.version === '1.0.0' && st.live.instances.filter((i) => i.health === 'healthy').length === 2
        );
      },
      { timeout: 10_000, what: '1.0.0 back after the restart' },
    );
  });
});
