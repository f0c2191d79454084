// environments: deep-merged over the base config with --env; state per environment.
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { parseConfigText } from '../src/config/load.js';
import { isBatonError } from '../src/errors.js';
import { runBaton, tempDir, writeFile } from './helpers/cli.js';

const FILE = '/srv/web/baton.yaml';
const YAML = `service: web
listen: 127.0.0.1:8080
admin: 127.0.0.1:9901
app:
  command: node app.js --port {port}
  instances: 2
  env: { LOG_LEVEL: info, REGION: kr }
strategy: { type: blue-green, verify: 1s }
environments:
  staging:
    listen: 127.0.0.1:18080
    app: { instances: 1, env: { LOG_LEVEL: debug } }
  production:
    app:
      instances: 4
      wieght: 3
`;

function problemsOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (isBatonError(err)) return err.message;
    throw err;
  }
  assert.fail('expected a config error');
}

describe('environments', () => {
  it('deep-merges the chosen environment over the base, objects key by key', () => {
    const c = parseConfigText(YAML.replace('      wieght: 3\n', ''), FILE, 'staging');
    assert.equal(c.environment, 'staging');
    assert.deepEqual(c.listen, { kind: 'tcp', host: '127.0.0.1', port: 18080 });
    assert.equal(c.app?.instances, 1);
    assert.deepEqual(c.app?.env, { LOG_LEVEL: 'debug', REGION: 'kr' }, 'nested keys merge, others are kept');
    assert.equal(c.app?.command, 'node app.js --port {port}');
    assert.equal(
      c.stateDirPath,
      path.join('/srv/web/.baton', 'staging'),
      'state, lock and history per environment',
    );
    const base = parseConfigText(YAML.replace('      wieght: 3\n', ''), FILE);
    assert.equal(base.environment, null);
    assert.equal(base.app?.instances, 2);
    assert.equal(base.stateDirPath, '/srv/web/.baton');
  });

  it('names an unknown environment with a hint, and places errors inside the environment', () => {
    assert.match(
      problemsOf(() => parseConfigText(YAML, FILE, 'prod')),
      /no environment "prod"; did you mean "production"\? \(the file has: staging, production\)/,
    );
    const msg = problemsOf(() => parseConfigText(YAML, FILE, 'production'));
    assert.match(
      msg,
      /baton\.yaml:16:7 app\.wieght: unknown key "wieght"/,
      'line and column inside environments.production',
    );
    assert.match(
      problemsOf(() => parseConfigText('service: web\nlisten: 127.0.0.1:1\n', FILE, 'staging')),
      /--env staging was given, but the file has no environments section/,
    );
  });

  it('baton validate checks every environment, and --env picks one', async (t) => {
    const dir = tempDir(t);
    const file = writeFile(dir, 'baton.yaml', YAML);
    const all = await runBaton(t, ['validate', '-c', file]);
    assert.equal(all.code, 2, 'production has a typo');
    assert.match(all.stderr, /unknown key "wieght"; did you mean "weight"\?|unknown key "wieght"/);
    const staging = await runBaton(t, ['validate', '-c', file, '--env', 'staging']);
    assert.equal(staging.code, 0, staging.stderr);
    assert.match(staging.stdout, /ok \(service web, environment staging\)/);
    const fromEnv = await runBaton(t, ['validate', '-c', file], { env: { BATON_ENV: 'staging' } });
    assert.equal(fromEnv.code, 0, fromEnv.stderr);
    assert.match(fromEnv.stdout, /environment staging/);
  });
});
