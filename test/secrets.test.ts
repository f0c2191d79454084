// Baton's secrets stay Baton's: the admin token and the variables the config names as holding
// secrets (a remote edge's tokenEnv, notify's webhookEnv / urlEnv / $NAME) reach neither the
// app's instances (locally, nor the ssh client whose SendEnv could forward them) nor the hooks,
// except a hook that lists one in passEnv. On a real `baton up`.
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { request } from 'undici';
import { instanceBaseEnv, secretEnvNames } from '../src/config/secrets.js';
import { config, startBackend, waitFor } from './helpers/index.js';
import { ensureBuilt, freePort, runBaton, startDaemon, tempDir, writeFile } from './helpers/cli.js';
import { Service } from './helpers/app-daemon.js';

ensureBuilt();

const TOKEN = 'tok-admin-secret';
/** The daemon's environment: Baton's secrets, and one plain variable everyone keeps. */
const ENV = {
  BATON_ADMIN_TOKEN: TOKEN,
  SECRETS_SLACK_URL: '',
  SECRETS_WEBHOOK_URL: '',
  SECRETS_WEBHOOK_TOKEN: 'tok-webhook-secret',
  SECRETS_TEST_PLAIN: 'kept',
};
const NOTIFY = [
  'notify:',
  '  slack: { webhookEnv: SECRETS_SLACK_URL }',
  `  webhook: { url: $SECRETS_WEBHOOK_URL, headers: { Authorization: 'Bearer \${SECRETS_WEBHOOK_TOKEN}' } }`,
];
const NOTIFY_SECRETS = ['SECRETS_SLACK_URL', 'SECRETS_WEBHOOK_URL', 'SECRETS_WEBHOOK_TOKEN'];

/** An app that answers its environment on /env (and 200 on /health). */
const ENV_APP = `import http from 'node:http';
const port = Number(process.argv[2]);
http
  .createServer((req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(req.url === '/env' ? JSON.stringify(process.env) : '{}');
  })
  .listen(port, '127.0.0.1');
`;

/** `env` output (one NAME=value a line) as a record. */
function parseEnv(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const i = line.indexOf('=');
    if (i > 0 && /^[A-Za-z_][A-Za-z0-9_]*$/.test(line.slice(0, i))) env[line.slice(0, i)] = line.slice(i + 1);
  }
  return env;
}

function lacks(env: Record<string, string | undefined>, names: readonly string[], what: string): void {
  for (const n of names) assert.equal(env[n], undefined, `${what} has ${n}`);
  assert.equal(env.SECRETS_TEST_PLAIN, 'kept', `${what} still inherits the daemon's environment`);
}

