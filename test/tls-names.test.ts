// The names HTTPS at the built-in proxy answers for (#17), through a real `baton up`:
// redirectHttp sends a client to https:// only for a Host a served certificate covers (DNS
// names, a one-label wildcard, IPs), refuses any other with a 421 and no Location (no open
// redirect to a name the request made up), and follows the certificates as they are reloaded;
// and SNI picks an RSA certificate beside an EC default (and the other way round), which an
// OpenSSL server holding one certificate per key type could get wrong.
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { request } from 'undici';
import { CertificateSet, loadCertificate, type TlsSettings } from '../src/edge/builtin/certificates.js';
import { ServedCertificates } from '../src/edge/builtin/certificate-reload.js';
import { silentLogger } from '../src/log.js';
import { handshake, installLeaf, issue, makeCa, type Leaf } from './helpers/certs.js';
import {
  freePort,
  startDaemon,
  targetsConfig,
  tempDir,
  writeFile,
  type DaemonProcess,
} from './helpers/cli.js';
import { startBackend, waitFor } from './helpers/index.js';

/** `baton up` with tls: (the leaves in order: the first is the default) in front of a backend. */
async function httpsProxy(
  t: TestContext,
  dir: string,
  leaves: readonly Leaf[],
  extra: string[] = [],
): Promise<DaemonProcess> {
  leaves.forEach((l, i) => installLeaf(l, path.join(dir, `${i}.crt`), path.join(dir, `${i}.key`)));
  const backend = await startBackend(t, 'app');
  const file = await targetsConfig(dir, backend.port, [
    'tls:',
    '  cert: 0.crt',
    '  key: 0.key',
    ...(leaves.length > 1
      ? [
          '  certificates:',
          ...leaves.slice(1).map((_, i) => `    - { cert: ${i + 1}.crt, key: ${i + 1}.key }`),
        ]
      : []),
    ...extra,
  ]);
  return startDaemon(t, file);
}

/** A plain-HTTP GET of `url` with `host`: the status and Location. */
async function get(url: string, host: string): Promise<{ status: number; location: string | undefined }> {
  const res = await request(url, { headers: { host }, reset: true });
  await res.body.text();
  const location = res.headers.location;
  return { status: res.statusCode, location: Array.isArray(location) ? location[0] : location };
}

describe('redirectHttp redirects only to the names the certificates cover', () => {
  it('308 for a covered Host (name, wildcard, IP); 421 without Location for any other; follows a reload', async (t) => {
    const dir = tempDir(t);
    const ca = makeCa(dir);
    const redirectPort = await freePort();
    const d = await httpsProxy(
      t,
      dir,
      [issue(ca, dir, ['a.test', '*.a.test'], 'A1A1A1')],
      [`redirectHttp: 127.0.0.1:${redirectPort}`],
    );
    const http = `http://127.0.0.1:${redirectPort}`;
    const https = (host: string, rest: string): string => `https://${host}:${d.port}${rest}`;

    assert.deepEqual(await get(`${http}/p?q=1`, 'a.test:8080'), {
      status: 308,
      location: https('a.test', '/p?q=1'),
    });
    assert.deepEqual(await get(`${http}/`, 'WWW.A.TEST'), {
      status: 308,
      location: https('WWW.A.TEST', '/'),
    });
    assert.deepEqual(await get(`${http}/`, '127.0.0.1'), { status: 308, location: https('127.0.0.1', '/') });

    // Not covered: no Location at all, whatever the path.
    for (const host of ['evil.test', 'x.www.a.test', 'a.test.evil.test', 'xa.test', '10.0.0.1', '[::1]:80']) {
      assert.deepEqual(await get(`${http}/login`, host), { status: 421, location: undefined }, host);
    }
    const refused = await request(`${http}/`, { headers: { host: 'evil.test' }, reset: true });
    assert.match(await refused.body.text(), /no certificate served here is for this Host/);
    // ACME HTTP-01 answers are for the names served too: a covered one reaches the challenge
    // table (none pending: 404), another is refused.
    assert.equal((await get(`${http}/.well-known/acme-challenge/tok`, 'a.test')).status, 404);
    assert.equal((await get(`${http}/.well-known/acme-challenge/tok`, 'evil.test')).status, 421);

    // Reloaded certificates: their names now, not the ones at start.
    installLeaf(issue(ca, dir, ['c.test'], 'C3C3C3'), path.join(dir, '0.crt'), path.join(dir, '0.key'));
    d.child.kill('SIGHUP');
    await waitFor(async () => (await handshake(d.port, ca.pem)).serial === 'C3C3C3', {
      timeout: 10_000,
      what: 'the reloaded certificate',
    });
    assert.deepEqual(await get(`${http}/`, 'c.test'), { status: 308, location: https('c.test', '/') });
    assert.deepEqual(await get(`${http}/`, 'a.test'), { status: 421, location: undefined });
  });

  it('with tls.acme, its domains are covered before a certificate has them', (t) => {
    const dir = tempDir(t);
    const ca = makeCa(dir);
    const leaf = issue(ca, dir, ['placeholder.test'], 'F1F1F1');
    const files = {
      at: 'tls',
      cert: writeFile(dir, 'p.crt', leaf.cert),
      key: writeFile(dir, 'p.key', leaf.key),
    };
    const settings: TlsSettings = { minVersion: 'TLSv1.2' };
    const set = new CertificateSet([loadCertificate(files, settings)]);
    const log = silentLogger();
    const served = new ServedCertificates([files], settings, set, log, ['shop.example.com']);
    assert.ok(served.covers('shop.example.com'));
    assert.ok(served.covers('SHOP.example.com.'));
    assert.ok(served.covers('placeholder.test'));
    assert.ok(!served.covers('www.shop.example.com'));
    assert.ok(!new ServedCertificates([files], settings, set, log).covers('shop.example.com'));
  });
});

describe('SNI with certificates of both key types', () => {
  for (const defaultKey of ['ec', 'rsa'] as const) {
    const other = defaultKey === 'ec' ? 'rsa' : 'ec';
    it(`serves the ${other.toUpperCase()} certificate by SNI beside an ${defaultKey.toUpperCase()} default`, async (t) => {
      const dir = tempDir(t);
      const ca = makeCa(dir);
      const d = await httpsProxy(t, dir, [
        issue(ca, dir, ['default.test'], 'D1D1D1', 30, defaultKey),
        issue(ca, dir, ['other.test'], 'D2D2D2', 30, other),
      ]);
      for (const maxVersion of ['TLSv1.3', 'TLSv1.2'] as const) {
        const byName = await handshake(d.port, ca.pem, { servername: 'other.test', maxVersion });
        assert.equal(byName.serial, 'D2D2D2', `other.test over ${maxVersion}`);
        assert.ok(byName.authorized);
        const byDefault = await handshake(d.port, ca.pem, { servername: 'default.test', maxVersion });
        assert.equal(byDefault.serial, 'D1D1D1', `default.test over ${maxVersion}`);
      }
      // No SNI: the default.
      assert.equal((await handshake(d.port, ca.pem)).serial, 'D1D1D1');
      // A client that can only check the other key type's signatures still gets that one.
      const sigalgs = other === 'rsa' ? 'rsa_pss_rsae_sha256:RSA+SHA256' : 'ECDSA+SHA256';
      const only = await handshake(d.port, ca.pem, { servername: 'other.test', sigalgs });
      assert.equal(only.serial, 'D2D2D2');
    });
  }
});
