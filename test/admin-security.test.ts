// The admin API against web pages, on a real `baton up`: a cross-site "simple" request (a
// text/plain POST with a foreign Origin) changes nothing, a DNS-rebinding page (a Host of its
// own) reads nothing, while the CLI, curl-like callers, loopback names, IP addresses and the
// names in adminHosts: keep working.
import assert from 'node:assert/strict';
import http from 'node:http';
import { describe, it, type TestContext } from 'node:test';
import { request } from 'undici';
import { startBackend, waitFor } from './helpers/index.js';
import { ensureBuilt, freePort, runBaton, startDaemon, tempDir, writeFile } from './helpers/cli.js';
import { Service } from './helpers/app-daemon.js';
import type { ApiErrorBody } from '../src/api/error.js';
import type { FreezeView } from '../src/api/freeze.js';
import type { TargetsAnswer } from '../src/api/targets.js';

ensureBuilt();

interface Answer {
  readonly status: number;
  readonly body: string;
  /** The BATON_E_... code of an error answer. */
  readonly code: string | undefined;
}

/**
 * One request as a browser (or curl) would send it, headers exactly as given: node:http lets
 * the test set Host, Origin and Content-Type to anything.
 */
function raw(
  port: number,
  method: string,
  urlPath: string,
  headers: Record<string, string> = {},
  body?: string,
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method,
        path: urlPath,
        agent: false,
        headers: {
          connection: 'close',
          ...(body === undefined ? {} : { 'content-length': String(Buffer.byteLength(body)) }),
          ...headers,
        },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => {
          let code: string | undefined;
          try {
            code = (JSON.parse(text) as Partial<ApiErrorBody>).error?.code;
          } catch {
            // not JSON (/metrics)
          }
          resolve({ status: res.statusCode ?? 0, body: text, code });
        });
      },
    );
    req.setTimeout(10_000, () => req.destroy(new Error(`${method} ${urlPath}: no answer in 10s`)));
    req.on('error', reject);
    req.end(body);
  });
}

const EVIL = 'http://evil.example';

function refused(a: Answer, status: number, code: string, what: string): void {
  assert.equal(a.status, status, `${what}: ${a.body}`);
  assert.equal(a.code, code, `${what}: ${a.body}`);
}

async function freezeState(port: number): Promise<unknown> {
  const r = await raw(port, 'GET', '/v1/freeze');
  assert.equal(r.status, 200, r.body);
  return (JSON.parse(r.body) as FreezeView).freeze;
}

