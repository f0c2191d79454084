// Deploys under HTTP/2 load (#17): a real `baton up` with an app and tls:, h2load (nghttp2's load
// client, independent of Baton's code) on two kinds of requests at once, quick ones and ones
// the app holds for 300 ms (so h2 streams are in flight at every switch and every drain), and
// HTTPS/1.1 load from Baton's own load client beside it, through a blue-green, a rolling and a
// canary deploy: 0 failed on each. The canary's sticky cookie holds an h2 client on its side.
// Control: the same h2load sees failures when the instances are killed under it.
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { describe, it } from 'node:test';
import { request } from 'undici';
import { canaryStrategy, Service } from './helpers/app-daemon.js';
import { installWebCert, makeCa } from './helpers/certs.js';
import { h2load, summary, type H2loadResult } from './helpers/h2load.js';
import { httpsLoad } from './helpers/https-load.js';
import { waitFor } from './helpers/index.js';

/** Requests the proxy's targets answered so far (GET /v1/targets). */
async function served(adminPort: number): Promise<number> {
  const res = await request(`http://127.0.0.1:${adminPort}/v1/targets`, { reset: true });
  const body = (await res.body.json()) as { targets: { requests: number }[] };
  return body.targets.reduce((n, x) => n + x.requests, 0);
}

/** GET / `n` times over one h2 connection: the versions that answered. */
async function h2versions(port: number, ca: string, n: number): Promise<string[]> {
  const c = http2.connect(`https://127.0.0.1:${port}`, { ca, servername: 'web.test' });
  c.on('error', () => undefined);
  try {
    const one = (): Promise<string> =>
      new Promise((resolve, reject) => {
        const r = c.request({ ':path': '/' });
        let body = '';
        r.setEncoding('utf8');
        r.on('data', (d: string) => (body += d));
        r.on('end', () => resolve(body.trim()));
        r.on('error', reject);
      });
    const out: string[] = [];
    for (let i = 0; i < n; i++) out.push(await one());
    return out;
  } finally {
    c.close();
  }
}

/** GET / over one h2 connection, `n` times with the cookie the first answer set: the versions. */
async function stickyVersions(port: number, ca: string, n: number): Promise<string[]> {
  const c = http2.connect(`https://127.0.0.1:${port}`, { ca, servername: 'web.test' });
  c.on('error', () => undefined);
  try {
    const get = (cookie: string | null): Promise<{ body: string; setCookie: string | null }> =>
      new Promise((resolve, reject) => {
        const r = c.request({ ':path': '/', ...(cookie ? { cookie } : {}) });
        let body = '';
        let setCookie: string | null = null;
        r.on('response', (h) => {
          const sc = h['set-cookie'];
          setCookie = sc ? sc[0]!.split(';')[0]! : null;
        });
        r.setEncoding('utf8');
        r.on('data', (d: string) => (body += d));
        r.on('end', () => resolve({ body: body.trim(), setCookie }));
        r.on('error', reject);
      });
    const first = await get(null);
    assert.ok(first.setCookie, 'the first answer of a canary sets the sticky cookie');
    const seen = [first.body];
    for (let i = 1; i < n; i++) seen.push((await get(first.setCookie)).body);
    return seen;
  } finally {
    c.close();
  }
}

function noFailures(r: H2loadResult, what: string): void {
  assert.ok(r.total > 100, `${what}: ${summary(r)}`);
  assert.equal(r.failed + r.errored + r.timeout, 0, `${what}: ${summary(r)}\n${r.output}`);
  assert.equal(r.statuses[0], r.total, `${what}: ${summary(r)}`);
}

describe('deploys under HTTP/2 load', () => {
  it('blue-green, rolling and canary fail no h2 or HTTPS/1.1 request; control: a kill is seen', async (t) => {
    const svc = await Service.create(t, {
      instances: 2,
      strategy: canaryStrategy(['setWeight: 50', 'pause: 2s']),
      extra: ['tls: { cert: web.crt, key: web.key }'],
    });
    const ca = makeCa(svc.dir);
    installWebCert(ca, svc.dir, 'C0FFEE');
    await svc.start();
    await svc.deployApi('1.0.0');
    const port = Number(new URL(svc.url).port);
    const base = `https://127.0.0.1:${port}`;

    // 25 s of load from three clients, started together; the deploys must end inside it.
    const seconds = 25;
    const started = Date.now();
    const quick = h2load(t, `${base}/`, { seconds, clients: 2, streams: 4, rps: 40 });
    const held = h2load(t, `${base}/slow?ms=300`, { seconds, clients: 2, streams: 8, rps: 15 });
    const https1 = httpsLoad(port, ca.pem, { rate: 40, servername: 'web.test', durationMs: seconds * 1000 });
    t.after(() => https1.stop());
    await waitFor(() => https1.live.sent > 40, { what: 'HTTPS/1.1 load before the deploys' });

    for (const [strategy, version] of [
      ['blue-green', '1.0.1'],
      ['rolling', '1.0.2'],
    ] as const) {
      const run = await svc.deploy(version, ['--strategy', strategy], 30_000);
      assert.equal(run.done?.result, 'succeeded', `${strategy}: ${run.stdout}\n${run.stderr}`);
    }
    // The canary: at 50% for 2 s, a client with the sticky cookie stays on its side.
    const canary = svc.deploy('1.0.3', ['--strategy', 'canary'], 30_000);
    await waitFor(async () => (await svc.status()).deployment?.canary?.percent === 50, {
      timeout: 15_000,
      what: 'the canary at 50%',
    });
    const sides = await stickyVersions(port, ca.pem, 12);
    assert.equal(new Set(sides).size, 1, `one side for one cookie: ${sides.join(' ')}`);
    const run = await canary;
    assert.equal(run.done?.result, 'succeeded', `canary: ${run.stdout}\n${run.stderr}`);
    const deploysEnded = Date.now();
    assert.ok(
      deploysEnded < started + seconds * 1000 - 1000,
      `the deploys took ${deploysEnded - started} ms`,
    );

    const [q, h] = await Promise.all([quick, held]);
    const s = await https1.stop();
    t.diagnostic(
      `h2 quick: ${summary(q)}; h2 held 300 ms: ${summary(h)}; HTTPS/1.1: ${s.sent} sent, ${s.failed} failed`,
    );
    noFailures(q, 'h2 quick');
    noFailures(h, 'h2 held');
    assert.equal(s.failed, 0, JSON.stringify(s.failures));
    assert.deepEqual([...new Set(await h2versions(port, ca.pem, 4))], ['1.0.3']);

    // Control: h2load sees the failures when every instance is killed under it.
    const control = h2load(t, `${base}/`, { seconds: 4, clients: 2, streams: 4, rps: 40 });
    const answered = await served(svc.adminPort);
    await waitFor(async () => (await served(svc.adminPort)) > answered + 40, {
      what: 'the control load under way',
    });
    for (const pid of svc.pids('1.0.3')) process.kill(pid, 'SIGKILL');
    const c = await control;
    t.diagnostic(`control: ${summary(c)}`);
    assert.ok(c.statuses[3] + c.failed + c.errored > 0, `control: ${summary(c)}`);
  });
});
