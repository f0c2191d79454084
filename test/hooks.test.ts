// Deploy hooks against a real daemon and real app processes: preDeploy, postSwitch, postDeploy
// and onFailure run in order with the deploy in their environment, in the config's folder; a
// failing preDeploy refuses the deploy before anything starts, a failing postSwitch rolls it
// back, a hook that hangs is killed with its process group at its timeout, and the version
// reaches a hook only through its environment. Plus the config errors of a bad `hooks:` section.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { before, describe, it, type TestContext } from 'node:test';
import { pino } from 'pino';
import { parseConfigText } from '../src/config/load.js';
import type { DeploymentState } from '../src/controller/state.js';
import { BatonError } from '../src/errors.js';
import { Hooks } from '../src/hooks/extension.js';
import { refusedConfig, waitFor } from './helpers/index.js';
import { ensureBuilt, runBaton, tempDir, writeFile } from './helpers/cli.js';
import { logsWith, Service, type DeployEvent, type DeployRun } from './helpers/app-daemon.js';

/** CI variables change how the CLI names the actor: the tests set them empty. */
const NO_CI = { CI: '', GITHUB_ACTIONS: '', GITLAB_CI: '', JENKINS_URL: '', GITHUB_ACTOR: '' };

/** Appends one line per hook run to hooks.log (relative: the hook runs in the config's folder). */
const RECORD = JSON.stringify(
  'echo "$BATON_HOOK|$BATON_VERSION|$BATON_PREVIOUS_VERSION|$BATON_STRATEGY|$BATON_ACTOR|$BATON_DEPLOY_ID|$BATON_RESULT|$BATON_SERVICE|$PWD" >> hooks.log; ' +
    'printf %s "$BATON_REASON" > "reason-$BATON_HOOK.txt"; echo "ran $BATON_HOOK"',
);

interface HookLine {
  hook: string;
  version: string;
  previous: string;
  strategy: string;
  actor: string;
  deployId: string;
  result: string;
  service: string;
  cwd: string;
}

function hookLines(svc: Service): HookLine[] {
  const file = path.join(svc.dir, 'hooks.log');
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const [hook, version, previous, strategy, actor, deployId, result, service, cwd] = l.split('|');
      return { hook, version, previous, strategy, actor, deployId, result, service, cwd } as HookLine;
    });
}

/** `baton deploy --json` by `actor`, with the events it printed. */
async function deployAs(t: TestContext, svc: Service, version: string, actor: string): Promise<DeployRun> {
  const r = await runBaton(t, ['deploy', '-c', svc.file, '--version', version, '--json'], {
    env: { ...NO_CI, BATON_ACTOR: actor },
    timeout: 30_000,
  });
  const events = r.stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as DeployEvent);
  return { ...r, events, done: events.find((e) => e.kind === 'done') };
}

/** Rewrites baton.yaml with these top-level lines and has the daemon re-read it (SIGHUP). */
async function reload(svc: Service, extra: string[]): Promise<void> {
  const before = logsWith(svc.daemon, /^config reloaded/).length;
  svc.configure({ extra });
  svc.daemon.child.kill('SIGHUP');
  await waitFor(() => logsWith(svc.daemon, /^config reloaded/).length > before, {
    what: 'the daemon to reload its config',
  });
}

/** A service serving 1.0.0 (deployed without hooks); the pids of 1.0.0. */
async function serving(t: TestContext): Promise<{ svc: Service; oldPids: number[] }> {
  const svc = await Service.create(t);
  await svc.start();
  await svc.deployApi('1.0.0');
  const oldPids = svc.pids('1.0.0');
  assert.equal(oldPids.length, 2);
  return { svc, oldPids };
}

function infos(r: DeployRun): string[] {
  return r.events.filter((e) => e.kind === 'info').map((e) => e.message);
}

/** The previous release is untouched: same processes, live, answering through the proxy. */
async function previousStillServes(svc: Service, oldPids: number[]): Promise<void> {
  assert.deepEqual(await svc.versionsServed(6), ['1.0.0']);
  const st = await svc.status();
  assert.equal(st.live?.version, '1.0.0');
  assert.equal(st.deployment, null);
  assert.deepEqual(
    st.live.instances.map((i) => i.pid).sort((a, b) => a - b),
    oldPids,
  );
}