describe('admin API: cross-site requests', () => {
  it('a text/plain POST /v1/freeze from another origin is refused and freezes nothing; the CLI still freezes', async (t) => {
    const svc = await Service.create(t);
    await svc.start();
    const port = svc.adminPort;
    const freeze = JSON.stringify({ reason: 'pwned', actor: 'evil' });
    // What an HTML form or fetch(..., { mode: 'no-cors' }) on any web page sends.
    refused(
      await raw(port, 'POST', '/v1/freeze', { 'content-type': 'text/plain', origin: EVIL }, freeze),
      403,
      'BATON_E_FORBIDDEN',
      'cross-site text/plain POST',
    );
    // Each rule on its own: a JSON body from another origin, and text/plain with no Origin.
    refused(
      await raw(port, 'POST', '/v1/freeze', { 'content-type': 'application/json', origin: EVIL }, freeze),
      403,
      'BATON_E_FORBIDDEN',
      'cross-site JSON POST',
    );
    const plain = await raw(port, 'POST', '/v1/freeze', { 'content-type': 'text/plain' }, freeze);
    refused(plain, 415, 'BATON_E_UNSUPPORTED_MEDIA_TYPE', 'text/plain POST');
    assert.match(plain.body, /Content-Type: application\/json/);
    refused(
      await raw(port, 'POST', '/v1/freeze', {}, freeze),
      415,
      'BATON_E_UNSUPPORTED_MEDIA_TYPE',
      'a body without Content-Type',
    );
    refused(
      await raw(port, 'POST', '/v1/freeze', { 'sec-fetch-site': 'cross-site' }, undefined),
      403,
      'BATON_E_FORBIDDEN',
      'Sec-Fetch-Site: cross-site',
    );
    assert.equal(await freezeState(port), null, 'nothing was frozen');

    // The CLI sends JSON and no Origin: it freezes, shows the status and unfreezes.
    const frozen = await runBaton(t, ['freeze', '-c', svc.file, '--reason', 'release party']);
    assert.equal(frozen.code, 0, frozen.stderr);
    assert.equal((await freezeState(port)) !== null, true, 'the CLI froze');
    const status = await runBaton(t, ['status', '-c', svc.file]);
    assert.equal(status.code, 0, status.stderr);
    assert.equal((await runBaton(t, ['unfreeze', '-c', svc.file])).code, 0);
    assert.equal(await freezeState(port), null);
    // Same-origin (a page served by the admin API itself) and JSON with a charset are fine.
    const same = await raw(
      port,
      'POST',
      '/v1/freeze',
      {
        'content-type': 'application/json; charset=utf-8',
        origin: `http://127.0.0.1:${port}`,
        'sec-fetch-site': 'same-origin',
      },
      JSON.stringify({ reason: 'same origin' }),
    );
    assert.equal(same.status, 200, same.body);
    assert.equal((JSON.parse(same.body) as { freeze: { reason: string } }).freeze.reason, 'same origin');
  });

  it('a cross-site POST /v1/targets/:id/drain is refused and traffic still flows', async (t) => {
    const backend = await startBackend(t, 'only');
    const dir = tempDir(t);
    const adminPort = await freePort();
    const file = writeFile(
      dir,
      'baton.yaml',
      [
        'service: web',
        'listen: 127.0.0.1:0',
        `admin: 127.0.0.1:${adminPort}`,
        'stateDir: state',
        'targets:',
        `  - address: 127.0.0.1:${backend.port}`,
        '',
      ].join('\n'),
    );
    const d = await startDaemon(t, file);
    const id = encodeURIComponent(`127.0.0.1:${backend.port}`);
    refused(
      await raw(
        adminPort,
        'POST',
        `/v1/targets/${id}/drain`,
        { 'content-type': 'text/plain', origin: EVIL },
        '',
      ),
      403,
      'BATON_E_FORBIDDEN',
      'cross-site drain',
    );
    // No body at all: the Origin alone is refused.
    refused(
      await raw(adminPort, 'POST', `/v1/targets/${id}/drain?timeout=0s`, { origin: EVIL }),
      403,
      'BATON_E_FORBIDDEN',
      'cross-site drain without a body',
    );
    refused(
      await raw(adminPort, 'DELETE', `/v1/targets/${id}`, { origin: 'null' }),
      403,
      'BATON_E_FORBIDDEN',
      'a sandboxed page (Origin: null)',
    );
    refused(
      await raw(
        adminPort,
        'POST',
        '/v1/targets',
        { 'content-type': 'text/plain' },
        '{"address":"10.9.9.9:80"}',
      ),
      415,
      'BATON_E_UNSUPPORTED_MEDIA_TYPE',
      'a text/plain target',
    );
    for (let i = 0; i < 5; i++) {
      const res = await request(d.url, { reset: true });
      assert.equal(res.statusCode, 200);
      assert.equal(await res.body.text(), 'only');
    }
    const list = await raw(adminPort, 'GET', '/v1/targets');
    const targets = (JSON.parse(list.body) as TargetsAnswer).targets;
    assert.deepEqual(
      targets.map((x) => [x.id, x.state]),
      [[`127.0.0.1:${backend.port}`, 'active']],
      'still one target, still active',
    );
    // The CLI (no Origin, no body) still drains.
    const drained = await runBaton(t, ['targets', 'drain', `127.0.0.1:${backend.port}`, '-c', file]);
    assert.equal(drained.code, 0, drained.stderr);
    await waitFor(
      async () => {
        const r = await raw(adminPort, 'GET', '/v1/targets');
        return (JSON.parse(r.body) as TargetsAnswer).targets[0]?.state !== 'active';
      },
      { what: 'the CLI drain' },
    );
  });
});

