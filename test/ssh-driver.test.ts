// The SSH driver against real sshd servers: three hosts in network namespaces (helpers/netns.ts)
// running the example app, reached from here over a bridge. Placement, start, health from this
// machine, graceful and forced stops, a process killed on its host, adoption by a fresh driver,
// remote logs, a key the hosts refuse, and a host cut off the network and back. Without root or
// `ip netns` or sshd the host tests are skipped (the quoting and parsing tests still run).
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it, test, type TestContext } from 'node:test';
import { request } from 'undici';
import { appSchema, type AppConfig } from '../src/config/schema.js';
import type { Instance, InstanceRecord } from '../src/drivers/driver.js';
import {
  parsePoll,
  parsePorts,
  parseStart,
  parseStop,
  identityWords,
  pollScript,
  startScript,
  stopScript,
} from '../src/drivers/ssh/scripts.js';
import { shJoin, shPath, shQuote } from '../src/drivers/ssh/quote.js';
import { SshDriver, SshHostError, type SshDriverOptions } from '../src/drivers/ssh/ssh.js';
import { classify, controlDirFor, SshTransport } from '../src/drivers/ssh/transport.js';
import { silentLogger } from '../src/log.js';
import { tempDir } from './helpers/cli.js';
import { APP, waitFor } from './helpers/index.js';
import { createHosts, sshHostsUnavailable, type TestHosts } from './helpers/netns.js';