describe('deploy hooks', () => {
  before(() => ensureBuilt());

  it('runs preDeploy, postSwitch and postDeploy in order, with the deploy in env, in the config folder', async (t) => {
    const svc = await Service.create(t, {
      extra: [
        'hooks:',
        `  preDeploy: ${RECORD}`,
        `  postSwitch: { command: ${RECORD}, timeout: 10s }`,
        `  postDeploy: ${RECORD}`,
        `  onFailure: ${RECORD}`,
      ],
    });
    await svc.start();
    const first = await svc.deployApi('1.0.0');
    const r = await deployAs(t, svc, '1.0.1', 'alice');
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    assert.equal(r.done?.result, 'succeeded');

    const dir = realpathSync(svc.dir);
    const lines = hookLines(svc);
    assert.deepEqual(
      lines.map((l) => `${l.hook} ${l.version} ${l.previous || '-'} ${l.result || '-'}`),
      [
        'preDeploy 1.0.0 - -',
        'postSwitch 1.0.0 - -',
        'postDeploy 1.0.0 - succeeded',
        'preDeploy 1.0.1 1.0.0 -',
        'postSwitch 1.0.1 1.0.0 -',
        'postDeploy 1.0.1 1.0.0 succeeded',
      ],
    );
    for (const l of lines) {
      assert.equal(l.strategy, 'blue-green');
      assert.equal(l.service, 'web');
      assert.equal(realpathSync(l.cwd), dir, 'a hook runs in the config file folder');
    }
    assert.deepEqual(
      lines.map((l) => `${l.actor} ${l.deployId}`),
      [
        ...Array<string>(3).fill(`test ${first.deployId}`),
        ...Array<string>(3).fill(`alice ${r.done.deployId}`),
      ],
    );
    assert.equal(readFileSync(path.join(svc.dir, 'reason-postDeploy.txt'), 'utf8'), '');

    // Progress shows each hook and its result, postDeploy before the end.
    const messages = infos(r);
    const order = [
      /^preDeploy hook: running echo/,
      /^preDeploy hook: passed in/,
      /^postSwitch hook: running/,
      /^postSwitch hook: passed/,
      /^postDeploy hook: running/,
      /^postDeploy hook: passed/,
    ].map((re) => messages.findIndex((m) => re.test(m)));
    assert.ok(
      order.every((i, k) => i >= 0 && (k === 0 || i > order[k - 1]!)),
      messages.join('\n'),
    );
    const switching = r.events.findIndex((e) => e.step === 'switching');
    const postSwitch = r.events.findIndex((e) => /^postSwitch hook: running/.test(e.message));
    assert.ok(switching >= 0 && postSwitch > switching, 'postSwitch runs once traffic moved');

    // Their output is in the daemon log.
    const output = logsWith(svc.daemon, 'hook output').map((l) => `${String(l.hook)}: ${String(l.output)}`);
    for (const h of ['preDeploy', 'postSwitch', 'postDeploy'])
      assert.ok(output.includes(`${h}: ran ${h}`), output.join('\n'));
  });

  it('a failing preDeploy fails the deploy before anything starts (exit 10); onFailure sees "failed"', async (t) => {
    const { svc, oldPids } = await serving(t);
    await reload(svc, [
      'hooks:',
      `  preDeploy: ${JSON.stringify('echo checking migrations; echo "migration 42 is pending" >&2; exit 3')}`,
      `  onFailure: ${RECORD}`,
    ]);
    const r = await deployAs(t, svc, '1.0.1', 'bob');
    assert.equal(r.code, 10, `${r.stdout}\n${r.stderr}`);
    assert.equal(r.done?.result, 'failed');
    assert.match(r.done.message, /preDeploy hook `echo checking migrations.*` exited with code 3/);
    assert.match(r.done.message, /checking migrations\n +migration 42 is pending/);
    assert.ok(
      infos(r).some((m) => /^preDeploy hook: failed \(exited with code 3\)/.test(m)),
      infos(r).join('\n'),
    );

    // Nothing started: no step, no process, no instance log of 1.0.1.
    assert.deepEqual(
      r.events.filter((e) => e.kind === 'step'),
      [],
    );
    assert.deepEqual(svc.pids('1.0.1'), []);
    assert.ok(!readdirSync(path.join(svc.stateDir, 'logs')).some((f) => f.includes('1.0.1')));
    await previousStillServes(svc, oldPids);
    assert.equal((await svc.history())[0]?.result, 'failed');

    const lines = hookLines(svc);
    assert.deepEqual(
      lines.map((l) => `${l.hook} ${l.version} ${l.previous} ${l.actor} ${l.result}`),
      ['onFailure 1.0.1 1.0.0 bob failed'],
    );
    assert.match(readFileSync(path.join(svc.dir, 'reason-onFailure.txt'), 'utf8'), /migration 42 is pending/);
  });

  it('a failing postSwitch rolls back (exit 10): the old version serves, onFailure sees "rolled-back"', async (t) => {
    const { svc, oldPids } = await serving(t);
    // A smoke test through the proxy: it sees the new version take the traffic, and fails it.
    writeFile(
      svc.dir,
      'smoke.mjs',
      `const port = process.argv[2];
const body = (await (await fetch('http://127.0.0.1:' + port + '/')).text()).trim();
console.log('GET / answered ' + body);
if (body !== process.env.BATON_VERSION) process.exit(2);
if (body.includes('smokefail')) {
  console.log('POST /orders answered 500');
  process.exit(1);
}
`,
    );
    await reload(svc, [
      'hooks:',
      `  postSwitch: { command: "node smoke.mjs ${svc.daemon.port}", timeout: 10s }`,
      `  postDeploy: ${RECORD}`,
      `  onFailure: ${RECORD}`,
    ]);
    const r = await deployAs(t, svc, '1.1.0-smokefail', 'carol');
    assert.equal(r.code, 10, `${r.stdout}\n${r.stderr}`);
    assert.equal(r.done?.result, 'rolled-back');
    assert.match(r.done.message, /postSwitch hook `node smoke\.mjs \d+` exited with code 1/);
    assert.match(r.done.message, /GET \/ answered 1\.1\.0-smokefail\n +POST \/orders answered 500/);
    assert.ok(r.events.some((e) => e.step === 'rolling-back'));
    await previousStillServes(svc, oldPids);
    await svc.noneLeft('1.1.0-smokefail');
    const lines = hookLines(svc);
    assert.deepEqual(
      lines.map((l) => `${l.hook} ${l.version} ${l.previous} ${l.actor} ${l.result}`),
      ['onFailure 1.1.0-smokefail 1.0.0 carol rolled-back'],
    );
    assert.match(
      readFileSync(path.join(svc.dir, 'reason-onFailure.txt'), 'utf8'),
      /POST \/orders answered 500/,
    );

    // The same hook passes a good version.
    const ok = await deployAs(t, svc, '1.1.0', 'carol');
    assert.equal(ok.code, 0, ok.stdout);
    assert.deepEqual(await svc.versionsServed(4), ['1.1.0']);
    assert.equal(hookLines(svc).at(-1)?.hook, 'postDeploy');
  });

  it('a first deploy whose postSwitch fails stops its instances and says nothing serves (no live version left behind)', async (t) => {
    const svc = await Service.create(t, {
      extra: ['hooks:', '  postSwitch: { command: "exit 3", timeout: 10s }'],
    });
    await svc.start();
    const r = await deployAs(t, svc, '1.0.0', 'dave');
    assert.equal(r.code, 10, `${r.stdout}\n${r.stderr}`);
    assert.equal(r.done?.result, 'failed');
    assert.match(r.done.message, /postSwitch hook `exit 3` exited with code 3[^]*nothing is serving$/);
    await svc.noneLeft('1.0.0');
    const st = await svc.status();
    assert.equal(st.live, null, JSON.stringify(st.live));
    assert.equal(svc.state().live, null);
    // The next deploy is a first deploy again (nothing to go back to), and succeeds without the hook.
    await reload(svc, []);
    const ok = await deployAs(t, svc, '1.0.1', 'dave');
    assert.equal(ok.code, 0, ok.stdout);
    assert.equal(ok.done?.entry?.previousVersion ?? null, null);
    assert.deepEqual(await svc.versionsServed(4), ['1.0.1']);
  });

  it('a hook that hangs is killed at its timeout, with everything it started', async (t) => {
    const { svc, oldPids } = await serving(t);
    writeFile(
      svc.dir,
      'hang.sh',
      'echo $$ > hang.pid\nsleep 60 &\necho $! > sleep.pid\necho "waiting for the deploy lock"\nwait\n',
    );
    await reload(svc, ['hooks:', '  preDeploy: { command: sh ./hang.sh, timeout: 500ms }']);
    const t0 = Date.now();
    const r = await deployAs(t, svc, '1.0.1', 'dave');
    const took = Date.now() - t0;
    assert.equal(r.code, 10, `${r.stdout}\n${r.stderr}`);
    assert.equal(r.done?.result, 'failed');
    assert.match(
      r.done.message,
      /preDeploy hook `sh \.\/hang\.sh` did not finish within its timeout \(500ms\); its process group was killed/,
    );
    assert.match(r.done.message, /waiting for the deploy lock/);
    assert.ok(took < 5000, `the deploy took ${took}ms`);
    for (const f of ['hang.pid', 'sleep.pid']) {
      const pid = Number(readFileSync(path.join(svc.dir, f), 'utf8'));
      await waitFor(() => !alive(pid), { timeout: 3000, what: `${f} (${pid}) to be gone` });
    }
    await previousStillServes(svc, oldPids);
  });

  it('passes the version only through the environment; a version with shell characters is refused', async (t) => {
    const svc = await Service.create(t, {
      extra: ['hooks:', `  preDeploy: ${JSON.stringify('echo "{version} $BATON_VERSION" >> version.log')}`],
    });
    await svc.start();
    await svc.deployApi('1.0.0');
    const log = path.join(svc.dir, 'version.log');
    // `{version}` is not a placeholder in a hook: the command text is never filled in.
    assert.equal(readFileSync(log, 'utf8'), '{version} 1.0.0\n');

    for (const version of ['1.0;touch pwned', '$(touch pwned)', '1.0 `touch pwned`']) {
      const r = await svc.deploy(version);
      assert.equal(r.code, 2, `${version}: ${r.stdout}\n${r.stderr}`);
      assert.match(r.stderr, /is not allowed/);
    }
    assert.ok(!existsSync(path.join(svc.dir, 'pwned')));
    assert.equal(readFileSync(log, 'utf8'), '{version} 1.0.0\n', 'the hook did not run');
  });
});

