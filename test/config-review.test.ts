// Config and state checked at the door, by the built CLI as users run it: `baton validate` and
// `baton up` refuse the same configs with the same message (limits that 0 would turn off,
// durations past a timer's range, a YAML alias bomb, shell syntax in app.command), and `up`
// refuses an unusable stateDir or a state file of the wrong shape with exit 8 and nothing
// touched: the instances a killed daemon left running keep running, the file stays as it was.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { before, describe, it, type TestContext } from 'node:test';
import { request } from 'undici';
import { StateStore } from '../src/controller/state.js';
import { splitCommand } from '../src/process/command.js';
import { BatonError } from '../src/errors.js';
import { Service } from './helpers/app-daemon.js';
import { ensureBuilt, runBaton, tempDir, writeFile, type RunResult } from './helpers/cli.js';
import { waitFor } from './helpers/index.js';

/** A static-targets config (no app, no admin): `up` needs nothing else to start. */
const TARGETS = ['service: web', 'listen: 127.0.0.1:0', 'stateDir: state'];

function configFile(t: TestContext, lines: readonly string[]): string {
  return writeFile(tempDir(t), 'baton.yaml', `${lines.join('\n')}\n`);
}

/** No stack trace, no "unexpected error": a message for a user. */
function assertPlain(r: RunResult): void {
  assert.doesNotMatch(r.stderr, /unexpected error|\n\s+at |Warning/, r.stderr);
}

/** `baton up` to completion; one that starts (the bug) is killed after 10s and fails the test. */
function up(t: TestContext, file: string): Promise<RunResult> {
  return runBaton(t, ['up', '-c', file], { timeout: 10_000 });
}

/** `baton validate` and `baton up` on one file: both exit 2 with the same message, returned. */
async function bothRefuse(t: TestContext, file: string): Promise<string> {
  const v = await runBaton(t, ['validate', '-c', file]);
  assert.equal(v.code, 2, `validate should refuse:\n${v.stdout}${v.stderr}`);
  assertPlain(v);
  const u = await up(t, file);
  assert.equal(u.code, 2, `up should refuse (${u.code ?? u.signal}):\n${u.stdout}${u.stderr}`);
  assert.equal(u.stderr, v.stderr, 'up and validate run the same checks');
  return v.stderr;
}

async function validates(t: TestContext, file: string): Promise<void> {
  const v = await runBaton(t, ['validate', '-c', file]);
  assert.equal(v.code, 0, v.stderr);
}

