// Following and watching, against a real daemon and real app processes: `baton follow` back
// onto a running deploy, `baton status --watch` until Ctrl-C, `baton logs -f` printing the
// lines an instance writes after it started (and only those, once). Plus newLines, the diff
// `logs -f` makes between two polls, on its own.
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { before, describe, it, type TestContext } from 'node:test';
import type { ProgressEvent } from '../src/api/deploy.js';
import type { LogsAnswer } from '../src/api/logs.js';
import { newLines } from '../src/cli/commands/logs.js';
import { BATON, ROOT, waitFor } from './helpers/index.js';
import { childEnv, ensureBuilt, runBaton, writeFile } from './helpers/cli.js';
import { Service } from './helpers/app-daemon.js';

interface Child {
  readonly child: ChildProcessWithoutNullStreams;
  readonly stdout: () => string;
  readonly stderr: () => string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** How long a child has to exit once told to (SIGINT, its stdout closed), counted from its start. */
const EXIT_WITHIN_MS = 30_000;

/** `node bin/baton.js ...args` left running (stdout a pipe, not a TTY); killed at teardown. */
function spawnBaton(t: TestContext, args: string[]): Child {
  const child = spawn(process.execPath, [BATON, ...args], { cwd: ROOT, env: childEnv() });
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal })),
  );
  // Bounded: a child that does not end when told to fails the test, not the run.
  const exited = Promise.race([
    closed,
    new Promise<never>((_, reject) =>
      setTimeout(
        () => reject(new Error(`baton ${args.join(' ')} did not exit:\n${stderr}`)),
        EXIT_WITHIN_MS,
      ).unref(),
    ),
  ]);
  return { child, stdout: () => stdout, stderr: () => stderr, exited };
}

/** An app that logs "said X" for every GET /say/X: log lines written when the test wants. */
const TALKER = `// node talker.mjs --port P --version V --marker M
import http from 'node:http';
const argv = process.argv.slice(2);
const opt = (name) => argv[argv.indexOf('--' + name) + 1];
const version = opt('version');
const port = Number(opt('port'));
http
  .createServer((req, res) => {
    if (req.url.startsWith('/say/')) console.log('said ' + decodeURIComponent(req.url.slice(5)));
    res.end(version + '\\n');
  })
  .listen(port, '127.0.0.1', () => console.log('app ' + version + ' listening on 127.0.0.1:' + port));
`;

/** A service of one TALKER instance, 1.0.0 deployed. */
async function talkerServing(t: TestContext): Promise<Service> {
  const svc = await Service.create(t, { instances: 1 });
  writeFile(svc.dir, 'talker.mjs', TALKER);
  svc.configure({
    instances: 1,
    command: `node ${path.join(svc.dir, 'talker.mjs')} --port {port} --version {version} --marker ${svc.marker}`,
  });
  await svc.start();
  await svc.deployApi('1.0.0');
  return svc;
}