/** The words as sh sees them: sh -c 'printf "%s\0" <quoted words>'. */
function throughSh(words: string[]): string[] {
  const r = spawnSync('sh', ['-c', `printf '%s\\0' ${shJoin(words)}`], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.split('\0').slice(0, -1);
}

describe('shell quoting', () => {
  it('leaves safe words alone and quotes the rest', () => {
    assert.equal(shQuote('node'), 'node');
    assert.equal(shQuote('/usr/bin/node'), '/usr/bin/node');
    assert.equal(shQuote('--port=8081'), '--port=8081');
    assert.equal(shQuote('a b'), `'a b'`);
    assert.equal(shQuote(''), `''`);
    assert.equal(shQuote(`it's`), `'it'\\''s'`);
    assert.equal(shQuote('$HOME'), `'$HOME'`);
  });

  it('every word comes out of sh exactly as it went in', () => {
    const words = [
      'plain',
      'with space',
      '  leading and trailing  ',
      `it's`,
      `''`,
      `"double"`,
      '$HOME',
      '${PATH}',
      '$(id)',
      '`id`',
      'a\\b\\\\c',
      'semi;colon && more | pipe > file',
      '*',
      '?',
      '[a-z]',
      '~',
      '~/x',
      'line\nbreak',
      'tab\there',
      '',
      '-n',
      '!bang',
      '#hash',
      'ünïcødé',
    ];
    assert.deepEqual(throughSh(words), words);
  });

  it('quotes a path, expanding only a leading ~/ to the remote $HOME', () => {
    const r = spawnSync('sh', ['-c', `printf '%s\\n' ${shPath('~/.baton/my app')} ${shPath('/tmp/$x y')}`], {
      encoding: 'utf8',
      env: { ...process.env, HOME: '/home/someone' },
    });
    assert.equal(r.stdout, '/home/someone/.baton/my app\n/tmp/$x y\n');
  });

  it('refuses a NUL byte', () => {
    assert.throws(() => shQuote('a\0b'), /NUL/);
  });
});

describe('ssh driver parsing', () => {
  it('reads listening ports from ss, a /dev/tcp probe, or says it cannot tell', () => {
    const ss = [
      '#ss',
      'State  Recv-Q Send-Q Local Address:Port  Peer Address:Port Process',
      'LISTEN 0      128        0.0.0.0:22         0.0.0.0:*',
      'LISTEN 0      511      127.0.0.1:18081      0.0.0.0:*',
      'LISTEN 0      4096 127.0.0.53%lo:53         0.0.0.0:*',
      'LISTEN 0      511           [::]:18082         [::]:*',
      'LISTEN 0      511              *:9000             *:*',
    ].join('\n');
    assert.deepEqual([...parsePorts(ss)!].sort(), [18081, 18082, 22, 53, 9000]);
    assert.deepEqual([...parsePorts('#probe\nused 18082\n')!], [18082]);
    assert.equal(parsePorts('#none\n'), null);
  });

  it('reads the monitor and stop answers; a log line cannot pass for a status', () => {
    const r = parsePoll(
      [
        'A 10',
        'W 11 pid 11 is another',
        'D 11',
        'L 11 app crashed',
        'L 11 D 10',
        'L 11 W 10 x',
        'L 11 ',
        'C abc',
        'junk',
      ].join('\n'),
    );
    assert.deepEqual([...r.alive], [10]);
    assert.deepEqual([...r.gone], [11]);
    assert.deepEqual([...r.lost], [[11, 'pid 11 is another']]);
    assert.equal(r.tails.get(11), 'app crashed\nD 10\nW 10 x\n');
    assert.deepEqual([...r.cleaned], ['abc']);
    assert.deepEqual(parseStop('R forced\nL last words\nL R stopped\nL W 1 x\n'), {
      result: 'forced',
      tail: 'last words\nR stopped\nW 1 x',
      lost: null,
    });
    assert.equal(parseStop('W pid 9 is another\nR gone\n').lost, 'pid 9 is another');
  });

  it("turns ssh's failures into errors that name the host and say what to do", () => {
    const host = { name: 'worker-1', address: '10.0.0.11', user: 'deploy', port: 2222 };
    const auth = classify(
      host,
      255,
      null,
      'deploy@10.0.0.11: Permission denied (publickey).\n',
      'start x',
      5000,
    );
    assert.equal(auth.kind, 'auth');
    assert.match(auth.message, /worker-1 \(deploy@10\.0\.0\.11:2222\)/);
    assert.match(auth.message, /Permission denied \(publickey\)/);
    assert.match(auth.message, /authorized_keys/);
    const down = classify(
      host,
      255,
      null,
      'ssh: connect to host 10.0.0.11 port 2222: Connection timed out',
      'x',
      5000,
    );
    assert.equal(down.kind, 'unreachable');
    assert.match(down.message, /worker-1 .*unreachable over SSH \(x; connect timeout 5000ms\): ssh: connect/);
    const failed = classify(host, 3, null, 'command not found on this host: ./start.sh', 'start x', 5000);
    assert.equal(failed.kind, 'remote');
    assert.match(failed.message, /start x failed on host worker-1 .*code 3:\n {4}command not found/);
    assert.equal(classify(host, 255, null, 'Host key verification failed.', 'x', 5000).kind, 'hostkey');
  });

  it('keeps control sockets short enough for a Unix socket path', () => {
    assert.equal(controlDirFor('/srv/web/.baton'), '/srv/web/.baton/ssh');
    const long = controlDirFor(`/srv/${'x'.repeat(80)}/.baton`);
    assert.ok(long.length <= 49, long);
  });
});

describe(
  'remote scripts, run by a local sh',
  { skip: spawnSync('sh', ['-c', 'command -v setsid']).status !== 0 },
  () => {
    it('start under ~/, poll, stop: the pid is its own group, the files where they should be', (t) => {
      const home = tempDir(t);
      mkdirSync(path.join(home, 'work dir'));
      const sh = (script: string): string => {
        const r = spawnSync('sh', ['-s'], {
          input: script,
          cwd: home,
          env: { ...process.env, HOME: home },
          encoding: 'utf8',
        });
        assert.equal(r.status, 0, r.stderr);
        return r.stdout;
      };
      const started = parseStart(
        sh(
          startScript({
            dir: shPath('~/.baton/my web'),
            id: 'web-1-h-8081',
            token: 'tok',
            cwd: 'work dir',
            env: { PORT: '8081', X: `a 'b' $c`, BATON_INSTANCE_ID: 'tok' },
            words: ['sh', '-c', 'echo "in $(pwd) with $X"; exec sleep 30'],
          }),
        ),
      );
      assert.ok(started);
      const { pid, logFile } = started;
      // Who it is, as the driver records it: start time (field 22 of its stat) and boot.
      assert.equal(
        started.startTime,
        Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[19]),
      );
      assert.equal(started.bootId, readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim());
      const identity = identityWords({ ...record(pid, logFile), ...started, instanceId: 'tok' });
      t.after(() => {
        try {
          process.kill(-pid, 'SIGKILL');
        } catch {
          // gone
        }
      });
      assert.equal(logFile, path.join(home, '.baton/my web/logs/web-1-h-8081.log'));
      const pidFile = path.join(home, '.baton/my web/run/web-1-h-8081.pid');
      assert.equal(readFileSync(pidFile, 'utf8'), `${pid} tok\n`);
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
        .replace(/^.*\) /s, '')
        .split(' ');
      assert.deepEqual([stat[2], stat[3]], [String(pid), String(pid)], 'pgid and sid');
      const entry = { pid, logFile, pidFile, tail: true, identity };
      const polled = parsePoll(sh(pollScript([entry], [])));
      assert.deepEqual([...polled.alive], [pid]);
      assert.equal(polled.tails.get(pid), `in ${path.join(home, 'work dir')} with a 'b' $c`);
      const stopped = parseStop(
        sh(stopScript({ pid, signal: 'TERM', timeoutMs: 2000, logFile, pidFile, identity })),
      );
      assert.equal(stopped.result, 'stopped');
      assert.ok(!existsSync(pidFile), 'pid file removed');
      assert.ok(gone(pid));
      assert.deepEqual([...parsePoll(sh(pollScript([entry], []))).gone], [pid]);
    });

    it('a pid that is another process now is never signalled: stop, poll, a new start, a cleanup', async (t) => {
      const home = tempDir(t);
      const sh = (script: string): string => {
        const r = spawnSync('sh', ['-s'], {
          input: script,
          env: { ...process.env, HOME: home },
          encoding: 'utf8',
        });
        assert.equal(r.status, 0, r.stderr);
        return r.stdout;
      };
      // The stranger: a process of someone else that got the pid of an instance recorded before.
      const stranger = spawnStranger(t);
      const pid = stranger.pid!;
      const startTime = Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[19]);
      const logFile = path.join(home, 'web.log');
      const pidFile = path.join(home, 'run', 'web-1-h-8081.pid');
      mkdirSync(path.dirname(pidFile));
      const records: [string, InstanceRecord][] = [
        ['another start time', { ...record(pid, logFile), startTime: startTime + 1, instanceId: 'a1' }],
        ['no BATON_INSTANCE_ID (start time lost)', { ...record(pid, logFile), instanceId: 'a1' }],
        // A record of an older Baton: the environment every instance had (PORT, BATON_VERSION).
        ['an old record', record(pid, logFile)],
      ];
      for (const [what, r] of records) {
        const identity = identityWords(r);
        const stopped = parseStop(
          sh(stopScript({ pid, signal: 'TERM', timeoutMs: 300, logFile, pidFile, identity })),
        );
        assert.equal(stopped.result, 'gone', what);
        assert.match(stopped.lost ?? '', new RegExp(`pid ${pid} belongs to another process now`), what);
        const polled = parsePoll(sh(pollScript([{ pid, logFile, pidFile, tail: false, identity }], [])));
        assert.deepEqual([...polled.gone], [pid], what);
        assert.match(polled.lost.get(pid) ?? '', /belongs to another process now/, what);
        assert.ok(!gone(pid), `${what}: the stranger lives`);
      }
      // Its pid in a pid file of a start that failed, or of the id a new start takes over.
      writeFileSync(pidFile, `${pid} tok\n`);
      assert.match(sh(pollScript([], [{ pidFileWord: shQuote(pidFile), token: 'tok' }])), /^C tok$/m);
      writeFileSync(pidFile, `${pid} tok\n`);
      const started = parseStart(
        sh(
          startScript({
            dir: shQuote(home),
            id: 'web-1-h-8081',
            token: 'new',
            cwd: undefined,
            env: { BATON_INSTANCE_ID: 'new' },
            words: ['sleep', '30'],
          }),
        ),
      );
      assert.ok(started);
      t.after(() => killGroup(started.pid));
      await new Promise((r) => setTimeout(r, 200));
      assert.ok(!gone(pid), 'the stranger lives');
      // The upgrade case the other way round: an old record of a real instance is still ours.
      const old = spawnStranger(t, { PORT: '8081', BATON_VERSION: '1.0.0' });
      const mine = record(old.pid!, logFile);
      const ours = parsePoll(
        sh(pollScript([{ pid: old.pid!, logFile, pidFile, tail: false, identity: identityWords(mine) }], [])),
      );
      assert.deepEqual([...ours.alive], [old.pid]);
      const stopped = parseStop(
        sh(
          stopScript({
            pid: old.pid!,
            signal: 'TERM',
            timeoutMs: 2000,
            logFile,
            pidFile,
            identity: identityWords(mine),
          }),
        ),
      );
      assert.equal(stopped.result, 'stopped');
    });
  },
);