describe('hook runs', () => {
  it('logs at most 200 output lines of a run; the failure shows the exit code and the last 20', async (t) => {
    const dir = tempDir(t);
    const config = parseConfigText(
      'service: web\nlisten: 127.0.0.1:8080\napp:\n  command: node app.js\nhooks:\n  preDeploy: "seq 1 1000; exit 7"\n',
      path.join(dir, 'baton.yaml'),
    );
    const logged: Record<string, unknown>[] = [];
    const log = pino(
      { level: 'info' },
      { write: (line: string) => void logged.push(JSON.parse(line) as Record<string, unknown>) },
    );
    const hooks = new Hooks(() => config, log);
    const progress: string[] = [];
    const d: DeploymentState = {
      id: 'abc123',
      version: '1.0.1',
      previousVersion: '1.0.0',
      strategy: 'blue-green',
      actor: 'alice',
      startedAt: new Date().toISOString(),
      rollback: false,
      step: 'starting',
      detail: '',
      started: [],
    };
    await assert.rejects(
      hooks.beforeStart(d, (m) => progress.push(m)),
      (err: Error) => {
        assert.ok(err instanceof BatonError && err.code === 'BATON_E_DEPLOY_FAILED');
        assert.match(err.message, /^preDeploy hook `seq 1 1000; exit 7` exited with code 7 after \d/);
        const shown = err.message.split('\n').slice(1);
        assert.deepEqual(
          shown,
          Array.from({ length: 20 }, (_, i) => `    ${981 + i}`),
        );
        return true;
      },
    );
    assert.equal(logged.filter((l) => l.msg === 'hook output').length, 200);
    assert.equal(logged.find((l) => l.code === 7)?.omittedLines, 800);
    assert.deepEqual(progress, [
      'preDeploy hook: running seq 1 1000; exit 7',
      'preDeploy hook: failed (exited with code 7)',
    ]);
  });
});