describe('following and watching', { concurrency: true }, () => {
  before(() => ensureBuilt());

  it('baton follow attaches to a running deploy, prints the rest of it, and exits 0; 4 with none', async (t) => {
    const svc = await Service.create(t, { readyTimeout: '30s' });
    // Long enough for `baton follow` to start and attach while the new instances boot.
    svc.setFlags({ '1.0.1': ['--start-delay', '4000'] });
    await svc.start();
    await svc.deployApi('1.0.0');

    const none = await runBaton(t, ['follow', '-c', svc.file]);
    assert.equal(none.code, 4, `${none.stdout}\n${none.stderr}`);
    assert.match(none.stderr, /no deploy is running: nothing to follow/);

    const deploying = svc.deployApi('1.0.1');
    await waitFor(async () => (await svc.status()).deployment?.version === '1.0.1', {
      what: 'the deploy of 1.0.1 to be running',
    });
    const attached = Date.now();
    const r = await runBaton(t, ['follow', '-c', svc.file, '--json'], { timeout: 30_000 });
    await deploying;
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    const events = r.stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as ProgressEvent);
    const done = events.at(-1);
    assert.equal(done?.kind, 'done', r.stdout);
    assert.equal(done.result, 'succeeded');
    assert.equal(done.entry?.version, '1.0.1');
    // What happened after it attached is in its output, not only what was over already.
    assert.ok(Date.parse(done.time) > attached, `the end came after attaching:\n${r.stdout}`);
    assert.ok(
      events.some((e) => e.kind === 'step' && e.step === 'switching'),
      `the switch, after the start delay, among the events:\n${r.stdout}`,
    );
    assert.equal((await svc.status()).live?.version, '1.0.1');
  });

  it('status --watch prints a block per interval until SIGINT, then exits 0', async (t) => {
    const svc = await Service.create(t, { instances: 1 });
    await svc.start();
    await svc.deployApi('1.0.0');

    const bad = await runBaton(t, ['status', '-c', svc.file, '--watch', '--interval', '5']);
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /--interval: "5" is not a duration/);

    const w = spawnBaton(t, ['status', '-c', svc.file, '--watch', '--interval', '200ms']);
    const blocks = (): string[] => w.stdout().split(/\n\n(?=every )/);
    await waitFor(() => blocks().length >= 3, { timeout: 10_000, what: `3 blocks:\n${w.stdout()}` });
    for (const b of blocks().slice(0, 2)) {
      assert.match(b, /^every 200ms: baton status, \d{4}-\d\d-\d\dT/);
      assert.match(b, /\nlive {5}1\.0\.0\n/);
      assert.match(b, /INSTANCE\s+ADDRESS/);
    }
    assert.ok(!w.stdout().includes('\x1b['), 'no screen control codes without a terminal');
    w.child.kill('SIGINT');
    const end = await w.exited;
    assert.deepEqual(end, { code: 0, signal: null }, w.stderr());

    // Whoever reads it goes away (`| head -5`): the watch ends too, quietly.
    const gone = spawnBaton(t, ['status', '-c', svc.file, '--watch', '--interval', '100ms']);
    await waitFor(() => gone.stdout().includes('live '), { what: `a first block:\n${gone.stdout()}` });
    gone.child.stdout.destroy();
    assert.deepEqual(await gone.exited, { code: 0, signal: null }, gone.stderr());
    assert.equal(gone.stderr(), '');
  });

  it('logs -f prints each line the app writes after it started, once, then SIGINT ends it', async (t) => {
    const svc = await talkerServing(t);

    const f = spawnBaton(t, ['logs', '-f', '-c', svc.file]);
    await waitFor(() => /^==> web-1\.0\.0-\S+ .*<==\napp 1\.0\.0 listening on /.test(f.stdout()), {
      what: `the log's tail first:\n${f.stdout()}`,
    });
    for (const word of ['alpha', 'beta', 'gamma']) {
      assert.equal((await svc.get(`/say/${word}`)).status, 200);
      await waitFor(() => f.stdout().includes(`said ${word}\n`), {
        what: `"said ${word}" in logs -f:\n${f.stdout()}\n${f.stderr()}`,
      });
    }
    // The daemon goes away and comes back (it adopts the running instance): logs -f says so,
    // goes on, and prints nothing twice.
    svc.daemon.child.kill('SIGKILL');
    await svc.daemon.exited;
    await waitFor(() => f.stderr().includes('(still following)'), {
      what: `logs -f to notice the daemon gone:\n${f.stderr()}`,
    });
    await svc.start();
    assert.equal((await svc.get('/say/delta')).status, 200);
    await waitFor(() => f.stdout().includes('said delta\n'), {
      what: `"said delta" in logs -f:\n${f.stdout()}\n${f.stderr()}`,
    });
    // A few polls more: nothing printed twice.
    await new Promise((r) => setTimeout(r, 2500));
    const out = f.stdout();
    for (const line of ['said alpha', 'said beta', 'said gamma', 'said delta', 'app 1.0.0 listening']) {
      assert.equal(out.split(line).length - 1, 1, `"${line}" once:\n${out}`);
    }
    assert.equal(out.split('==> ').length - 1, 1, `one header, one instance:\n${out}`);
    f.child.kill('SIGINT');
    assert.deepEqual(await f.exited, { code: 0, signal: null }, f.stderr());
  });

  it('logs --since prints the lines written since then (after a daemon restart too), and -f goes on from there', async (t) => {
    const svc = await talkerServing(t);
    for (const word of ['old-1', 'old-2']) assert.equal((await svc.get(`/say/${word}`)).status, 200);
    // The index (a sample a second) notes the old lines; `since` just after that sample.
    const id = (await svc.status()).live!.instances[0]!.id;
    const indexFile = path.join(svc.stateDir, 'log-index', `${id}.idx`);
    const lastSample = (): number[] =>
      existsSync(indexFile)
        ? readFileSync(indexFile, 'utf8').trimEnd().split('\n').at(-1)!.split(' ').map(Number)
        : [];
    const logSize = (): number => statSync(path.join(svc.stateDir, 'logs', `${id}.log`)).size;
    await waitFor(() => lastSample()[1] === logSize(), { what: `the old lines noted in ${indexFile}` });
    const since = new Date(lastSample()[0]! + 1).toISOString();
    for (const word of ['new-1', 'new-2']) assert.equal((await svc.get(`/say/${word}`)).status, 200);

    const check = async (): Promise<void> => {
      const r = await runBaton(t, ['logs', '-c', svc.file, '--since', since]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /said new-1\nsaid new-2/);
      assert.doesNotMatch(r.stdout, /old-|listening/, r.stdout);
    };
    await check();
    // The daemon killed and started again: the index is read back, the answer the same.
    svc.daemon.child.kill('SIGKILL');
    await svc.daemon.exited;
    await svc.start();
    await check();

    const all = await runBaton(t, ['logs', '-c', svc.file, '--since', '1h', '--json']);
    assert.equal(all.code, 0, all.stderr);
    const [log] = (JSON.parse(all.stdout) as LogsAnswer).logs;
    assert.match(log!.text, /listening on [^]*said old-1[^]*said new-2/);
    assert.equal(log!.from, null);
    const few = await runBaton(t, ['logs', '-c', svc.file, '--since', '1h', '-n', '1']);
    assert.match(few.stdout, /\(more than 1 lines since 1h: the earlier ones are left out/);
    assert.match(few.stdout, /\nsaid new-2\n/);
    const bad = await runBaton(t, ['logs', '-c', svc.file, '--since', 'yesterday']);
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /--since must be a duration back from now \(10m, 1h30m\) or a time/);

    const f = spawnBaton(t, ['logs', '-f', '-c', svc.file, '--since', since]);
    await waitFor(() => f.stdout().includes('said new-2\n'), {
      what: `the lines since then:\n${f.stdout()}`,
    });
    assert.equal((await svc.get('/say/later')).status, 200);
    await waitFor(() => f.stdout().includes('said later\n'), { what: `the next line:\n${f.stdout()}` });
    f.child.kill('SIGINT');
    assert.deepEqual(await f.exited, { code: 0, signal: null }, f.stderr());
    const out = f.stdout();
    assert.doesNotMatch(out, /old-|listening/, out);
    for (const line of ['said new-1', 'said new-2', 'said later']) {
      assert.equal(out.split(line).length - 1, 1, `"${line}" once:\n${out}`);
    }
  });
});

describe('newLines (what logs -f prints between two polls)', () => {
  it('prints what was appended, whether the window is full or not', () => {
    assert.deepEqual(newLines(['a', 'b'], ['a', 'b', 'c']), { lines: ['c'], gap: false });
    assert.deepEqual(newLines(['a', 'b', 'c'], ['b', 'c', 'd']), { lines: ['d'], gap: false });
    assert.deepEqual(newLines(['a', 'b'], ['a', 'b']), { lines: [], gap: false });
    assert.deepEqual(newLines([], ['a']), { lines: ['a'], gap: false });
    // The same line again: the file grew by one line.
    assert.deepEqual(newLines(['x', 'y', 'x'], ['x', 'y', 'x', 'x']), { lines: ['x'], gap: false });
  });

  it('prints a half-written last line again once it is whole', () => {
    assert.deepEqual(newLines(['a', 'hal'], ['a', 'half done', 'b']), {
      lines: ['half done', 'b'],
      gap: false,
    });
  });

  it('says when lines may be missing (more than the window, or a rotated log)', () => {
    assert.deepEqual(newLines(['a', 'b'], ['c', 'd']), { lines: ['c', 'd'], gap: true });
  });
});
