// `baton validate` and `baton up` agree on a config (issue 15): a port range too small for the
// strategy is refused by both, and the warnings (no admin:, a command without {port}) are
// printed by validate (exit 0, `warnings` with --json) and logged by up. SIGHUP names the
// changed keys it cannot apply (listen, proxy.*...) and keeps running on their old values.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { request } from 'undici';
import { connects, startBackend, waitFor } from './helpers/index.js';
import { ensureBuilt, freePort, runBaton, startDaemon, tempDir, writeFile } from './helpers/cli.js';

before(() => ensureBuilt());

const NO_ADMIN = /app: without admin: .*baton deploy.*add e\.g\. admin: 127\.0\.0\.1:9090/;
const NO_PORT = /app\.command "node app\.js" has no \{port\}.*PORT/;

/** An app config; `lines` replace or add keys under app: and at the top. */
function appYaml(top: string[], app: string[]): string {
  return ['service: web', 'listen: 127.0.0.1:0', 'stateDir: state', ...top, 'app:', ...app, ''].join('\n');
}

interface ValidateJson {
  ok: boolean;
  warnings?: string[];
  problems?: { path: string; message: string }[];
}

describe('baton validate and baton up agree', () => {
  it('warns (exit 0) about an app without admin: and a command without {port}; --json lists them', async (t) => {
    const dir = tempDir(t);
    const file = writeFile(dir, 'baton.yaml', appYaml([], ['  command: node app.js']));
    const r = await runBaton(t, ['validate', '-c', file]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /: ok \(service web\)/);
    assert.match(r.stderr, new RegExp(`baton: warning: ${NO_ADMIN.source}`));
    assert.match(r.stderr, new RegExp(`baton: warning: ${NO_PORT.source}`));

    const j = await runBaton(t, ['validate', '-c', file, '--json']);
    assert.equal(j.code, 0, j.stderr);
    const answer = JSON.parse(j.stdout) as ValidateJson;
    assert.equal(answer.ok, true);
    assert.equal(answer.warnings?.length, 2, j.stdout);
    assert.match(answer.warnings?.[0] ?? '', NO_ADMIN);
    assert.match(answer.warnings?.[1] ?? '', NO_PORT);

    // With admin and {port} (or PORT in the command): no warnings.
    const admin = await freePort();
    for (const command of ['node app.js --port {port}', 'env PORT=1 node app.js']) {
      writeFile(dir, 'baton.yaml', appYaml([`admin: 127.0.0.1:${admin}`], [`  command: ${command}`]));
      const clean = await runBaton(t, ['validate', '-c', file, '--json']);
      assert.equal(clean.code, 0, clean.stderr);
      assert.deepEqual((JSON.parse(clean.stdout) as ValidateJson).warnings, [], command);
      assert.doesNotMatch(clean.stderr, /warning/);
    }
  });

  it('baton up logs the same warnings and runs', async (t) => {
    const dir = tempDir(t);
    const file = writeFile(dir, 'baton.yaml', appYaml([], ['  command: node app.js']));
    const d = await startDaemon(t, file, { admin: false });
    const warned = d.logs().filter((l) => l.level === 40);
    assert.ok(
      warned.some((l) => NO_ADMIN.test(String(l.msg))),
      d.stdout(),
    );
    assert.ok(
      warned.some((l) => NO_PORT.test(String(l.msg))),
      d.stdout(),
    );
    assert.equal(d.child.exitCode, null);
    d.child.kill('SIGTERM');
    assert.deepEqual(await d.exited, { code: 0, signal: null });
  });

  it('refuses a port range too small for the strategy, in validate and in up, naming the numbers', async (t) => {
    const dir = tempDir(t);
    const admin = await freePort();
    const top = [`admin: 127.0.0.1:${admin}`];
    const cases: { app: string[]; top?: string[]; error: RegExp | null }[] = [
      // blue-green (the default): two sets of 2.
      {
        app: ['  instances: 2', '  ports: 8081-8083'],
        error:
          /8081-8083 has 3 port\(s\) but a deploy needs 4 \(blue-green runs two sets of 2 side by side\): widen it, e\.g\. ports: 8081-8084/,
      },
      { app: ['  instances: 2', '  ports: 8081-8084'], error: null },
      // rolling: instances + maxSurge.
      {
        top: ['strategy: { type: rolling, maxSurge: 2 }'],
        app: ['  instances: 4', '  ports: 8081-8085'],
        error:
          /8081-8085 has 5 port\(s\) but a deploy needs 6 \(rolling runs up to instances \+ maxSurge = 4 \+ 2\)/,
      },
      {
        top: ['strategy: { type: rolling, maxSurge: 2 }'],
        app: ['  instances: 4', '  ports: 8081-8086'],
        error: null,
      },
      { top: ['strategy: { type: recreate }'], app: ['  instances: 3', '  ports: 8081-8083'], error: null },
    ];
    for (const c of cases) {
      const file = writeFile(
        dir,
        'baton.yaml',
        appYaml([...top, ...(c.top ?? [])], ['  command: node app.js --port {port}', ...c.app]),
      );
      const v = await runBaton(t, ['validate', '-c', file, '--json']);
      const answer = JSON.parse(v.stdout) as ValidateJson;
      if (c.error === null) {
        assert.equal(v.code, 0, v.stdout + v.stderr);
        assert.equal(answer.ok, true);
        continue;
      }
      assert.equal(v.code, 2, v.stdout);
      assert.equal(answer.ok, false);
      const problem = answer.problems?.find((p) => p.path === 'app.ports');
      assert.match(problem?.message ?? '', c.error, v.stdout);
      // up refuses the same file with the same message, before anything listens.
      const up = await runBaton(t, ['up', '-c', file]);
      assert.equal(up.code, 2, up.stdout + up.stderr);
      assert.match(up.stderr, c.error);
      assert.doesNotMatch(up.stdout, /listening/);
    }
  });
});

