// `baton load` and `baton deploy --verify-load` against an HTTPS listener whose certificate a
// private CA signed (#17): --ca <file> trusts that CA, --insecure verifies nothing (and says so
// on stderr), and without either every request fails on the certificate (the control). A CA
// file that is missing, not PEM, or given with --insecure is a usage error (exit 2) naming it.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import type { LoadResult } from '../src/load/runner.js';
import { Service, type DeployRun } from './helpers/app-daemon.js';
import { installWebCert, makeCa } from './helpers/certs.js';
import { runBaton, startDaemon, targetsConfig, tempDir, writeFile } from './helpers/cli.js';
import { startBackend } from './helpers/index.js';

function resultOf(stdout: string): LoadResult {
  return JSON.parse(stdout) as LoadResult;
}

/** The {"kind":"load"} line `deploy --verify-load --json` prints. */
function verifyLoadOf(run: DeployRun): LoadResult {
  const line = run.stdout.split('\n').find((l) => l.startsWith('{"kind":"load"'));
  assert.ok(line, `a load summary line in:\n${run.stdout}\n${run.stderr}`);
  return (JSON.parse(line) as { result: LoadResult }).result;
}

describe('baton load against HTTPS with a private CA', () => {
  it('--ca trusts it, --insecure skips the check with a warning; neither: every request fails', async (t) => {
    const dir = tempDir(t);
    const ca = makeCa(dir, 'Private Test CA');
    installWebCert(ca, dir, 'E1E1E1');
    const backend = await startBackend(t, 'app');
    const file = await targetsConfig(dir, backend.port, ['tls: { cert: web.crt, key: web.key }']);
    const d = await startDaemon(t, file);
    const url = `https://127.0.0.1:${d.port}/`;
    const load = (...flags: string[]): ReturnType<typeof runBaton> =>
      runBaton(t, ['load', url, '--rate', '40', '--duration', '1s', '--json', ...flags]);

    const trusted = await load('--ca', ca.certFile);
    assert.equal(trusted.code, 0, trusted.stderr);
    const ok = resultOf(trusted.stdout);
    assert.ok(ok.ok >= 20 && ok.failed === 0, JSON.stringify(ok.failures));
    assert.doesNotMatch(trusted.stderr, /warning/);

    // Control: the system's CAs alone do not know the private one.
    const untrusted = await load();
    assert.equal(untrusted.code, 12, untrusted.stderr);
    const bad = resultOf(untrusted.stdout);
    assert.equal(bad.ok, 0);
    assert.ok(bad.failed >= 20);
    assert.match(bad.examples[0]!.text, /certificate/i);

    const insecure = await load('--insecure');
    assert.equal(insecure.code, 0, insecure.stderr);
    assert.equal(resultOf(insecure.stdout).failed, 0);
    assert.match(insecure.stderr, /warning: --insecure: the server's certificate is not verified/);

    // Another CA than the one that signed it: refused as without --ca.
    const other = makeCa(mkdirSync(path.join(dir, 'other'), { recursive: true })!, 'Other CA');
    const wrong = await load('--ca', other.certFile);
    assert.equal(wrong.code, 12);
    assert.equal(resultOf(wrong.stdout).ok, 0);

    // Usage errors, before any request.
    const missing = await load('--ca', path.join(dir, 'nope.pem'));
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /cannot read --ca .*nope\.pem: no such file\. Give the PEM file of the CA/);
    const notPem = await load('--ca', writeFile(dir, 'ca.der', 'not a certificate'));
    assert.equal(notPem.code, 2);
    assert.match(notPem.stderr, /--ca .*ca\.der is not a PEM certificate/);
    const asDir = await load('--ca', dir);
    assert.equal(asDir.code, 2);
    assert.match(asDir.stderr, /cannot read --ca .*: a directory, not a file/);
    const both = await load('--ca', ca.certFile, '--insecure');
    assert.equal(both.code, 2);
    assert.match(both.stderr, /--ca and --insecure together/);
  });
});

describe('baton deploy --verify-load against HTTPS with a private CA', () => {
  it('--ca: a clean deploy passes; without it the load fails the verdict; usage errors deploy nothing', async (t) => {
    const svc = await Service.create(t, {
      instances: 2,
      readyTimeout: '15s',
      extra: ['tls:', '  cert: web.crt', '  key: web.key'],
    });
    const ca = makeCa(tempDir(t));
    installWebCert(ca, svc.dir, 'E2E2E2');
    await svc.start();
    await svc.deployApi('1.0.0');

    const good = await svc.deploy('1.0.1', ['--verify-load', '50', '--ca', ca.certFile]);
    assert.equal(good.code, 0, good.stdout + good.stderr);
    const clean = verifyLoadOf(good);
    assert.equal(clean.failed, 0, JSON.stringify(clean.examples));
    assert.ok(clean.ok > 10, `load ran during the deploy (${clean.ok})`);

    // Control: the same deploy's load without the CA fails every request, so the verdict.
    const blind = await svc.deploy('1.0.2', ['--verify-load', '50']);
    assert.equal(blind.code, 10, blind.stdout + blind.stderr);
    assert.equal(verifyLoadOf(blind).ok, 0);

    const missing = await svc.deploy('1.0.3', [
      '--verify-load',
      '50',
      '--ca',
      path.join(svc.dir, 'nope.pem'),
    ]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /cannot read --ca .*nope\.pem: no such file/);
    const alone = await svc.deploy('1.0.3', ['--insecure']);
    assert.equal(alone.code, 2);
    assert.match(alone.stderr, /--insecure is for --verify-load's requests/);
    assert.equal((await svc.status()).live?.version, '1.0.2', 'nothing deployed by the refused runs');
  });
});