describe('config review: one set of checks for validate and up', () => {
  before(ensureBuilt);

  it('a 0 for a limit that protects the proxy is refused with the range, each at its line', async (t) => {
    const file = configFile(t, [
      ...TARGETS,
      'targets: [{ address: 127.0.0.1:9, failTimeout: 0s }]',
      'healthCheck: { interval: 0s, timeout: 0 }',
      'proxy:',
      '  maxHeaderSize: 0',
      '  maxBodySize: 0',
      '  clientHeaderTimeout: 0',
      '  clientRequestTimeout: 0s',
      '  clientIdleTimeout: 0ms',
      '  connectTimeout: 0s',
      '  upstreamHeaderTimeout: 0s',
      '  upstreamBodyTimeout: 0s',
      '  upstreamIdleTimeout: 0s',
      '  retryTimeout: 0s',
    ]);
    const err = await bothRefuse(t, file);
    const durations = [
      'targets[0].failTimeout',
      'healthCheck.interval',
      'healthCheck.timeout',
      'proxy.clientHeaderTimeout',
      'proxy.clientRequestTimeout',
      'proxy.clientIdleTimeout',
      'proxy.connectTimeout',
      'proxy.upstreamHeaderTimeout',
      'proxy.upstreamBodyTimeout',
      'proxy.upstreamIdleTimeout',
      'proxy.retryTimeout',
    ];
    for (const key of durations) {
      assert.match(
        err,
        new RegExp(
          `baton\\.yaml:\\d+:\\d+ ${key.replace(/[.[\]]/g, '\\$&')}: "0\\w*" is out of range: write a duration from 1ms to 24\\.8 days`,
        ),
        key,
      );
    }
    assert.match(
      err,
      /baton\.yaml:7:18 proxy\.maxHeaderSize: "0" is out of range: write a size of 1k or more/,
    );
    assert.match(
      err,
      /baton\.yaml:8:16 proxy\.maxBodySize: "0" is out of range: write a size of 1 byte or more/,
    );
    assert.match(err, /\(13 problems\)/);

    // Negative values too (a size given as a number, a duration with a minus).
    const negative = configFile(t, [
      ...TARGETS,
      'targets: [{ address: 127.0.0.1:9 }]',
      'proxy: { maxBodySize: -1, clientHeaderTimeout: -10s }',
    ]);
    const neg = await bothRefuse(t, negative);
    assert.match(neg, /proxy\.maxBodySize: "-1" is out of range/);
    assert.match(neg, /proxy\.clientHeaderTimeout: "-10s" is not a duration/);

    // The app's, the edges' and ssh timeouts and intervals as well.
    const app = configFile(t, [
      'service: web',
      'stateDir: state',
      'edge: { type: nginx, upstreamFile: /tmp/none/web.conf, reloadTimeout: 0s }',
      'app:',
      '  command: node app.js --port {port}',
      '  readyTimeout: 0s',
      '  health: { interval: 0s }',
      '  warmup: { timeout: 0s }',
      'ssh: { connectTimeout: 0s }',
      'strategy: { type: canary, steps: [{ setWeight: 10 }], analysis: { interval: 0s } }',
    ]);
    const appErr = await bothRefuse(t, app);
    for (const key of [
      'edge.reloadTimeout',
      'app.readyTimeout',
      'app.health.interval',
      'app.warmup.timeout',
      'ssh.connectTimeout',
      'strategy.analysis.interval',
    ]) {
      assert.match(appErr, new RegExp(`${key.replace(/\./g, '\\.')}: "0s" is out of range`), key);
    }
  });

  it('0 stays allowed where it means "at once" or "off" on purpose', async (t) => {
    await validates(
      t,
      configFile(t, [
        ...TARGETS,
        'targets: [{ address: 127.0.0.1:9, slowStart: 0s }]',
        'proxy: { drainTimeout: 0s, slowStart: 0s }',
      ]),
    );
    await validates(
      t,
      configFile(t, [
        ...TARGETS.slice(0, 2),
        'app: { command: node app.js, drainTimeout: 0s, stopTimeout: 0s }',
        'strategy: { type: blue-green, keepOld: 0s, verify: 0s }',
      ]),
    );
  });

  it("a duration past a timer's range (24.8 days) is refused for every duration key", async (t) => {
    const file = configFile(t, [
      ...TARGETS,
      'targets: [{ address: 127.0.0.1:9, slowStart: 100d }]',
      'healthCheck: { interval: 30d }',
      'proxy: { clientIdleTimeout: 25d, drainTimeout: 2147483648ms }',
      'hooks: { preDeploy: { command: ./check.sh, timeout: 30d } }',
      'notify: { webhook: { url: "http://127.0.0.1:9/hook" }, timeout: 30d }',
    ]);
    const err = await bothRefuse(t, file);
    for (const [key, value] of [
      ['targets[0].slowStart', '100d'],
      ['healthCheck.interval', '30d'],
      ['proxy.clientIdleTimeout', '25d'],
      ['proxy.drainTimeout', '2147483648ms'],
      ['hooks.preDeploy', '30d'],
      ['notify.timeout', '30d'],
    ] as const) {
      assert.match(
        err,
        new RegExp(
          `${key.replace(/[.[\]]/g, '\\$&')}[^:]*: "${value}" is out of range: write a duration of at most 24\\.8 days \\(2147483647ms`,
        ),
        key,
      );
    }
    // The longest timer is still accepted.
    await validates(
      t,
      configFile(t, [
        ...TARGETS,
        'targets: [{ address: 127.0.0.1:9 }]',
        'proxy: { drainTimeout: 2147483647ms }',
      ]),
    );
  });

  it('a YAML alias bomb ("billion laughs") is a config error (exit 2), not a crash', async (t) => {
    const bomb = ['a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]'];
    for (const [i, name] of ['b', 'c', 'd', 'e', 'f', 'g'].entries()) {
      const prev = String.fromCharCode(97 + i);
      bomb.push(`${name}: &${name} [${Array(9).fill(`*${prev}`).join(', ')}]`);
    }
    const err = await bothRefuse(t, configFile(t, [...bomb, ...TARGETS]));
    assert.match(err, /^baton: invalid config .*baton\.yaml \(1 problem\):\n/);
    assert.match(
      err,
      /aliases \(\*name\) expand to more than 100 copies, the shape of a "billion laughs" attack/,
    );

    // Plain aliases still work.
    await validates(
      t,
      configFile(t, [
        ...TARGETS,
        'targets: [{ address: 127.0.0.1:9, failTimeout: &ft 5s }, { address: 127.0.0.1:10, failTimeout: *ft }]',
      ]),
    );
  });

  it('shell syntax in app.command is refused by validate, up and the driver alike, with what to do', async (t) => {
    const cases: [command: string, shown: string][] = [
      ['node app.js --port {port} && echo started', '&&'],
      ['node app.js --port {port}&&echo started', '&&'],
      ['node app.js | tee app.log', '|'],
      ['node app.js; echo done', ';'],
      ['node app.js > app.log', '>'],
      ['node app.js 2>&1', '>&'],
      ['node app.js --port {port} &', '&'],
      ['node app.js < input', '<'],
      ['node app.js --version `cat VERSION`', '`'],
      ['node app.js --port $(cat port)', '$('],
      ['node app.js "--name=$(hostname)"', '$('],
    ];
    for (const [command, shown] of cases) {
      const file = configFile(t, [...TARGETS.slice(0, 2), `app: { command: ${JSON.stringify(command)} }`]);
      const v = await runBaton(t, ['validate', '-c', file]);
      assert.equal(v.code, 2, `${command}: ${v.stdout}${v.stderr}`);
      assert.match(
        v.stderr,
        new RegExp(
          `baton\\.yaml:3:\\d+ app\\.command: contains "${shown.replace(/[|$()]/g, '\\$&')}", which only a shell understands, but it runs without a shell`,
        ),
        command,
      );
      assert.ok(v.stderr.includes(`hand it to a shell: sh -c '${command}'`), v.stderr);
      // The driver splits with the same function, so it says the same.
      assert.throws(
        () => splitCommand(command),
        (err: unknown) =>
          err instanceof BatonError &&
          err.code === 'BATON_E_CONFIG' &&
          v.stderr.includes(err.message.slice('app.command '.length, err.message.lastIndexOf(': '))),
      );
    }
    const unclosed = configFile(t, [...TARGETS.slice(0, 2), `app: { command: "node app.js 'oops" }`]);
    assert.match(await bothRefuse(t, unclosed), /app\.command: has an unclosed ' quote: close it/);
    // `up` refuses before anything starts (it used to run "{port}&&echo" as one argument).
    assert.match(
      await bothRefuse(
        t,
        configFile(t, [
          ...TARGETS.slice(0, 2),
          'app: { command: "node app.js --port {port}&&echo started" }',
        ]),
      ),
      /app\.command: contains "&&"/,
    );
    // Quoted, the same characters are plain arguments; the nginx edge's commands are checked too.
    await validates(
      t,
      configFile(t, [
        ...TARGETS.slice(0, 2),
        `app: { command: "node app.js --title 'a|b && c' \\"x;y\\" a\\\\|b" }`,
      ]),
    );
    const nginx = configFile(t, [
      'service: web',
      'stateDir: state',
      'edge: { type: nginx, upstreamFile: /tmp/none/web.conf, reload: "nginx -t && nginx -s reload" }',
      'app: { command: node app.js }',
    ]);
    assert.match(await bothRefuse(t, nginx), /edge\.reload: contains "&&"/);
  });

  it("the message's advice works: sh -c '... && exec ...' deploys and serves", async (t) => {
    const svc = await Service.create(t, { instances: 1 });
    svc.configure({ instances: 1, command: `sh -c 'cd ${svc.dir} && exec ${svc.defaultCommand}'` });
    await validates(t, svc.file);
    await svc.start();
    await svc.deployApi('1.0.0');
    assert.deepEqual(await svc.versionsServed(3), ['1.0.0']);
  });

  it('the checks up ran only at start are in validate too (header vs request timeout, ssh hosts)', async (t) => {
    // Node refuses a server whose header timeout outlasts its request timeout: up crashed.
    const timeouts = configFile(t, [
      ...TARGETS,
      'targets: [{ address: 127.0.0.1:9 }]',
      'proxy: { clientHeaderTimeout: 2m, clientRequestTimeout: 1m }',
    ]);
    assert.match(
      await bothRefuse(t, timeouts),
      /proxy\.clientHeaderTimeout: must not be longer than proxy\.clientRequestTimeout \(1m\)/,
    );
    // The SSH driver refused these when it was built, after validate had said ok.
    const hosts = configFile(t, [
      ...TARGETS.slice(0, 2),
      'hosts: [{ name: w1, address: -oProxyCommand=x }, { name: w2, address: 10.0.0.2, user: -l }]',
      'app: { command: node app.js, ports: 8081-8082, env: { "MY-VAR": x } }',
    ]);
    const err = await bothRefuse(t, hosts);
    assert.match(err, /hosts\[0\]\.address: cannot start with "-"/);
    assert.match(err, /hosts\[1\]\.user: cannot start with "-"/);
    assert.match(err, /app\.env\.MY-VAR: with hosts:, a variable name a shell accepts/);
  });
});

describe('config review: stateDir and state files checked before up starts anything', () => {
  before(ensureBuilt);

  it('a file in place of stateDir (or of a folder above it): exit 8 with the path and what to do', async (t) => {
    const dir = tempDir(t);
    writeFile(dir, 'state', 'not a folder\n');
    for (const stateDir of ['state', 'state/prod']) {
      const file = writeFile(
        dir,
        'baton.yaml',
        [
          'service: web',
          'listen: 127.0.0.1:0',
          `stateDir: ${stateDir}`,
          'targets: [{ address: 127.0.0.1:9 }]',
          '',
        ].join('\n'),
      );
      const r = await up(t, file);
      assert.equal(r.code, 8, `${r.code ?? r.signal}: ${r.stderr}`);
      assertPlain(r);
      assert.ok(r.stderr.includes(`stateDir ${path.join(dir, stateDir)} is not a directory`), r.stderr);
      assert.ok(r.stderr.includes(`set stateDir in ${file} to a directory Baton can write`), r.stderr);
    }
  });

  it('a read-only stateDir (a read-only mount: root ignores mode bits): exit 8', async (t) => {
    const dir = tempDir(t);
    const ro = path.join(dir, 'ro');
    mkdirSync(ro);
    const mount = spawnSync('mount', ['-t', 'tmpfs', '-o', 'ro,size=64k', 'tmpfs', ro], { encoding: 'utf8' });
    if (mount.status !== 0) {
      t.skip(`cannot mount a read-only tmpfs here (needs root with CAP_SYS_ADMIN): ${mount.stderr.trim()}`);
      return;
    }
    t.after(() => spawnSync('umount', [ro]));
    for (const stateDir of ['ro', 'ro/state']) {
      const file = writeFile(
        dir,
        'baton.yaml',
        [
          'service: web',
          'listen: 127.0.0.1:0',
          `stateDir: ${stateDir}`,
          'targets: [{ address: 127.0.0.1:9 }]',
          '',
        ].join('\n'),
      );
      const r = await up(t, file);
      assert.equal(r.code, 8, `${r.code ?? r.signal}: ${r.stderr}`);
      assertPlain(r);
      assert.ok(
        r.stderr.includes(`stateDir ${path.join(dir, stateDir)} is on a read-only file system`),
        r.stderr,
      );
    }
  });

  it('service.json of the wrong shape: exit 8 naming the field, nothing touched; fixed, the instance is adopted', async (t) => {
    const svc = await Service.create(t, { instances: 1 });
    await svc.start();
    await svc.deployApi('1.0.0');
    const [pid] = svc.pids('1.0.0');
    assert.ok(pid, 'one instance of 1.0.0 runs');
    const port = svc.state().live!.instances[0]!.port;
    // Killed hard, the daemon leaves its instance running for the next one to adopt.
    svc.daemon.child.kill('SIGKILL');
    await svc.daemon.exited;

    const stateFile = path.join(svc.stateDir, 'service.json');
    const good = readFileSync(stateFile, 'utf8');
    const state = JSON.parse(good) as { live: { instances: Record<string, unknown>[] } };
    state.live.instances[0]!.port = String(port); // valid JSON, wrong shape
    const bad = `${JSON.stringify(state, null, 2)}\n`;
    writeFileSync(stateFile, bad);

    const r = await up(t, svc.file);
    assert.equal(r.code, 8, `up should refuse (${r.code ?? r.signal}):\n${r.stdout}${r.stderr}`);
    assertPlain(r);
    assert.ok(r.stderr.includes(`state file ${stateFile} is not in the shape Baton writes`), r.stderr);
    assert.match(r.stderr, /live\.instances\[0\]\.port: Invalid input: expected number, received string/);
    assert.match(r.stderr, /Nothing was changed; fix it, or move it aside/);
    assert.equal(r.stdout, '', 'nothing started: not even a log line');
    // Touching nothing: the file as it was, the instance still running and serving.
    assert.equal(readFileSync(stateFile, 'utf8'), bad);
    assert.deepEqual(svc.pids('1.0.0'), [pid]);
    const res = await request(`http://127.0.0.1:${port}/`, { reset: true });
    assert.equal((await res.body.text()).trim(), '1.0.0');

    // Put right, the same instance is adopted and serves through the proxy.
    writeFileSync(stateFile, good);
    await svc.start();
    await waitFor(async () => (await svc.status()).live?.instances[0]?.pid === pid, {
      what: 'the daemon to adopt the running 1.0.0 instance',
    });
    assert.deepEqual(await svc.versionsServed(3), ['1.0.0']);
  });

  it('other wrong shapes of service.json, freeze.json and routes.json: exit 8 naming file and field', async (t) => {
    const dir = tempDir(t);
    const state = path.join(dir, 'state');
    mkdirSync(state);
    const appConfig = writeFile(
      dir,
      'app.yaml',
      [
        'service: web',
        'listen: 127.0.0.1:0',
        'stateDir: state',
        'app: { command: "node app.js --port {port}" }',
        '',
      ].join('\n'),
    );
    const release = (instance: Record<string, unknown>): string =>
      JSON.stringify({
        format: 1,
        live: {
          version: '1.0.0',
          instances: [
            {
              id: 'web-1.0.0-8081',
              version: '1.0.0',
              host: 'local',
              port: 8081,
              pid: 99_999_999, // above any pid_max: never a live process
              logFile: '/tmp/x.log',
              startedAt: '2024-01-01T00:00:00Z',
              ...instance,
            },
          ],
        },
        standby: null,
        deployment: null,
        lastRecovery: null,
      });
    const cases: [file: string, text: string, field: RegExp][] = [
      // Below 2 is refused: stopping "pid 1" would signal group -1, every process there is. (Not
      // tried with 1: a Baton without the check would do exactly that.)
      [
        'service.json',
        release({ pid: -99_999_999 }),
        /live\.instances\[0\]\.pid: Too small: expected number to be >=2/,
      ],
      ['service.json', release({ port: 70000 }), /live\.instances\[0\]\.port: Too big/],
      [
        'service.json',
        JSON.stringify({
          format: 1,
          live: null,
          standby: null,
          deployment: { id: 'x', step: 'bogus' },
          lastRecovery: null,
        }),
        /deployment\.version: Invalid input/,
      ],
      ['service.json', JSON.stringify({ format: 2 }), /format: must be 1/],
      ['service.json', '[]', /\(top level\): Invalid input: expected object, received array/],
      [
        'freeze.json',
        JSON.stringify({ format: 1, freeze: { reason: 5, actor: 'me', since: 'now' } }),
        /freeze\.reason/,
      ],
    ];
    for (const [name, text, field] of cases) {
      writeFile(state, name, text);
      const r = await up(t, appConfig);
      assert.equal(r.code, 8, `${name} ${text}: ${r.code ?? r.signal} ${r.stderr}`);
      assertPlain(r);
      assert.ok(
        r.stderr.includes(`state file ${path.join(state, name)} is not in the shape Baton writes`),
        r.stderr,
      );
      assert.match(r.stderr, field);
      assert.match(r.stderr, /fix it, or move it aside/);
      assert.equal(readFileSync(path.join(state, name), 'utf8'), text, 'the file is left as it was');
      writeFile(
        state,
        name,
        name === 'service.json' ? release({}) : JSON.stringify({ format: 1, freeze: null }),
      );
    }

    // The static proxy's routes.json.
    const targets = writeFile(
      dir,
      'targets.yaml',
      [...TARGETS, 'targets: [{ address: 127.0.0.1:9 }]', ''].join('\n'),
    );
    const routes = JSON.stringify({
      format: 1,
      seed: 'x',
      savedAt: 'now',
      routes: [{ host: '127.0.0.1', port: '9', weight: 1 }],
      drained: [],
    });
    writeFile(state, 'routes.json', routes);
    const r = await up(t, targets);
    assert.equal(r.code, 8, r.stderr);
    assert.match(r.stderr, /routes\.json is not in the shape Baton writes: routes\[0\]\.port: Invalid input/);
    assert.match(r.stderr, /move it aside: the proxy then routes from the config's targets/);

    // Not JSON at all: the same exit, and the parser's reason.
    writeFile(state, 'routes.json', '{"format": 1,');
    const torn = await up(t, targets);
    assert.equal(torn.code, 8, torn.stderr);
    assert.match(torn.stderr, /routes\.json is not valid JSON \(/);
  });

  it('history.jsonl: lines of another shape are skipped like a torn one', (t) => {
    const dir = tempDir(t);
    const entry = {
      id: 'a1',
      version: '1.0.0',
      previousVersion: null,
      strategy: 'blue-green',
      actor: 'ci',
      rollback: false,
      startedAt: '2024-01-01T00:00:00Z',
      endedAt: '2024-01-01T00:00:05Z',
      durationMs: 5000,
      result: 'succeeded',
      reason: null,
    };
    writeFile(
      dir,
      'history.jsonl',
      [
        JSON.stringify(entry),
        'null',
        '{"id":5}',
        JSON.stringify({ ...entry, result: 'maybe' }),
        '{"id":',
      ].join('\n'),
    );
    assert.deepEqual(new StateStore(dir).history(), [entry]);
  });
});
