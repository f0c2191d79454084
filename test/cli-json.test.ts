// What a new user or a script trips over at the command line: `--json` failures answered in
// JSON, `baton validate --json`, and a README whose commands table and Quickstart match the CLI.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import type { ApiErrorBody } from '../src/api/error.js';
import type { ConfigProblem } from '../src/config/load.js';
import { ROOT } from './helpers/index.js';
import { ensureBuilt, freePort, runBaton, tempDir, writeFile, type RunResult } from './helpers/cli.js';

/** The one JSON error line a failed `--json` command prints on stdout. */
function errorLine(r: RunResult): ApiErrorBody['error'] {
  const lines = r.stdout.split('\n').filter((l) => l !== '');
  assert.equal(lines.length, 1, `one line on stdout:\n${r.stdout}`);
  const body = JSON.parse(lines[0]!) as ApiErrorBody;
  assert.deepEqual(Object.keys(body), ['error']);
  return body.error;
}

const README = (): string => readFileSync(path.join(ROOT, 'README.md'), 'utf8');

describe('--json failures', () => {
  before(() => ensureBuilt());

  it('a daemon that does not answer: {"error":{code,message}} on stdout, the text on stderr, exit 9', async (t) => {
    const port = await freePort(); // nothing listens there
    const file = writeFile(
      tempDir(t),
      'baton.yaml',
      `service: web\nlisten: 127.0.0.1:0\nadmin: 127.0.0.1:${port}\n`,
    );
    const r = await runBaton(t, ['status', '--json', '-c', file]);
    assert.equal(r.code, 9, r.stdout + r.stderr);
    const error = errorLine(r);
    assert.equal(error.code, 'BATON_E_DAEMON_UNREACHABLE');
    assert.match(error.message, new RegExp(`no Baton daemon answers on 127\\.0\\.0\\.1:${port}`));
    assert.match(r.stderr, /^baton: no Baton daemon answers/);

    // Without --json, stdout stays empty, as before.
    const text = await runBaton(t, ['status', '-c', file]);
    assert.equal(text.code, 9);
    assert.equal(text.stdout, '');
  });

  it('a flag commander refuses is a BATON_E_USAGE error line, exit 2', async (t) => {
    const r = await runBaton(t, ['deploy', '--json', '-c', 'nowhere.yaml']);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    const error = errorLine(r);
    assert.equal(error.code, 'BATON_E_USAGE');
    assert.match(error.message, /required option '--version <version>' not specified/);
    // After `--`, --json is an argument, not the flag.
    const after = await runBaton(t, ['deploy', '-c', 'nowhere.yaml', '--', '--json']);
    assert.equal(after.code, 2);
    assert.equal(after.stdout, '');
  });

  it('a config error carries its problems as details', async (t) => {
    const file = writeFile(tempDir(t), 'bad.yaml', 'service: web\nlisten: 127.0.0.1:0\nadmn: x\n');
    const r = await runBaton(t, ['status', '--json', '-c', file]);
    assert.equal(r.code, 2);
    const error = errorLine(r);
    assert.equal(error.code, 'BATON_E_CONFIG');
    const problems = error.details as ConfigProblem[];
    assert.equal(problems.length, 1);
    assert.equal(problems[0]?.path, 'admn');
    assert.equal(problems[0]?.at, '3:1');
  });
});

