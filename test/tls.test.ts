// HTTPS at the built-in proxy (#17): a real `baton up` with tls: in front of a fixed target,
// certificates made here (a CA and leaves signed by it, so clients verify with `ca:`). What a
// client sees: the certificate by SNI, TLS 1.2 at least, HSTS, X-Forwarded-Proto https at the
// app, redirectHttp's 308 to https://, curl as an independent client; SIGHUP re-reads the
// files. And the start-up checks `baton validate` and `baton up` share: a missing file, a key
// that is not the certificate's, a file that is not PEM (exit 2, naming the file), an expired
// certificate (a warning; served).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { Agent, request } from 'undici';
import {
  CertificateSet,
  certificateWarnings,
  loadCertificate,
  tlsSettings,
  type LoadedCertificate,
} from '../src/edge/builtin/certificates.js';
import { handshake, installLeaf, issue, makeCa } from './helpers/certs.js';
import { freePort, runBaton, startDaemon, tempDir, writeFile } from './helpers/cli.js';
import { startBackend, waitFor } from './helpers/index.js';

const run = promisify(execFile);

/** Raw bytes over TLS (SNI a.test); everything the server sent until it closed. */
function tlsExchange(port: number, ca: string, data: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = '';
    const s = tls.connect({ host: '127.0.0.1', port, ca, servername: 'a.test' }, () => s.write(data));
    s.setTimeout(5000, () => s.destroy(new Error(`no end of answer: ${got}`)));
    s.on('data', (c: Buffer) => (got += c.toString('latin1')));
    s.on('end', () => resolve(got));
    s.on('error', reject);
  });
}

