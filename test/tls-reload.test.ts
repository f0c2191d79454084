// HTTPS with an app behind the data plane (#17): a blue-green deploy under HTTPS keep-alive load
// (`baton load`'s client, verifying against the test's CA) fails no request, WebSockets work
// over TLS, and the control case shows the same check counting failures; certificate files
// replaced under load (atomically, write + rename) reach new connections with no request
// failed, an invalid replacement is refused with a log line naming the file while the previous
// certificate serves on, and a SIGHUP of `baton up` reaches the data plane; `baton upgrade`
// hands over both listeners (HTTPS, and redirectHttp's as fd 5).
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { describe, it } from 'node:test';
import tls from 'node:tls';
import { request } from 'undici';
import { Service } from './helpers/app-daemon.js';
import { handshake, installWebCert, issue, makeCa, replaceFile, type TestCa } from './helpers/certs.js';
import { dataPlanePids, freePort, runBaton, tempDir } from './helpers/cli.js';
import { h2loop } from './helpers/h2load.js';
import { httpsLoad, more } from './helpers/https-load.js';
import { waitFor } from './helpers/index.js';

function writeCerts(svc: Service, ca: TestCa, serial: string): void {
  installWebCert(ca, svc.dir, serial);
}

/** A WebSocket over TLS to the example app: the text it echoes back. */
function websocketEcho(port: number, ca: string, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, ca, servername: 'web.test' }, () =>
      s.write(
        'GET /ws HTTP/1.1\r\nHost: web.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
          'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
      ),
    );
    let buf = Buffer.alloc(0);
    let upgraded = false;
    s.setTimeout(5000, () => s.destroy(new Error(`no echo; got: ${buf.toString('latin1')}`)));
    s.on('error', reject);
    s.on('data', (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      if (!upgraded) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.subarray(0, end).toString('latin1');
        if (!head.startsWith('HTTP/1.1 101')) return reject(new Error(head));
        upgraded = true;
        buf = buf.subarray(end + 4);
        const payload = Buffer.from(text);
        const mask = Buffer.from([1, 2, 3, 4]);
        const masked = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]!));
        s.write(Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, masked]));
      }
      if (buf.length >= 2 && buf.length >= 2 + (buf[1]! & 0x7f)) {
        resolve(buf.subarray(2, 2 + (buf[1]! & 0x7f)).toString());
        s.destroy();
      }
    });
  });
}

async function httpsService(
  t: Parameters<typeof Service.create>[0],
  ca: TestCa,
  extra: string[] = [],
): Promise<Service> {
  const svc = await Service.create(t, {
    instances: 2,
    readyTimeout: '15s',
    extra: ['tls:', '  cert: web.crt', '  key: web.key', ...extra],
  });
  writeCerts(svc, ca, 'E1E1E1');
  return svc;
}