/** A record as the driver keeps it, of `pid`, without the identity fields (add them). */
function record(pid: number, logFile: string): InstanceRecord {
  return {
    id: 'web-1.0.0-h-8081',
    version: '1.0.0',
    host: '127.0.0.1',
    port: 8081,
    pid,
    logFile,
    startedAt: new Date().toISOString(),
  };
}

/** `sleep 60` in a process group of its own (an unrelated process), killed at teardown. */
function spawnStranger(t: TestContext, env: Record<string, string> = {}): ChildProcess {
  const child = spawn('sleep', ['60'], {
    detached: true,
    stdio: 'ignore',
    env: { PATH: process.env.PATH, ...env },
  });
  child.unref();
  t.after(() => killGroup(child.pid!));
  return child;
}

function killGroup(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // gone
  }
}

// --- on hosts ----------------------------------------------------------------------------------

const SERVICE = 'web';

function appConfig(extra = ''): AppConfig {
  return appSchema.parse({
    command: `'${process.execPath}' '${APP}' --host 0.0.0.0 --port {port} --version {version}${extra}`,
    ports: '18081-18082',
    env: { GREETING: `it's "quoted" $HOME` },
    readyTimeout: '10s',
  });
}

/** Gone for good: no such process, or a zombie (nothing reaps orphans in some containers). */
function gone(pid: number): boolean {
  try {
    return /^\d+ \(.*\) [ZX]/s.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true;
  }
}

