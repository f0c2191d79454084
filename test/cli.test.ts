// The `baton` command as users run it: `node bin/baton.js ...` as a child process, checking
// exit codes, stdout and stderr.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { ROOT } from './helpers/index.js';
import { ensureBuilt, freePort, runBaton, tempDir, writeFile } from './helpers/cli.js';

const PKG_VERSION = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string })
  .version;

const BAD_YAML = [
  'service: web',
  'listen: 127.0.0.1:8080',
  'admn: 127.0.0.1:9901',
  'targets:',
  '  - address: 127.0.0.1:9001',
  '    failTimeout: 30',
  '  - address: 127.0.0.1:9001',
  '',
].join('\n');

describe('baton CLI', () => {
  before(() => ensureBuilt());

  it('--help lists the commands and exits 0', async (t) => {
    const r = await runBaton(t, ['--help']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Usage: baton/m);
    for (const cmd of ['up', 'validate', 'targets']) assert.match(r.stdout, new RegExp(`^  ${cmd}\\b`, 'm'));
    assert.equal(r.stderr, '');
  });

  it('targets --help lists its subcommands', async (t) => {
    const r = await runBaton(t, ['targets', '--help']);
    assert.equal(r.code, 0, r.stderr);
    for (const cmd of ['list', 'add', 'weight', 'drain', 'undrain', 'remove']) {
      assert.match(r.stdout, new RegExp(`^  ${cmd}\\b`, 'm'));
    }
  });

  it("--version prints package.json's version", async (t) => {
    const r = await runBaton(t, ['--version']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), PKG_VERSION);
  });

  it('an unknown flag exits 2 with a message on stderr', async (t) => {
    const r = await runBaton(t, ['--bogus']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown option '--bogus'/);
    assert.equal(r.stdout, '');

    const sub = await runBaton(t, ['validate', '--nope']);
    assert.equal(sub.code, 2);
    assert.match(sub.stderr, /unknown option '--nope'/);
  });

  it('an unknown command exits 2 with a message on stderr', async (t) => {
    const r = await runBaton(t, ['deploy-everything']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown command 'deploy-everything'/);
  });

  it('validate -c bad.yaml exits 2 and lists every problem on stderr', async (t) => {
    const file = writeFile(tempDir(t), 'bad.yaml', BAD_YAML);
    const r = await runBaton(t, ['validate', '-c', file]);
    assert.equal(r.code, 2);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, new RegExp(`^baton: invalid config ${file} \\(3 problems\\):`));
    assert.match(r.stderr, /bad\.yaml:3:1 admn: unknown key "admn"; did you mean "admin"\?/);
    assert.match(r.stderr, /bad\.yaml:6:18 targets\[0\]\.failTimeout: 30 has no unit/);
    assert.match(r.stderr, /bad\.yaml:7:14 targets\[1\]\.address: 127\.0\.0\.1:9001 is listed twice/);
  });

  it('validate -c with a YAML syntax error exits 2 and names the line', async (t) => {
    const file = writeFile(tempDir(t), 'syntax.yaml', 'service: web\nlisten: 127.0.0.1:1\n\tproxy: {}\n');
    const r = await runBaton(t, ['validate', '-c', file]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /syntax\.yaml:3:\d+: /);
  });

  it('validate -c on a missing file exits 2 and says how to pass one', async (t) => {
    const missing = path.join(tempDir(t), 'missing.yaml');
    const r = await runBaton(t, ['validate', '-c', missing]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /cannot read config .*missing\.yaml: no such file\. Pass the file with -c/);
  });

  it('validate -c good.yaml exits 0', async (t) => {
    const file = writeFile(
      tempDir(t),
      'good.yaml',
      'service: web\nlisten: 127.0.0.1:8080\ntargets:\n  - address: 127.0.0.1:9001\n',
    );
    const r = await runBaton(t, ['validate', '-c', file]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `${file}: ok (service web)\n`);
    assert.equal(r.stderr, '');
  });

  it('validate --schema prints the JSON Schema', async (t) => {
    const r = await runBaton(t, ['validate', '--schema']);
    assert.equal(r.code, 0, r.stderr);
    const schema = JSON.parse(r.stdout) as { $schema: string; properties: Record<string, unknown> };
    assert.match(schema.$schema, /json-schema\.org/);
    for (const key of ['service', 'listen', 'admin', 'targets', 'proxy', 'balance']) {
      assert.ok(key in schema.properties, key);
    }
  });

  it('targets list with no daemon says so and exits non-zero', async (t) => {
    const port = await freePort(); // nothing listens there
    const file = writeFile(
      tempDir(t),
      'baton.yaml',
      `service: web\nlisten: 127.0.0.1:0\nadmin: 127.0.0.1:${port}\n`,
    );
    const r = await runBaton(t, ['targets', 'list', '-c', file]);
    assert.notEqual(r.code, 0);
    assert.equal(r.code, 9);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, new RegExp(`no Baton daemon answers on 127\\.0\\.0\\.1:${port}`));
    assert.match(r.stderr, /Start it with: baton up/);
  });

  it('targets list with no admin address in the config says what to add', async (t) => {
    const file = writeFile(tempDir(t), 'baton.yaml', 'service: web\nlisten: 127.0.0.1:0\n');
    const r = await runBaton(t, ['targets', 'list', '-c', file]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /has no "admin" address; add e\.g\. admin: 127\.0\.0\.1:9901/);
  });
});