describe('baton validate --json', () => {
  before(() => ensureBuilt());

  it('a valid file: {"ok":true} with the service and the environments checked', async (t) => {
    const file = writeFile(
      tempDir(t),
      'good.yaml',
      [
        'service: web',
        'listen: 127.0.0.1:8080',
        'targets:',
        '  - address: 127.0.0.1:9001',
        'environments:',
        '  staging: { listen: 127.0.0.1:18080 }',
        '',
      ].join('\n'),
    );
    const r = await runBaton(t, ['validate', '--json', '-c', file]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), {
      ok: true,
      file,
      service: 'web',
      environment: null,
      environments: ['staging'],
      warnings: [],
    });
    assert.equal(r.stderr, '');
  });

  it('an invalid file: {"ok":false} with every problem and its line, exit 2', async (t) => {
    const file = writeFile(
      tempDir(t),
      'bad.yaml',
      [
        'service: web',
        'admn: 127.0.0.1:9901',
        'app:',
        '  command: node app.js --port {port}',
        'edge: { type: nginx, upstreamFile: /tmp/web.conf, url: "ftp://lb-1/" }',
        '',
      ].join('\n'),
    );
    const r = await runBaton(t, ['validate', '--json', '-c', file]);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    const out = JSON.parse(r.stdout) as {
      ok: boolean;
      file: string;
      environment: string | null;
      problems: ConfigProblem[];
      error: { code: string };
    };
    assert.equal(out.ok, false);
    assert.equal(out.file, file);
    assert.equal(out.environment, null);
    assert.equal(out.error.code, 'BATON_E_CONFIG');
    const byPath = new Map(out.problems.map((p) => [p.path, p]));
    assert.deepEqual([...byPath.keys()].sort(), ['admn', 'edge.url']);
    assert.equal(byPath.get('admn')?.at, '2:1');
    assert.match(byPath.get('edge.url')?.message ?? '', /"ftp:\/\/lb-1\/" is not an http\(s\) URL/);
    assert.match(r.stderr, /^baton: invalid config/);
  });

  it('a broken environment is named', async (t) => {
    const file = writeFile(
      tempDir(t),
      'env.yaml',
      'service: web\nlisten: 127.0.0.1:8080\ntargets: [{ address: 127.0.0.1:9001 }]\nenvironments:\n  staging: { listen: nowhere }\n',
    );
    const r = await runBaton(t, ['validate', '--json', '-c', file]);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    const out = JSON.parse(r.stdout) as {
      ok: boolean;
      environment: string | null;
      problems: ConfigProblem[];
    };
    assert.equal(out.ok, false);
    assert.equal(out.environment, 'staging');
    assert.ok(
      out.problems.some((p) => p.path.endsWith('listen')),
      JSON.stringify(out.problems),
    );
  });
});

describe('the README a new user reads', () => {
  before(() => ensureBuilt());

  it('the commands table has a row for every command and for the deploy flags', async (t) => {
    const help = await runBaton(t, ['--help']);
    assert.equal(help.code, 0, help.stderr);
    const commands = [...help.stdout.split('Commands:')[1]!.matchAll(/^ {2}([a-z-]+)/gm)]
      .map((m) => m[1]!)
      .filter((c) => c !== 'help');
    for (const c of ['deploy', 'promote', 'pause', 'resume']) assert.ok(commands.includes(c), c);
    const table = /^## Commands\n\n([\s\S]*?)\n\n/m.exec(README())?.[1];
    assert.ok(table, 'the README has a "## Commands" table');
    const rows = table.split('\n').filter((l) => l.startsWith('| `baton '));
    for (const c of commands) {
      assert.ok(
        rows.some((r) => new RegExp(`\`baton ${c}\\b`).test(r)),
        `a row for \`baton ${c}\` in the README commands table`,
      );
    }
    for (const flag of ['--verify-load', '--allow-manual-pause']) {
      assert.ok(
        rows.some((r) => r.includes('`baton deploy') && r.includes(flag)),
        `a \`baton deploy ... ${flag}\` row`,
      );
    }
  });

  it('the Quickstart runs `baton up` in its own terminal, not backgrounded with &', () => {
    const quickstart = /^## Quickstart[^\n]*\n([\s\S]*?)\n## /m.exec(README())?.[1];
    assert.ok(quickstart, 'the README has a Quickstart section');
    const blocks = [...quickstart.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) =>
      m[1]!
        .split('\n')
        .map((l) => l.replace(/\s+#.*$/, '').trim())
        .filter((l) => l !== ''),
    );
    for (const line of blocks.flat()) assert.doesNotMatch(line, /&$/, `backgrounded: ${line}`);
    const up = blocks.find((b) => b.some((l) => /\bbaton up\b/.test(l)));
    assert.deepEqual(up, ['npx baton up -c baton.yaml'], 'baton up in a block of its own');
    assert.match(quickstart, /in a terminal of its own/);
    assert.match(quickstart, /systemd/);
  });
});