async function health(r: InstanceRecord): Promise<string> {
  const res = await request(`http://${r.host}:${r.port}/health`, { headersTimeout: 2000, bodyTimeout: 2000 });
  return `${res.statusCode} ${(await res.body.text()).trim()}`;
}

async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: not within ${ms}ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

test('SSH driver on hosts in network namespaces', { skip: sshHostsUnavailable() ?? false }, async (t) => {
  const th = await createHosts(t, 3);
  if (!th) return t.skip(sshHostsUnavailable() ?? 'no test hosts');
  const dir = tempDir(t);
  const stateDir = path.join(dir, 'state');
  const remoteDir = path.join(dir, 'remote');
  const drivers: SshDriver[] = [];
  const driver = (app = appConfig(), extra: Partial<SshDriverOptions> = {}): SshDriver => {
    const d = new SshDriver(app, th.hosts, {
      service: SERVICE,
      stateDir,
      log: silentLogger(),
      sshOptions: th.sshOptions,
      connectTimeoutMs: 2000,
      commandTimeoutMs: 3000,
      remoteDir,
      pollIntervalMs: 250,
      ...extra,
    });
    drivers.push(d);
    return d;
  };
  try {
    await run(t, th, driver, { stateDir, remoteDir });
  } finally {
    await Promise.all(drivers.map((d) => d.close()));
  }
  // Every master connection ended with the drivers: no socket, no ssh process left.
  await waitFor(() => readdirSync(path.join(stateDir, 'ssh')).length === 0, { what: 'control sockets gone' });
  const ps = spawnSync('ps', ['-eo', 'args'], { encoding: 'utf8' }).stdout;
  assert.ok(!ps.includes(path.join(stateDir, 'ssh')), ps);
});