describe('HTTPS with an app behind the data plane', () => {
  it('a blue-green deploy under HTTPS keep-alive load fails none; WebSocket over TLS; control: killed instances fail', async (t) => {
    const ca = makeCa(tempDir(t));
    const svc = await httpsService(t, ca);
    const d = await svc.start();
    await svc.deployApi('1.0.0');
    assert.equal(await websocketEcho(d.port, ca.pem, 'hello over tls'), '1.0.0: hello over tls');

    const load = httpsLoad(d.port, ca.pem, { rate: 150 });
    t.after(() => load.stop());
    await more(load.live, 100);
    const run = await svc.deploy('1.0.1', [], 60_000);
    assert.equal(run.done?.result, 'succeeded', `${run.stdout}\n${run.stderr}`);
    await more(load.live, 100);
    const r = await load.stop();
    t.diagnostic(`through the deploy: ${r.sent} sent / ${r.failed} failed`);
    assert.equal(r.failed, 0, `failed: ${JSON.stringify(r.failures)} ${r.samples.join('\n')}`);
    assert.equal(r.failures.refused, 0);
    assert.ok((r.versions['1.0.0'] ?? 0) > 0 && (r.versions['1.0.1'] ?? 0) > 0, JSON.stringify(r.versions));
    assert.ok(r.ok >= 200, `${r.ok} answers`);

    // Control: the same check, with the instances killed under it, counts the failures.
    const control = httpsLoad(d.port, ca.pem, { rate: 150 });
    t.after(() => control.stop());
    await more(control.live, 50);
    for (const pid of svc.pids()) process.kill(pid, 'SIGKILL');
    await waitFor(() => control.live.failed > 0, { timeout: 10_000, what: 'failures after the kill' });
    const c = await control.stop();
    assert.ok(c.failed > 0 && c.failures['5xx'] > 0, JSON.stringify(c.failures));
  });

  it('replaced certificate files reach new connections with none failed; an invalid one is refused; SIGHUP reaches the data plane', async (t) => {
    const ca = makeCa(tempDir(t));
    const svc = await httpsService(t, ca);
    const d = await svc.start();
    await svc.deployApi('1.0.0');
    const dpLog = path.join(svc.stateDir, 'logs', 'dataplane.log');
    const logged = (text: string): boolean => existsSync(dpLog) && readFileSync(dpLog, 'utf8').includes(text);
    const serial = async (): Promise<string> =>
      (await handshake(d.port, ca.pem, { servername: 'web.test' })).serial;
    assert.equal(await serial(), 'E1E1E1');

    // Keep-alive connections (they keep the certificate they have) and a new connection per
    // request (each handshake takes the certificate of the moment).
    const kept = httpsLoad(d.port, ca.pem, { rate: 100 });
    const fresh = httpsLoad(d.port, ca.pem, { rate: 30, newConnection: true });
    t.after(() => Promise.all([kept.stop(), fresh.stop()]));
    await more(fresh.live, 30);

    writeCerts(svc, ca, 'E2E2E2');
    await waitFor(async () => (await serial()) === 'E2E2E2', {
      timeout: 15_000,
      what: 'the new certificate',
    });
    await more(fresh.live, 30);

    // A key of another certificate: refused, the file named; the previous one serves on.
    const keyFile = path.join(svc.dir, 'web.key');
    replaceFile(keyFile, issue(ca, svc.dir, ['web.test'], 'E3E3E3').key);
    await waitFor(
      () => logged(`certificate reload refused: the private key ${keyFile} (tls.key) does not match`),
      {
        timeout: 15_000,
        what: 'the refusal in the data plane log',
      },
    );
    assert.equal(await serial(), 'E2E2E2');
    // Not PEM at all: refused too, naming the certificate file.
    const certFile = path.join(svc.dir, 'web.crt');
    replaceFile(certFile, 'oops\n');
    await waitFor(() => logged(`the certificate ${certFile} (tls.cert) is not PEM`), {
      timeout: 15_000,
      what: 'the second refusal',
    });
    assert.equal(await serial(), 'E2E2E2');
    await more(fresh.live, 30);

    // Put right, and read at a SIGHUP of `baton up` (passed to the data plane).
    writeCerts(svc, ca, 'E4E4E4');
    d.child.kill('SIGHUP');
    await waitFor(async () => (await serial()) === 'E4E4E4', {
      timeout: 15_000,
      what: 'the fixed certificate',
    });
    await waitFor(() => logged('"why":"SIGHUP of baton up"'), {
      what: 'the SIGHUP reload in the data plane log',
    });
    await more(fresh.live, 30);

    const [k, f] = await Promise.all([kept.stop(), fresh.stop()]);
    t.diagnostic(
      `through the reloads: keep-alive ${k.sent} sent / ${k.failed} failed; new connections ${f.sent} / ${f.failed}`,
    );
    for (const r of [k, f]) {
      assert.equal(r.failed, 0, `failed: ${JSON.stringify(r.failures)} ${r.samples.join('\n')}`);
      assert.equal(r.failures.refused, 0);
    }
    assert.ok(f.ok >= 120, `${f.ok} answers on new connections`);
  });

  it('baton upgrade hands over the HTTPS and the redirectHttp listeners: none fails, both answer', async (t) => {
    const ca = makeCa(tempDir(t));
    const redirectPort = await freePort();
    const svc = await httpsService(t, ca, [`redirectHttp: 127.0.0.1:${redirectPort}`, 'hsts: true']);
    const d = await svc.start();
    await svc.deployApi('1.0.0');
    const [first] = dataPlanePids(svc.file);
    const load = httpsLoad(d.port, ca.pem, { rate: 100 });
    // A new TLS connection per request too: some are in their handshake when the old process
    // stops accepting (it waits for them), and HTTP/2 streams on connections it ends by GOAWAY.
    const fresh = httpsLoad(d.port, ca.pem, { rate: 40, newConnection: true, servername: 'web.test' });
    t.after(() => Promise.all([load.stop(), fresh.stop()]));
    await more(load.live, 50);
    const h2 = h2loop(`https://127.0.0.1:${d.port}/`, ca.pem, 'web.test', { concurrency: 4, maxMs: 60_000 });
    t.after(() => h2.stop());
    await more(h2.live, 50);
    const up = await runBaton(t, ['upgrade', '-c', svc.file, '--json'], { timeout: 60_000 });
    assert.equal(up.code, 0, up.stderr);
    const to = (JSON.parse(up.stdout) as { to: { pid: number } }).to.pid;
    assert.notEqual(to, first);
    await waitFor(() => !dataPlanePids(svc.file).includes(first!), {
      timeout: 30_000,
      what: 'the old data plane to exit',
    });
    await more(load.live, 50);
    const r = await load.stop();
    assert.equal(r.failed, 0, `failed: ${JSON.stringify(r.failures)} ${r.samples.join('\n')}`);
    const f = await fresh.stop();
    assert.equal(
      f.failed,
      0,
      `new connections failed: ${JSON.stringify(f.failures)} ${f.samples.join('\n')}`,
    );
    const h = await h2.stop();
    t.diagnostic(
      `HTTPS/1.1 keep-alive ${r.sent}, new connections ${f.sent}; h2 ${h.sent} on ${h.sessions} connections, ${h.retried} refused unprocessed and sent again`,
    );
    assert.equal(h.failed, 0, h.failures.join('\n'));
    assert.ok(h.sessions >= 2, 'the h2 client moved to the new process after GOAWAY');

    const moved = await request(`http://127.0.0.1:${redirectPort}/x`, {
      headers: { host: 'web.test' },
      reset: true,
    });
    await moved.body.text();
    assert.equal(moved.statusCode, 308);
    assert.equal(moved.headers.location, `https://web.test:${d.port}/x`);
    const log = readFileSync(path.join(svc.stateDir, 'logs', 'dataplane.log'), 'utf8');
    assert.doesNotMatch(log, /EADDRINUSE|address is in use/);

    // redirectHttp taken out of the config: the next upgrade leaves its port free (the socket
    // handed over is closed, not kept bound by a process that no longer answers there).
    svc.configure({
      instances: 2,
      readyTimeout: '15s',
      extra: ['tls:', '  cert: web.crt', '  key: web.key'],
    });
    const again = await runBaton(t, ['upgrade', '-c', svc.file, '--json'], { timeout: 60_000 });
    assert.equal(again.code, 0, again.stderr);
    await waitFor(() => !dataPlanePids(svc.file).includes(to), {
      timeout: 30_000,
      what: 'the second one to exit',
    });
    const probe = net.createServer();
    await new Promise<void>((resolve, reject) => {
      probe.once('error', reject);
      probe.listen(redirectPort, '127.0.0.1', resolve);
    });
    await new Promise<void>((resolve) => probe.close(() => resolve()));
  });
});