describe('HTTPS at the built-in proxy, with baton up', () => {
  it('serves HTTPS: SNI, TLS 1.2+, HSTS, X-Forwarded-Proto, redirectHttp, curl, SIGHUP', async (t) => {
    const dir = tempDir(t);
    const ca = makeCa(dir);
    const a = issue(ca, dir, ['a.test', '*.a.test'], 'A1A1A1');
    const b = issue(ca, dir, ['b.test'], 'B2B2B2');
    installLeaf(a, path.join(dir, 'a.crt'), path.join(dir, 'a.key'));
    installLeaf(b, path.join(dir, 'b.crt'), path.join(dir, 'b.key'));
    const backend = await startBackend(t, 'app');
    const redirectPort = await freePort();
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
        'tls:',
        '  cert: a.crt',
        '  key: a.key',
        '  certificates:',
        '    - { cert: b.crt, key: b.key }',
        'hsts: { maxAge: 1y, includeSubDomains: true }',
        `redirectHttp: 127.0.0.1:${redirectPort}`,
        'proxy: { clientHeaderTimeout: 1s }',
        '',
      ].join('\n'),
    );
    const d = await startDaemon(t, file);
    const agent = new Agent({ connect: { ca: ca.pem, servername: 'a.test' } });
    t.after(() => agent.close());
    const url = `https://127.0.0.1:${d.port}`;
    // Where clients connect, as the admin API tells the CLI (deploy --verify-load loads it).
    const health = await request(`http://127.0.0.1:${adminPort}/v1/health`, { reset: true });
    assert.equal(((await health.body.json()) as { url: string }).url, `${url}/`);

    // An HTTPS GET, verified against the CA; the app sees https.
    const res = await request(`${url}/hello`, { dispatcher: agent, headers: { host: 'a.test' } });
    assert.equal(res.statusCode, 200);
    assert.equal(await res.body.text(), 'app');
    assert.equal(res.headers['strict-transport-security'], 'max-age=31536000; includeSubDomains');
    assert.equal(backend.seen.at(-1)?.headers['x-forwarded-proto'], 'https');
    // The proxy's own answers carry HSTS too.
    const own = await tlsExchange(d.port, ca.pem, 'GET / HTTP/1.1\r\nHost: a.test/x\r\n\r\n');
    assert.match(own, /^HTTP\/1\.1 400 /);
    assert.match(own, /\r\nstrict-transport-security: max-age=31536000; includeSubDomains\r\n/i);

    // SNI: each name gets its own certificate; a wildcard covers one label; no name (or an
    // unknown one) gets the first, the default.
    assert.equal((await handshake(d.port, ca.pem, { servername: 'a.test' })).serial, 'A1A1A1');
    assert.equal((await handshake(d.port, ca.pem, { servername: 'b.test' })).serial, 'B2B2B2');
    assert.equal((await handshake(d.port, ca.pem, { servername: 'www.a.test' })).serial, 'A1A1A1');
    const unknown = { servername: 'other.test', rejectUnauthorized: false };
    assert.equal((await handshake(d.port, ca.pem, unknown)).serial, 'A1A1A1');
    const byIp = await handshake(d.port, ca.pem);
    assert.equal(byIp.serial, 'A1A1A1');
    assert.ok(byIp.authorized, 'verified by IP (127.0.0.1 is in the certificate)');
    assert.equal(byIp.protocol, 'TLSv1.3');
    assert.equal(
      (await handshake(d.port, ca.pem, { servername: 'a.test', maxVersion: 'TLSv1.2' })).protocol,
      'TLSv1.2',
    );
    // TLS 1.1 is refused by the server (the client offers it: security level 0 lets it), and
    // the refusal is the server's protocol_version alert, not the client's own refusal.
    await assert.rejects(
      handshake(d.port, ca.pem, {
        minVersion: 'TLSv1',
        maxVersion: 'TLSv1.1',
        ciphers: 'DEFAULT@SECLEVEL=0',
      }),
      (err: NodeJS.ErrnoException) => {
        assert.match(String(err.code), /ALERT_PROTOCOL_VERSION/, String(err));
        return true;
      },
    );

    // Slow clients: a TCP connection that never starts its handshake is closed, and a request
    // head that never ends gets its 408, both after proxy.clientHeaderTimeout.
    const idle = net.connect(d.port, '127.0.0.1');
    const closed = new Promise<void>((resolve) => idle.on('close', () => resolve()));
    idle.on('error', () => undefined);
    await closed;
    const slow = await tlsExchange(d.port, ca.pem, 'GET / HTTP/1.1\r\nHost: a.test\r\n');
    assert.match(slow, /^HTTP\/1\.1 408 /);

    // No renegotiation (TLS 1.2): the server refuses a client's request for one.
    const renegotiated = await new Promise<string>((resolve) => {
      const done = (what: string): void => {
        c.destroy();
        resolve(what);
      };
      const c = tls.connect(
        { host: '127.0.0.1', port: d.port, ca: ca.pem, servername: 'a.test', maxVersion: 'TLSv1.2' },
        () => {
          c.renegotiate({}, (err) => done(err ? err.message : 'renegotiated'));
          c.write('GET / HTTP/1.1\r\nHost: a.test\r\n\r\n');
        },
      );
      c.on('error', (err: Error) => done(err.message));
      c.setTimeout(5000, () => done('no answer'));
    });
    assert.match(renegotiated, /no renegotiation/);

    // curl, an independent client, with the CA and the name resolved to the proxy.
    const curl = await run('curl', [
      '-sS',
      '--cacert',
      ca.certFile,
      '--resolve',
      `b.test:${d.port}:127.0.0.1`,
      '-D',
      '-',
      `https://b.test:${d.port}/via-curl`,
    ]);
    // curl offers h2 first, and gets it (tls.http2 is on by default; h2.test.ts goes further).
    assert.match(curl.stdout, /^HTTP\/2 200/);
    assert.match(curl.stdout, /strict-transport-security: max-age=31536000; includeSubDomains/i);
    assert.match(curl.stdout, /\r\n\r\napp$/);
    assert.equal(backend.seen.at(-1)?.url, '/via-curl');

    // redirectHttp: a 308 to the same host and path on https://, with the HTTPS port (not 443).
    const http = `http://127.0.0.1:${redirectPort}`;
    const moved = await request(`${http}/a/b?c=1`, { headers: { host: 'a.test:8080' }, reset: true });
    await moved.body.text();
    assert.equal(moved.statusCode, 308);
    assert.equal(moved.headers.location, `https://a.test:${d.port}/a/b?c=1`);
    assert.equal(moved.headers['strict-transport-security'], undefined, 'no HSTS over plain HTTP');
    // A name no certificate has (::1 is not in them): refused, no redirect (tls-names.test.ts).
    const v6 = await request(`${http}/`, { headers: { host: '[::1]:80' }, reset: true });
    await v6.body.text();
    assert.equal(v6.statusCode, 421);
    assert.equal(v6.headers.location, undefined);
    const badHost = await request(`${http}/`, { headers: { host: 'a.test/evil' }, reset: true });
    await badHost.body.text();
    assert.equal(badHost.statusCode, 400);
    // The ACME HTTP-01 hook: no challenge pending, a 404 (not a redirect).
    const acme = await request(`${http}/.well-known/acme-challenge/token123`, {
      headers: { host: 'a.test' },
      reset: true,
    });
    await acme.body.text();
    assert.equal(acme.statusCode, 404);

    // SIGHUP re-reads the files (an in-place write that fs.watch might not say much about).
    const a2 = issue(ca, dir, ['a.test'], 'A2A2A2');
    writeFileSync(path.join(dir, 'a.key'), a2.key);
    writeFileSync(path.join(dir, 'a.crt'), a2.cert);
    d.child.kill('SIGHUP');
    await waitFor(
      async () => (await handshake(d.port, ca.pem, { servername: 'a.test' })).serial === 'A2A2A2',
      {
        timeout: 10_000,
        what: 'the new certificate after SIGHUP',
      },
    );
    // Read at the signal (the watcher, later, finds the files as they were read: no second read).
    await waitFor(() => d.logs().some((l) => l.msg === 'certificates reloaded' && l.why === 'SIGHUP'), {
      what: 'the reload log line',
    });
    // Without SNI: the server's default context, replaced too.
    assert.equal((await handshake(d.port, ca.pem)).serial, 'A2A2A2');
    // The names of the other certificate did not move.
    assert.equal((await handshake(d.port, ca.pem, { servername: 'b.test' })).serial, 'B2B2B2');
  });
});