describe('hooks config', () => {
  const base = 'service: web\nlisten: 127.0.0.1:8080\napp:\n  command: node app.js --port {port}\n';
  const parse = (text: string) => parseConfigText(base + text, '/srv/web/baton.yaml');
  const refused = (text: string): string => refusedConfig(base + text);

  it('takes a command or { command, timeout }, with a 60s default timeout', () => {
    const c = parse(
      'hooks:\n  preDeploy: ./scripts/check.sh\n  postSwitch: { command: "curl -fsS http://127.0.0.1:8080/health", timeout: 30s }\n',
    );
    assert.deepEqual(c.hooks, {
      preDeploy: { command: './scripts/check.sh', timeout: 60_000 },
      postSwitch: { command: 'curl -fsS http://127.0.0.1:8080/health', timeout: 30_000 },
    });
    assert.deepEqual(parse('').hooks, {});
  });

  it('says what is wrong, and where', () => {
    assert.match(
      refused('hooks:\n  preDeploi: ./x.sh\n'),
      /baton\.yaml:6:3 hooks\.preDeploi: unknown key "preDeploi"; did you mean "preDeploy"\?/,
    );
    assert.match(
      refused('hooks:\n  postSwitch: { comand: ./x.sh }\n'),
      /baton\.yaml:6:17 hooks\.postSwitch\.comand: unknown key "comand"; did you mean "command"\?/,
    );
    assert.match(
      refused('hooks:\n  preDeploy: { command: ./x.sh, timeout: 30 }\n'),
      /baton\.yaml:6:42 hooks\.preDeploy\.timeout: 30 has no unit/,
    );
    assert.match(
      refused('hooks:\n  preDeploy: { command: ./x.sh, timeout: 0s }\n'),
      /hooks\.preDeploy\.timeout: "0s" is not a timeout/,
    );
    assert.match(
      refused('hooks:\n  onFailure: 5\n'),
      /baton\.yaml:6:14 hooks\.onFailure: a command \(\.\/scripts\/check\.sh\), or \{ command/,
    );
    assert.match(refused('hooks:\n  postDeploy: "  "\n'), /hooks\.postDeploy: the shell command to run/);
  });
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    // A zombie is gone as far as we care.
    return !readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.startsWith('Z');
  } catch {
    return false;
  }
}