async function run(
  t: TestContext,
  th: TestHosts,
  driver: (app?: AppConfig, extra?: Partial<SshDriverOptions>) => SshDriver,
  { stateDir, remoteDir }: { stateDir: string; remoteDir: string },
): Promise<void> {
  const d = driver();
  const [h1, h2, h3] = th.hosts as [(typeof th.hosts)[0], (typeof th.hosts)[0], (typeof th.hosts)[0]];
  const live: Instance[] = [];
  const records = (): InstanceRecord[] => live.filter((i) => i.alive()).map((i) => i.record);

  await t.test('one instance on each host, each answering here', async () => {
    for (let slot = 1; slot <= 3; slot++) {
      const place = await d.allocate(records());
      live.push(await d.start({ service: SERVICE, ...place, version: '1.0.0', slot }));
    }
    assert.deepEqual(
      live.map((i) => [i.record.host, i.record.port]),
      [h1, h2, h3].map((h) => [h.address, 18081]),
    );
    for (const [n, i] of live.entries()) {
      const r = i.record;
      assert.equal(r.id, `web-1.0.0-host-${n + 1}-18081`);
      assert.equal(r.logFile, path.join(remoteDir, 'logs', `${r.id}.log`));
      assert.ok(r.pid > 0);
      assert.equal(await waitFor(() => health(r), { timeout: 10_000, what: `${r.id} healthy` }), '200 ok');
      // The pid recorded is the app itself, leader of its own process group and session.
      const stat = readFileSync(`/proc/${r.pid}/stat`, 'utf8')
        .replace(/^.*\) /s, '')
        .split(' ');
      assert.deepEqual([stat[2], stat[3]], [String(r.pid), String(r.pid)], 'pgid and sid');
      const environ = readFileSync(`/proc/${r.pid}/environ`, 'utf8').split('\0');
      for (const v of ['PORT=18081', 'BATON_VERSION=1.0.0', `BATON_SERVICE=web`, `BATON_INSTANCE=${n + 1}`])
        assert.ok(environ.includes(v), v);
      assert.ok(environ.includes(`GREETING=it's "quoted" $HOME`));
    }
  });

  await t.test('the next instance goes to the least busy host, on another port', async () => {
    const place = await d.allocate(records());
    assert.deepEqual(place, { host: h1.address, port: 18082 });
    // A port something else listens on is skipped: here 18081, which Baton is not told about.
    assert.deepEqual(await d.allocate([]), { host: h1.address, port: 18082 });
    // A new version spreads over the hosts: host-1 runs one 1.0.1 already, so host-2 is next
    // (by count alone, all three tie and host-1 comes first).
    const spread = [{ ...live[0]!.record, version: '1.0.1' }, ...records().slice(1)];
    assert.equal((await d.allocate(spread)).host, h1.address);
    assert.equal((await d.allocate(spread, '1.0.1')).host, h2.address);
    // Two instances on host-1 and host-2: host-3 is next.
    assert.deepEqual(
      (await d.allocate([...records(), { ...live[0]!.record, port: 18082 }])).host,
      h2.address,
    );
    const more = await d.start({ service: SERVICE, ...place, version: '1.0.0', slot: 4 });
    live.push(more);
    assert.equal(await waitFor(() => health(more.record), { timeout: 10_000, what: 'healthy' }), '200 ok');
    // Host-1 full: the range has two ports.
    await assert.rejects(
      d.allocate([
        ...records(),
        ...[h2, h3].flatMap((h) =>
          [18081, 18082].map((port) => ({ ...live[0]!.record, host: h.address, port })),
        ),
      ]),
      (err: Error) => /no free port left in app\.ports 18081-18082 on any host/.test(err.message),
    );
  });

  await t.test('logs: fetched on demand, and the tail kept for error messages', async () => {
    const i = live[0]!;
    assert.match((await d.fetchLog(i.record, 5)).text, /app 1\.0\.0 listening on 0\.0\.0\.0:18081/);
    await waitFor(() => live[1]!.logTail().includes('listening on'), { what: 'log tail from the monitor' });
    // Each poll notes the log's size (for `baton logs --since`): read from there, nothing is
    // new (the app writes no more); from 0, the whole log.
    const size = await waitFor(() => i.logSize?.() ?? null, { what: 'the log size from the monitor' });
    assert.ok(size.bytes > 0 && size.at <= Date.now(), JSON.stringify(size));
    assert.deepEqual(await d.fetchLog(i.record, 10, size.bytes), { text: '', cut: false });
    assert.match((await d.fetchLog(i.record, 10, 0)).text, /^app 1\.0\.0 listening on/);
  });

  await t.test('stop is graceful: the stop signal, and the process is gone', async () => {
    const i = live.pop()!;
    const started = Date.now();
    assert.deepEqual(await d.stop(i, { signal: 'SIGTERM', timeoutMs: 5000 }), { forced: false });
    assert.ok(Date.now() - started < 4000, `took ${Date.now() - started}ms`);
    assert.equal(i.alive(), false);
    assert.deepEqual(await i.exited, { code: null, signal: null });
    assert.ok(gone(i.record.pid));
    await assert.rejects(health(i.record));
    assert.ok(!existsSync(path.join(remoteDir, 'run', `${i.record.id}.pid`)), 'pid file removed');
    // Stopping it again is a no-op.
    assert.deepEqual(await d.stop(i, { signal: 'SIGTERM', timeoutMs: 5000 }), { forced: false });
  });

  await t.test('stop is forced after timeoutMs when the app ignores the signal', async () => {
    const stubborn = driver(appConfig(' --ignore-sigterm'));
    const place = await stubborn.allocate(records());
    const i = await stubborn.start({ service: SERVICE, ...place, version: '1.0.1', slot: 5 });
    await waitFor(() => health(i.record), { timeout: 10_000, what: 'healthy' });
    const started = Date.now();
    assert.deepEqual(await stubborn.stop(i, { signal: 'SIGTERM', timeoutMs: 700 }), { forced: true });
    const took = Date.now() - started;
    assert.ok(took >= 700 && took < 4000, `took ${took}ms`);
    assert.deepEqual(await i.exited, { code: null, signal: 'SIGKILL' });
    assert.ok(gone(i.record.pid));
  });

  await t.test('a process killed on its host: exited resolves, with its last log lines', async () => {
    const i = live[1]!;
    th.exec(1, ['kill', '-9', String(i.record.pid)]);
    assert.deepEqual(await within(i.exited, 5000, 'exited'), { code: null, signal: null });
    assert.equal(i.alive(), false);
    assert.match(i.logTail(), /listening on/);
  });

  await t.test('a fresh driver adopts a running instance and stops it', async () => {
    const fresh = driver();
    const original = live[2]!;
    const adopted = fresh.adopt(original.record);
    assert.ok(adopted);
    await new Promise((r) => setTimeout(r, 700));
    assert.equal(adopted.alive(), true, 'still running after a few polls');
    assert.deepEqual(await fresh.stop(adopted, { signal: 'SIGTERM', timeoutMs: 5000 }), { forced: false });
    assert.ok(gone(original.record.pid));
    // The first driver's monitor sees it gone too.
    await within(original.exited, 5000, 'the original instance seen gone');
    // A record of a process that is gone: alive until a poll proves otherwise.
    const dead = fresh.adopt(live[1]!.record)!;
    await within(dead.exited, 5000, 'adopted dead instance seen gone');
    // A host not (or no longer) in the list.
    assert.equal(fresh.adopt({ ...original.record, host: '192.0.2.1' }), null);
  });

  await t.test('a recorded pid that another process holds now: never signalled, seen gone', async (tt) => {
    // Hosts share this machine's pids (network namespaces only): a process started here is
    // on host-1 too. Its pid stands in a record that is otherwise a real instance's.
    const stranger = spawnStranger(tt);
    const reused: InstanceRecord = { ...live[0]!.record, pid: stranger.pid! };
    const fresh = driver();
    assert.deepEqual(await fresh.stop(fresh.adopt(reused)!, { signal: 'SIGTERM', timeoutMs: 500 }), {
      forced: false,
    });
    const watched = fresh.adopt(reused)!;
    assert.deepEqual(await within(watched.exited, 5000, 'the reused pid seen gone'), {
      code: null,
      signal: null,
    });
    assert.ok(!gone(stranger.pid!), 'the stranger lives');
    // The real instance of that record was left alone too.
    assert.equal(await health(live[0]!.record), '200 ok');
  });

  await t.test("a key the hosts refuse: an error naming the host and ssh's words", async (st) => {
    const bad = driver(appConfig(), { sshOptions: th.badKeyOptions, stateDir: path.join(stateDir, 'bad') });
    await assert.rejects(
      bad.start({ service: SERVICE, host: h2.address, port: 18082, version: '1.0.0', slot: 1 }),
      (err: unknown) => {
        assert.ok(err instanceof SshHostError, String(err));
        st.diagnostic(err.message);
        assert.equal(err.kind, 'auth');
        assert.equal(err.code, 'BATON_E_DEPLOY_FAILED');
        assert.match(err.message, /cannot log in to host host-2 \(root@10\.231\.\d+\.12:22\)/);
        assert.match(err.message, /Permission denied \(publickey/);
        assert.match(err.message, /authorized_keys/);
        return true;
      },
    );
    await assert.rejects(bad.allocate([]), (err: Error) => {
      for (const h of th.hosts) assert.ok(err.message.includes(h.name), err.message);
      assert.match(err.message, /Permission denied/);
      return true;
    });
  });

  await t.test('ssh calls: a deadline each, and at most maxPerHost at once on a host', async () => {
    const transport = new SshTransport({
      stateDir,
      sshOptions: th.sshOptions,
      connectTimeoutMs: 2000,
      maxPerHost: 2,
    });
    try {
      const started = Date.now();
      await assert.rejects(
        transport.run(h3, 'sleep 5', { timeoutMs: 1000, what: 'a slow command' }),
        (err: unknown) => {
          assert.ok(err instanceof SshHostError && err.kind === 'timeout', String(err));
          assert.match(
            err.message,
            /host host-3 \(root@[\d.]+:22\) did not answer within 1000ms \(a slow command\)/,
          );
          return true;
        },
      );
      assert.ok(Date.now() - started < 2500);
      const t0 = Date.now();
      const outs = await Promise.all(
        [1, 2, 3, 4, 5, 6].map((n) =>
          transport.run(h3, `sleep 0.4; echo ${n}`, { timeoutMs: 10_000, what: 'a short command' }),
        ),
      );
      assert.deepEqual(
        outs.map((o) => o.stdout),
        ['1\n', '2\n', '3\n', '4\n', '5\n', '6\n'],
      );
      // Three rounds of two.
      assert.ok(Date.now() - t0 >= 1200, `took ${Date.now() - t0}ms`);
    } finally {
      await transport.close();
    }
  });

  await t.test('a command that fails on the host: its stderr in the error', async (st) => {
    const broken = driver(
      appSchema.parse({ command: '/nonexistent/app --port {port}', ports: '18081-18082' }),
    );
    await assert.rejects(
      broken.start({ service: SERVICE, host: h3.address, port: 18082, version: '1.0.0', slot: 1 }),
      (err: unknown) => {
        assert.ok(err instanceof SshHostError, String(err));
        st.diagnostic(err.message);
        assert.equal(err.kind, 'remote');
        assert.match(
          err.message,
          /start web-1\.0\.0-host-3-18082 failed on host host-3 .*exited with code 3:\n/,
        );
        assert.match(err.message, /command not found on this host: \/nonexistent\/app/);
        return true;
      },
    );
    const elsewhere = driver({ ...appConfig(), cwd: '/nonexistent/dir' });
    await assert.rejects(
      elsewhere.start({ service: SERVICE, host: h3.address, port: 18082, version: '1.0.0', slot: 1 }),
      /app\.cwd \/nonexistent\/dir does not exist on this host/,
    );
  });

  await t.test(
    'a host cut off: start fails in time naming it, instances stay up; back after restore',
    async (st) => {
      const first = live[0]!;
      th.cut(0);
      let restored = false;
      try {
        const started = Date.now();
        const startFails = assert.rejects(
          d.start({ service: SERVICE, host: h1.address, port: 18082, version: '1.0.2', slot: 6 }),
          (err: unknown) => {
            assert.ok(err instanceof SshHostError, String(err));
            st.diagnostic(err.message);
            assert.ok(err.kind === 'timeout' || err.kind === 'unreachable', err.kind);
            assert.match(err.message, /host host-1 \(root@10\.231\.\d+\.11:22\)/);
            assert.match(err.message, /within \d+ms|timeout \d+ms/);
            return true;
          },
        );
        // A stop settles too: with an error once ssh gives up, and the instance still counted as running.
        const stopFails = assert.rejects(
          d.stop(first, { signal: 'SIGTERM', timeoutMs: 500 }),
          (err: unknown) => {
            assert.ok(err instanceof SshHostError, String(err));
            st.diagnostic(err.message);
            assert.ok(err.transient);
            assert.match(err.message, /host host-1 .*stop web-1\.0\.0-host-1-18081/);
            return true;
          },
        );
        await startFails;
        const took = Date.now() - started;
        // connect 2s + command 3s + the 3s start budget, and some slack.
        assert.ok(took < 10_000, `took ${took}ms`);
        await stopFails;
        // connect 2s + command 3s + 0.5s stop timeout + 5s after SIGKILL, and some slack.
        assert.ok(Date.now() - started < 13_000, `stop took ${Date.now() - started}ms`);
        // Unknown is not dead: its instance stays alive() while the host cannot be asked.
        assert.equal(first.alive(), true);
        th.restore(0);
        restored = true;
        const again = await waitFor(
          () =>
            d
              .start({ service: SERVICE, host: h1.address, port: 18082, version: '1.0.2', slot: 6 })
              .catch(() => null),
          { timeout: 20_000, interval: 200, what: 'a start on host-1 after restore' },
        );
        assert.equal(
          await waitFor(() => health(again.record), { timeout: 10_000, what: 'healthy' }),
          '200 ok',
        );
        assert.equal(await health(first.record), '200 ok');
        assert.equal(first.alive(), true);
        assert.deepEqual(await d.stop(again, { signal: 'SIGTERM', timeoutMs: 5000 }), { forced: false });
      } finally {
        if (!restored) th.restore(0);
      }
      assert.deepEqual(await d.stop(first, { signal: 'SIGTERM', timeoutMs: 5000 }), { forced: false });
      assert.ok(gone(first.record.pid));
    },
  );

  await t.test('nothing left running on the hosts', async () => {
    for (const ns of th.namespaces) {
      const pids = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' })
        .stdout.split(/\s+/)
        .filter(Boolean);
      const apps = pids.filter(
        (p) => !gone(Number(p)) && readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(APP),
      );
      assert.deepEqual(apps, [], `app processes left in ${ns}`);
    }
  });
}