describe('tls: files checked at start-up (baton validate and baton up)', () => {
  it('refuses a missing file, a key of another certificate, a file that is not PEM; warns of an expired one', async (t) => {
    const dir = tempDir(t);
    const ca = makeCa(dir);
    const good = issue(ca, dir, ['a.test'], 'C1C1C1');
    const other = issue(ca, dir, ['a.test'], 'C2C2C2');
    const expired = issue(ca, dir, ['a.test'], 'C3C3C3', -1);
    writeFile(dir, 'good.crt', good.cert);
    writeFile(dir, 'good.key', good.key);
    writeFile(dir, 'other.key', other.key);
    writeFile(dir, 'expired.crt', expired.cert);
    writeFile(dir, 'expired.key', expired.key);
    writeFile(dir, 'garbage.crt', 'not a certificate\n');
    const config = (cert: string, key: string): string =>
      writeFile(
        dir,
        'baton.yaml',
        `service: web\nlisten: 127.0.0.1:0\nstateDir: state\ntargets:\n  - address: 127.0.0.1:9\ntls: { cert: ${cert}, key: ${key} }\n`,
      );

    config('missing.crt', 'good.key');
    const missing = await runBaton(t, ['validate', '-c', path.join(dir, 'baton.yaml')]);
    assert.equal(missing.code, 2, missing.stderr);
    assert.match(
      missing.stderr,
      new RegExp(
        `cannot read the certificate ${path.join(dir, 'missing.crt')} \\(tls\\.cert\\): no such file`,
      ),
    );
    const json = await runBaton(t, ['validate', '--json', '-c', path.join(dir, 'baton.yaml')]);
    assert.equal(json.code, 2);
    const answer = JSON.parse(json.stdout) as { ok: boolean; problems: { path: string; message: string }[] };
    assert.equal(answer.ok, false);
    assert.equal(answer.problems[0]?.path, 'tls.cert');

    config('good.crt', 'other.key');
    const up = await runBaton(t, ['up', '-c', path.join(dir, 'baton.yaml')]);
    assert.equal(up.code, 2, up.stderr + up.stdout);
    assert.match(
      up.stderr,
      new RegExp(
        `the private key ${path.join(dir, 'other.key')} \\(tls\\.key\\) does not match the certificate ${path.join(dir, 'good.crt')}`,
      ),
    );

    config('garbage.crt', 'good.key');
    const garbage = await runBaton(t, ['up', '-c', path.join(dir, 'baton.yaml')]);
    assert.equal(garbage.code, 2);
    assert.match(
      garbage.stderr,
      /garbage\.crt \(tls\.cert\) is not PEM: no -----BEGIN CERTIFICATE----- block/,
    );

    // A key others may read: a warning, with the command that fixes it.
    config('good.crt', 'good.key');
    chmodSync(path.join(dir, 'good.key'), 0o644);
    const open = await runBaton(t, ['validate', '-c', path.join(dir, 'baton.yaml')]);
    assert.equal(open.code, 0, open.stderr);
    assert.match(
      open.stderr,
      /warning: the private key .*good\.key \(tls\.key\) can be read by other users \(mode 0644\): chmod 600 /,
    );

    // Expired: a warning, and `baton up` serves it anyway.
    config('expired.crt', 'expired.key');
    const warned = await runBaton(t, ['validate', '-c', path.join(dir, 'baton.yaml')]);
    assert.equal(warned.code, 0, warned.stderr);
    assert.match(warned.stderr, /warning: the certificate .*expired\.crt \(tls\.cert\) expired on /);
    const d = await startDaemon(t, path.join(dir, 'baton.yaml'), { admin: false });
    assert.ok(d.logs().some((l) => /expired on/.test(String(l.msg))));
    const seen = await handshake(d.port, ca.pem, { rejectUnauthorized: false });
    assert.equal(seen.serial, 'C3C3C3');
    assert.equal(seen.authorized, false);

    // The schema: cert without key, redirectHttp without tls.
    writeFile(
      dir,
      'baton.yaml',
      'service: web\nlisten: 127.0.0.1:0\ntargets: []\ntls: { cert: good.crt }\nredirectHttp: 127.0.0.1:80\n',
    );
    const shape = await runBaton(t, ['validate', '-c', path.join(dir, 'baton.yaml')]);
    assert.equal(shape.code, 2);
    assert.match(shape.stderr, /cert and key go together/);
  });
});

