// tls.acme without an ACME server: the config's shape and the rules that go with it (http-01
// needs redirectHttp, tls-alpn-01 one proxy process, no wildcard, not with cert/key), the
// renewal rule (a third of the lifetime left), the placeholder, and what stateDir/acme/ holds.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { renewalReason, renewalTime } from '../src/edge/builtin/acme/manager.js';
import { isPlaceholder } from '../src/edge/builtin/acme/placeholder.js';
import { acmeFiles, ensureServable, readStored, storeIssued } from '../src/edge/builtin/acme/store.js';
import { issue, makeCa } from './helpers/certs.js';
import { tempDir } from './helpers/cli.js';
import { config, refusedConfig } from './helpers/index.js';

const base = 'service: web\nlisten: 127.0.0.1:8443\ntargets: []\n';
const acme = (extra = ''): string =>
  `${base}tls:\n  acme: { email: ops@example.com, domains: [example.com, www.example.com], directory: https://acme.example/dir${extra} }\n`;

describe('tls.acme in baton.yaml', () => {
  it('takes email, domains, directory and the challenge; http-01 (the default) needs redirectHttp', () => {
    const c = config(`${acme()}redirectHttp: 127.0.0.1:8080\n`);
    assert.deepEqual(c.tls?.acme, {
      email: 'ops@example.com',
      domains: ['example.com', 'www.example.com'],
      directory: 'https://acme.example/dir',
      challenge: 'http-01',
    });
    assert.match(
      refusedConfig(acme()),
      /the http-01 challenge is answered on redirectHttp: add redirectHttp/,
    );
    assert.equal(config(acme(', challenge: tls-alpn-01')).tls?.acme?.challenge, 'tls-alpn-01');
    assert.match(
      refusedConfig(`${acme(', challenge: tls-alpn-01')}proxy: { workers: 2 }\n`),
      /tls-alpn-01 challenge is answered by the data plane alone/,
    );
  });

  it('refuses a wildcard, a bad name, an http directory, a missing email, and acme with cert/key', () => {
    const r = (domains: string, dir = 'https://a.example/d', email = 'a@b.c'): string =>
      refusedConfig(
        `${base}tls:\n  acme: { email: ${email}, domains: ${domains}, directory: ${dir}, challenge: tls-alpn-01 }\n`,
      );
    assert.match(r('["*.example.com"]'), /a wildcard needs the DNS-01 challenge/);
    assert.match(r('[localhost]'), /a DNS name with at least one dot/);
    assert.match(r('[]'), /domains/);
    assert.match(r('[a.example]', 'http://a.example/d'), /directory URL, https:/);
    assert.match(r('[a.example]', 'https://a.example/d', 'nobody'), /an e-mail address/);
    assert.match(
      refusedConfig(
        `${base}tls:\n  cert: a.crt\n  key: a.key\n  acme: { email: a@b.c, domains: [a.example], directory: https://x/d, challenge: tls-alpn-01 }\n`,
      ),
      /acme replaces cert, key and certificates/,
    );
  });
});

describe('ACME renewal and storage', () => {
  const cfg = {
    email: 'a@b.c',
    domains: ['a.example', 'b.example'],
    directory: 'https://ca/dir',
    challenge: 'http-01' as const,
  };
  const stored = (over: object = {}) => ({
    placeholder: false,
    names: ['a.example', 'b.example'],
    notBefore: new Date('2026-01-01T00:00:00Z'),
    notAfter: new Date('2026-04-01T00:00:00Z'), // 90 days
    serial: '01',
    directory: 'https://ca/dir',
    ...over,
  });

  it('renews when a third of the lifetime is left, the names or the server changed, or none was issued', () => {
    assert.equal(renewalTime(stored(), 1 / 3).toISOString(), '2026-03-02T00:00:00.000Z');
    assert.equal(renewalReason(stored(), cfg, 1 / 3, Date.parse('2026-03-01T23:00:00Z')), null);
    assert.match(renewalReason(stored(), cfg, 1 / 3, Date.parse('2026-03-02T01:00:00Z'))!, /less than 33%/);
    assert.match(renewalReason(null, cfg, 1 / 3)!, /no certificate issued yet/);
    assert.match(renewalReason(stored({ placeholder: true }), cfg, 1 / 3)!, /no certificate issued yet/);
    const early = Date.parse('2026-01-02T00:00:00Z');
    assert.match(renewalReason(stored({ names: ['a.example'] }), cfg, 1 / 3, early)!, /lacks: b\.example/);
    assert.match(
      renewalReason(stored({ directory: 'https://other/dir' }), cfg, 1 / 3, early)!,
      /another ACME server/,
    );
  });

  it('a placeholder first (key 0600), then an issued pair read back with its directory', (t) => {
    const files = acmeFiles(tempDir(t));
    assert.equal(path.basename(files.dir), 'acme');
    assert.equal(readStored(files), null);
    assert.equal(ensureServable(files, cfg), true);
    assert.equal(ensureServable(files, cfg), false, 'written once');
    assert.equal(ensureServable(files, { ...cfg, domains: ['c.example'] }), true, 'other names: made again');
    assert.deepEqual(readStored(files)?.names, ['c.example']);
    assert.equal(ensureServable(files, cfg), true);
    const p = readStored(files)!;
    assert.equal(p.placeholder, true);
    assert.deepEqual(p.names, ['a.example', 'b.example']);
    assert.equal(statSync(files.key).mode & 0o777, 0o600);
    assert.ok(isPlaceholder(readFileSync(files.cert, 'utf8')));

    // An issued pair: stored (the key first), read back with the directory it came from.
    const dir = tempDir(t);
    const leaf = issue(makeCa(dir), dir, ['a.example', 'b.example'], 'C0FFEE');
    const got = storeIssued(files, leaf.cert, leaf.key, cfg.directory);
    assert.equal(got.placeholder, false);
    assert.equal(got.serial, 'C0FFEE');
    assert.equal(got.directory, cfg.directory);
    assert.equal(statSync(files.key).mode & 0o777, 0o600);
    assert.equal(ensureServable(files, cfg), false, 'an issued pair is kept');
    assert.throws(() => storeIssued(files, 'oops', leaf.key, cfg.directory));
    const stranger = issue(makeCa(dir), dir, ['a.example'], 'BADBAD');
    assert.throws(() => storeIssued(files, leaf.cert, stranger.key, cfg.directory), /does not match its key/);
    assert.equal(readStored(files)?.serial, 'C0FFEE', 'a failed store leaves the pair as it was');

    writeFileSync(files.cert, 'oops');
    assert.equal(readStored(files), null, 'a broken pair does not read');
    assert.equal(ensureServable(files, cfg), true, 'and is replaced by a placeholder');
    const x = new X509Certificate(readFileSync(files.cert, 'utf8'));
    assert.ok(x.subject.includes('Baton placeholder (ACME pending)'));
  });
});
