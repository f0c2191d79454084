// A recorded pid may name another process by now (a reboot, a pid wrap). Baton must know its
// own processes by more than their pid: an instance whose pid a stranger holds is never
// signalled, its record is dropped and a new instance serves in its place; a record written by
// an older Baton (no start time, no instance id) is still adopted when the process is really
// its instance; a daemon.pid naming a process that is not a Baton daemon does not stop
// `baton up`, while a running daemon still refuses a second one (exit 5, a conflict).
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { before, describe, it, type TestContext } from 'node:test';
import type { ServiceState } from '../src/controller/state.js';
import type { InstanceRecord } from '../src/drivers/driver.js';
import { waitFor } from './helpers/index.js';
import { ensureBuilt, runBaton } from './helpers/cli.js';
import { logsWith, Service, type StatusView } from './helpers/app-daemon.js';

/** `sleep 60` in a process group of its own: a process that is nothing of Baton's. */
function stranger(t: TestContext): ChildProcess {
  const child = spawn('sleep', ['60'], { detached: true, stdio: 'ignore' });
  child.unref();
  t.after(() => {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // gone
    }
  });
  return child;
}

/** Running, not a zombie. */
function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) [ZX]/s.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

function writeState(svc: Service, state: ServiceState): void {
  writeFileSync(path.join(svc.stateDir, 'service.json'), `${JSON.stringify(state, null, 2)}\n`);
}

async function twoHealthy(svc: Service, version: string): Promise<StatusView> {
  return waitFor(
    async () => {
      const s = await svc.status();
      const ok =
        s.live?.version === version &&
        s.live.instances.length === 2 &&
        s.live.instances.every((i) => i.alive && i.health === 'healthy');
      return ok ? s : null;
    },
    { timeout: 10_000, what: `two healthy instances of ${version}` },
  );
}

describe('Baton knows its processes by more than their pid', () => {
  before(() => ensureBuilt());

  it('a recorded instance whose pid a stranger holds now: left alone, replaced; an old record still adopted', async (t) => {
    const svc = await Service.create(t, { instances: 2 });
    await svc.start();
    await svc.deployApi('1.0.0');
    // The daemon dies (its instances keep running), then one instance dies too and a stranger
    // gets a pid in its place; the other's record is made one of an older Baton.
    svc.daemon.child.kill('SIGKILL');
    await svc.daemon.exited;
    const state = svc.state();
    const [gone, kept] = state.live!.instances as [InstanceRecord, InstanceRecord];
    process.kill(-gone.pid, 'SIGKILL');
    await waitFor(() => !alive(gone.pid), { what: `instance ${gone.pid} to die` });
    const other = stranger(t);
    const pid = other.pid!;
    const { startTime: _s, bootId: _b, instanceId: _i, ...old } = kept;
    writeState(svc, {
      ...state,
      live: { version: '1.0.0', instances: [{ ...gone, pid }, old] },
    });

    await svc.start();
    const st = await twoHealthy(svc, '1.0.0');
    assert.ok(alive(pid), 'the stranger was not signalled');
    assert.ok(gone.startTime !== undefined && gone.instanceId !== undefined, 'identity recorded at start');
    const pids = st.live!.instances.map((i) => i.pid);
    assert.ok(!pids.includes(pid), `the stranger is not an instance: ${pids.join(', ')}`);
    assert.ok(pids.includes(kept.pid), 'the instance with an old record was adopted');
    assert.match(
      st.lastRecovery ?? '',
      new RegExp(
        `instance ${gone.id} lost: pid ${pid} belongs to another process now \\(started at tick \\d+`,
      ),
    );
    const lost = logsWith(svc.daemon, /^recorded instance lost/);
    assert.equal(lost.length, 1, JSON.stringify(lost));
    assert.equal(lost[0]!.pid, pid);
    assert.deepEqual(await svc.versionsServed(6), ['1.0.0']);
    // The state on disk no longer lists the stranger; the new instance has its identity.
    const saved = svc.state().live!.instances;
    assert.ok(!saved.some((r) => r.pid === pid));
    assert.ok(
      saved.some((r) => r.pid !== kept.pid && r.startTime !== undefined && r.instanceId !== undefined),
    );
    // A deploy replaces both, the stranger still untouched.
    await svc.deployApi('1.0.1');
    await svc.noneLeft('1.0.0');
    assert.ok(alive(pid), 'the stranger survives the deploy too');
  });

  it('an old record whose pid a stranger holds: not adopted, not signalled', async (t) => {
    const svc = await Service.create(t, { instances: 2 });
    await svc.start();
    await svc.deployApi('1.0.0');
    svc.daemon.child.kill('SIGKILL');
    await svc.daemon.exited;
    const state = svc.state();
    const [first, second] = state.live!.instances as [InstanceRecord, InstanceRecord];
    process.kill(-first.pid, 'SIGKILL');
    await waitFor(() => !alive(first.pid), { what: `instance ${first.pid} to die` });
    const pid = stranger(t).pid!;
    // Of an older Baton: only the pid (and the PORT, BATON_VERSION it gave every instance).
    const { startTime: _s, bootId: _b, instanceId: _i, ...old } = { ...first, pid };
    writeState(svc, { ...state, live: { version: '1.0.0', instances: [old, second] } });
    await svc.start();
    const st = await twoHealthy(svc, '1.0.0');
    assert.ok(alive(pid), 'the stranger was not signalled');
    assert.ok(!st.live!.instances.some((i) => i.pid === pid));
    assert.match(st.lastRecovery ?? '', /no PORT=\d+ and BATON_VERSION=1\.0\.0 in its environment/);
  });

  it('a daemon.pid naming a process that is no Baton daemon does not stop baton up', async (t) => {
    const svc = await Service.create(t, { instances: 1 });
    const pid = stranger(t).pid!;
    mkdirSync(svc.stateDir);
    const pidFile = path.join(svc.stateDir, 'daemon.pid');
    // As an older Baton wrote it (the pid alone), then as this one does with another start time.
    for (const text of [
      `${pid}\n`,
      `${pid} 1 ${readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()}\n`,
    ]) {
      writeFileSync(pidFile, text, { flag: 'w' });
      const d = await svc.start();
      assert.equal(
        readFileSync(pidFile, 'utf8').split(' ')[0],
        String(d.child.pid),
        'the lock is the new daemon',
      );
      assert.ok(logsWith(d, /daemon\.pid names a process that is not a Baton daemon/).length > 0);
      d.child.kill('SIGTERM');
      assert.equal((await d.exited).code, 0);
    }
    assert.ok(alive(pid), 'the stranger was not signalled');
  });

  it('a running daemon still refuses a second baton up on its stateDir (exit 5)', async (t) => {
    const svc = await Service.create(t, { instances: 1 });
    const first = await svc.start();
    const pidFile = path.join(svc.stateDir, 'daemon.pid');
    const second = await runBaton(t, ['up', '-c', svc.file]);
    assert.equal(second.code, 5, second.stderr);
    assert.match(
      second.stderr,
      new RegExp(
        `^baton: another baton daemon \\(pid ${first.child.pid}, started at tick \\d+\\) already runs with state in `,
      ),
    );
    // The same when the file is one of an older Baton: its command line says it is a daemon.
    writeFileSync(pidFile, `${first.child.pid}\n`);
    const third = await runBaton(t, ['up', '-c', svc.file]);
    assert.equal(third.code, 5, third.stderr);
    assert.match(third.stderr, /another baton daemon \(pid \d+: \S+ \S+baton\.js up -c /);
    assert.equal((await svc.status()).live, null, 'the first one still answers');
    assert.equal(first.child.exitCode, null);
  });
});