describe('secrets in the environment', () => {
  it('names the admin token, remote edges tokenEnv and notify variables as secrets', () => {
    const c = config(
      [
        'service: web',
        'listen: 127.0.0.1:8080',
        'edges:',
        '  - { type: builtin }',
        '  - { type: builtin, admin: 10.0.0.2:9901, tokenEnv: LB1_TOKEN }',
        'app:',
        '  command: node app.js --port {port}',
        ...NOTIFY,
        '',
      ].join('\n'),
    );
    assert.deepEqual(secretEnvNames(c).sort(), ['BATON_ADMIN_TOKEN', 'LB1_TOKEN', ...NOTIFY_SECRETS].sort());
    const base = instanceBaseEnv(c, {
      LB1_TOKEN: 'x',
      BATON_ADMIN_TOKEN: 'y',
      PATH: '/bin',
      SECRETS_TEST_PLAIN: 'kept',
    });
    assert.deepEqual(base, { PATH: '/bin', SECRETS_TEST_PLAIN: 'kept' });
  });

  it('instances and hooks do not get them; a hook with passEnv gets the admin token', async (t) => {
    const sink = await startBackend(t, 'sink');
    const svc = await Service.create(t);
    writeFile(svc.dir, 'envapp.mjs', ENV_APP);
    svc.configure({
      command: `node ${path.join(svc.dir, 'envapp.mjs')} {port} --marker ${svc.marker}`,
      instances: 1,
      extra: [
        'hooks:',
        '  preDeploy: env > hook-pre.env',
        '  postDeploy: { command: env > hook-post.env, passEnv: [BATON_ADMIN_TOKEN] }',
        ...NOTIFY,
      ],
    });
    const url = `http://127.0.0.1:${sink.port}`;
    const env = { ...ENV, SECRETS_SLACK_URL: `${url}/slack`, SECRETS_WEBHOOK_URL: `${url}/hook` };
    const d = await svc.start(env);
    const r = await runBaton(t, ['deploy', '-c', svc.file, '--version', '1.0.0', '--json'], {
      env: { BATON_ADMIN_TOKEN: TOKEN },
      timeout: 30_000,
    });
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);

    const res = await request(`${d.url}/env`, { reset: true });
    const instance = (await res.body.json()) as Record<string, string>;
    assert.equal(instance.BATON_VERSION, '1.0.0', 'the answer is the instance environment');
    lacks(instance, ['BATON_ADMIN_TOKEN', ...NOTIFY_SECRETS], 'the instance');

    const pre = parseEnv(readFileSync(path.join(svc.dir, 'hook-pre.env'), 'utf8'));
    assert.equal(pre.BATON_HOOK, 'preDeploy');
    lacks(pre, ['BATON_ADMIN_TOKEN', ...NOTIFY_SECRETS], 'the preDeploy hook');
    const postFile = path.join(svc.dir, 'hook-post.env');
    await waitFor(() => existsSync(postFile) && readFileSync(postFile, 'utf8').includes('BATON_HOOK='), {
      what: 'the postDeploy hook',
    });
    const post = parseEnv(readFileSync(postFile, 'utf8'));
    assert.equal(post.BATON_ADMIN_TOKEN, TOKEN, 'passEnv gives the hook the admin token');
    lacks(post, NOTIFY_SECRETS, 'the postDeploy hook');
    // The daemon itself still uses them: the notifications were sent, with the header filled in.
    await waitFor(() => sink.seen.find((s) => s.url === '/hook' && s.headers.authorization), {
      what: 'the webhook',
    });
    assert.equal(
      sink.seen.find((s) => s.url === '/hook')?.headers.authorization,
      `Bearer ${ENV.SECRETS_WEBHOOK_TOKEN}`,
    );
  });

  it('the ssh client that starts instances on hosts does not get them (nothing for SendEnv to forward)', async (t) => {
    const dir = tempDir(t);
    const bin = path.join(dir, 'bin');
    const seen = path.join(dir, 'ssh-env');
    mkdirSync(bin);
    mkdirSync(seen);
    // Stands in for OpenSSH: records the environment it was given, then fails as an
    // unreachable host does.
    writeFile(
      bin,
      'ssh',
      `#!/bin/sh\nenv > "${seen}/env.$$"\ncat > /dev/null\necho "ssh: connect to host 127.0.0.1 port 22: Connection refused" >&2\nexit 255\n`,
    );
    chmodSync(path.join(bin, 'ssh'), 0o755);
    const adminPort = await freePort();
    const file = writeFile(
      dir,
      'baton.yaml',
      [
        'service: web',
        'listen: 127.0.0.1:0',
        `admin: 127.0.0.1:${adminPort}`,
        'stateDir: state',
        'hosts: [{ name: h1, address: 127.0.0.1 }]',
        'ssh: { connectTimeout: 1s }',
        'app:',
        '  command: node app.js --port {port}',
        '  ports: 8081-8082',
        '  readyTimeout: 2s',
        ...NOTIFY,
        '',
      ].join('\n'),
    );
    const env = {
      ...ENV,
      SECRETS_SLACK_URL: 'http://127.0.0.1:9/slack',
      SECRETS_WEBHOOK_URL: 'http://127.0.0.1:9/hook',
      PATH: `${bin}:${process.env.PATH ?? ''}`,
    };
    await startDaemon(t, file, { env });
    const r = await runBaton(t, ['deploy', '-c', file, '--version', '1.0.0', '--json'], {
      env: { BATON_ADMIN_TOKEN: TOKEN },
      timeout: 30_000,
    });
    assert.notEqual(r.code, 0, 'no host answers');
    const files = readdirSync(seen);
    assert.ok(files.length > 0, `ssh was called: ${r.stdout}\n${r.stderr}`);
    for (const f of files) {
      lacks(
        parseEnv(readFileSync(path.join(seen, f), 'utf8')),
        ['BATON_ADMIN_TOKEN', ...NOTIFY_SECRETS],
        `ssh ${f}`,
      );
    }
  });
});