describe('admin API: Host (DNS rebinding)', () => {
  async function appService(t: TestContext): Promise<Service> {
    const svc = await Service.create(t, { extra: ['adminHosts: [Baton.Test.]'] });
    await svc.start();
    return svc;
  }

  it('refuses a Host it is not known by on every path, and answers loopback, IP addresses and adminHosts', async (t) => {
    const svc = await appService(t);
    const port = svc.adminPort;
    for (const p of ['/v1/status', '/v1/logs', '/v1/history', '/v1/health', '/metrics', '/v1/freeze']) {
      const r = await raw(port, 'GET', p, { host: `evil.example:${port}` });
      refused(r, 403, 'BATON_E_FORBIDDEN', `Host evil.example on ${p}`);
      assert.match(r.body, /adminHosts/, 'the answer says how to allow a name');
      assert.doesNotMatch(r.body, /"live"|"logs"/, 'and nothing of the status');
    }
    refused(
      await raw(port, 'GET', '/v1/status', { host: 'baton.test.evil.example' }),
      403,
      'BATON_E_FORBIDDEN',
      'a name that only starts like an allowed one',
    );
    // A rebinding page's POST: same Host, and its own Origin (which matches that Host).
    refused(
      await raw(
        port,
        'POST',
        '/v1/freeze',
        {
          host: `evil.example:${port}`,
          origin: `http://evil.example:${port}`,
          'content-type': 'application/json',
        },
        JSON.stringify({ reason: 'rebound' }),
      ),
      403,
      'BATON_E_FORBIDDEN',
      'a rebinding POST',
    );
    assert.equal(await freezeState(port), null);

    for (const host of [
      `127.0.0.1:${port}`,
      `localhost:${port}`,
      `LOCALHOST.:${port}`,
      `[::1]:${port}`,
      `10.1.2.3:${port}`,
      // An ssh tunnel or a port mapping changes the port, not the name.
      'localhost:19901',
      `baton.test:${port}`,
      'baton.test',
    ]) {
      const r = await raw(port, 'GET', '/v1/status', { host });
      assert.equal(r.status, 200, `Host ${host}: ${r.body}`);
    }
    const metrics = await raw(port, 'GET', '/metrics', { host: `127.0.0.1:${port}` });
    assert.equal(metrics.status, 200, metrics.body);
    // The same origin as the Host it was reached by is not cross-site.
    const same = await raw(port, 'GET', '/v1/status', {
      host: `baton.test:${port}`,
      origin: `http://baton.test:${port}`,
    });
    assert.equal(same.status, 200, same.body);
    refused(
      await raw(port, 'GET', '/v1/status', {
        host: `baton.test:${port}`,
        origin: `http://127.0.0.1:${port}`,
      }),
      403,
      'BATON_E_FORBIDDEN',
      'an Origin that is not the Host it came to',
    );
  });

  it('checks the Host before the token, and the CLI passes both', async (t) => {
    const svc = await Service.create(t);
    const token = 'admin-security-token';
    await svc.start({ BATON_ADMIN_TOKEN: token });
    const port = svc.adminPort;
    refused(
      await raw(port, 'GET', '/v1/status', { host: 'evil.example', authorization: `Bearer ${token}` }),
      403,
      'BATON_E_FORBIDDEN',
      'a rebinding page that somehow has the token',
    );
    refused(await raw(port, 'GET', '/v1/status'), 401, 'BATON_E_UNAUTHORIZED', 'no token');
    const ok = await raw(port, 'GET', '/v1/status', { authorization: `Bearer ${token}` });
    assert.equal(ok.status, 200, ok.body);
    const status = await runBaton(t, ['status', '--json', '-c', svc.file], {
      env: { BATON_ADMIN_TOKEN: token },
    });
    assert.equal(status.code, 0, status.stderr);
    assert.equal((JSON.parse(status.stdout) as { live: unknown }).live, null);
  });

  it('refuses adminHosts entries that are not host names', async (t) => {
    const dir = tempDir(t);
    const file = writeFile(
      dir,
      'baton.yaml',
      'service: web\nlisten: 127.0.0.1:0\nadmin: 127.0.0.1:9901\nadminHosts: ["http://baton.test:9901"]\ntargets: []\n',
    );
    const r = await runBaton(t, ['validate', '-c', file]);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(r.stderr + r.stdout, /adminHosts\[0\]: a host name the admin API is reached by/);
  });
});