describe('the certificate set', () => {
  it('picks by exact name, then a one-label wildcard, else the first', (t) => {
    const dir = tempDir(t);
    const ca = makeCa(dir);
    const load = (names: string[], serial: string): LoadedCertificate => {
      const leaf = issue(ca, dir, names, serial);
      const files = {
        at: 'tls',
        cert: writeFile(dir, `${serial}.crt`, leaf.cert),
        key: writeFile(dir, `${serial}.key`, leaf.key),
      };
      return loadCertificate(files, tlsSettings({ minVersion: 'TLSv1.2' }));
    };
    const set = new CertificateSet([load(['x.test'], 'D1D1D1'), load(['*.y.test', 'y.test'], 'D2D2D2')]);
    assert.equal(set.pick('y.test').serial, 'D2D2D2');
    assert.equal(set.pick('WWW.Y.TEST.').serial, 'D2D2D2');
    assert.equal(set.pick('a.b.y.test').serial, 'D1D1D1', 'a wildcard covers one label');
    assert.equal(set.pick('nothing').serial, 'D1D1D1');
    // Warned of: soon to expire (14 days), a key others can read (writeFile's 0644).
    const soon = issue(ca, dir, ['z.test'], 'D3D3D3', 3);
    const files = {
      at: 'tls',
      cert: writeFile(dir, 'soon.crt', soon.cert),
      key: writeFile(dir, 'soon.key', soon.key),
    };
    chmodSync(files.key, 0o644);
    const warnings = certificateWarnings(loadCertificate(files, tlsSettings({ minVersion: 'TLSv1.2' })));
    assert.equal(warnings.length, 2, warnings.join('\n'));
    assert.match(warnings[0]!, /soon\.crt \(tls\.cert\) expires on .*, in 3 day\(s\): replace the file/);
    assert.match(warnings[1]!, /soon\.key \(tls\.key\) can be read by other users \(mode 0644\)/);
    assert.deepEqual(set.all[0]!.names, ['x.test']);
    assert.equal(
      readFileSync(path.join(dir, 'D1D1D1.crt'), 'utf8').match(/BEGIN CERTIFICATE/g)?.length,
      2,
      'leaf + CA',
    );
  });
});