describe('SIGHUP and the keys it cannot apply', () => {
  it('names the changed keys that need a restart, keeps their old values, and applies the rest', async (t) => {
    const dir = tempDir(t);
    const [a, b] = [await startBackend(t, 'a'), await startBackend(t, 'b')];
    const admin = await freePort();
    const other = await freePort();
    const yaml = (listen: string, extra: string[], backends: number[]): string =>
      [
        'service: web',
        `listen: ${listen}`,
        `admin: 127.0.0.1:${admin}`,
        'stateDir: state',
        ...extra,
        'targets:',
        ...backends.map((p) => `  - address: 127.0.0.1:${p}`),
        '',
      ].join('\n');
    const file = writeFile(dir, 'baton.yaml', yaml('127.0.0.1:0', [], [a.port]));
    const d = await startDaemon(t, file);

    // listen and proxy.retries changed (need a restart), targets changed (applied).
    writeFile(dir, 'baton.yaml', yaml(`127.0.0.1:${other}`, ['proxy: { retries: 0 }'], [a.port, b.port]));
    d.child.kill('SIGHUP');
    const warning = await waitFor(() => d.logs().find((l) => Array.isArray(l.notApplied)), {
      what: 'the reload to name what it did not apply',
    });
    assert.equal(warning.level, 40);
    assert.deepEqual(warning.notApplied, ['listen', 'proxy.retries']);
    assert.match(
      String(warning.msg),
      /config changes NOT applied: listen, proxy\.retries need a restart of baton up; running on the old values/,
    );
    assert.doesNotMatch(d.stdout(), /"msg":"config reloaded/);
    await waitFor(() => d.logs().some((l) => l.msg === 'targets reloaded'), {
      what: 'the targets to reload',
    });

    // Still on the old address; the new one was not opened. The new targets serve.
    assert.equal(await connects(other), false);
    const seen = new Set<string>();
    for (let i = 0; i < 6; i++) {
      const res = await request(`${d.url}/`, { reset: true });
      assert.equal(res.statusCode, 200);
      seen.add(await res.body.text());
    }
    assert.deepEqual(seen, new Set(['a', 'b']));

    // The same file again: the running values still differ from it, so it says so again.
    d.child.kill('SIGHUP');
    await waitFor(() => d.logs().filter((l) => Array.isArray(l.notApplied)).length === 2, {
      what: 'the second reload to warn again',
    });
    assert.equal(d.child.exitCode, null);
  });
});
