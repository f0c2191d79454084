// tls.acme end to end against Debian's pebble (test/helpers/pebble.ts), on loopback, with a real
// `baton up`: a self-signed placeholder serves at once, the certificate pebble issues (HTTP-01
// answered on redirectHttp) is served and verifies against pebble's root; short-lived (30s)
// certificates are renewed at 2/3 of their life under HTTPS load (keep-alive and a new
// connection per request) with no request failed, and the control case (the same load checking
// against another CA) counts failures; a domain pebble then refuses is logged naming it, and
// the previous certificate serves on. TLS-ALPN-01 (no redirectHttp) with `baton up` owning the
// proxy (targets, no app); a domain refused at the first issuance, or a failed validation,
// leaves the placeholder serving.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import tls from 'node:tls';
import { Service } from './helpers/app-daemon.js';
import { handshake } from './helpers/certs.js';
import { freePort, startDaemon, tempDir, writeFile } from './helpers/cli.js';
import { httpsLoad, more } from './helpers/https-load.js';
import { startBackend, waitFor } from './helpers/index.js';
import { pebbleMissing, startPebble } from './helpers/pebble.js';

const missing = pebbleMissing();
if (missing) console.log(`# skipping the ACME tests: ${missing}`);

/** The ACME tests' HTTPS load: by name (web.test), 8 connections, up to 90s. */
const load = (
  port: number,
  ca: string,
  o: { rate: number; newConnection?: boolean },
): ReturnType<typeof httpsLoad> =>
  httpsLoad(port, ca, { ...o, durationMs: 90_000, connections: 8, servername: 'web.test' });

/** The certificate served for `name`, verified against `root` (null while it does not verify). */
async function verified(port: number, root: string, name = 'web.test'): Promise<string | null> {
  try {
    const h = await handshake(port, root, { servername: name });
    return h.authorized ? h.serial : null;
  } catch {
    return null;
  }
}

/** 12 handshakes in a row (each process serving gets some) show the same verified certificate. */
async function everywhere(port: number, root: string, name = 'web.test'): Promise<string | null> {
  const first = await verified(port, root, name);
  for (let i = 1; i < 12 && first !== null; i++)
    if ((await verified(port, root, name)) !== first) return null;
  return first;
}

function logOf(file: string): () => string {
  return () => (existsSync(file) ? readFileSync(file, 'utf8') : '');
}

describe('ACME certificates (tls.acme) against pebble', { skip: missing ?? false }, () => {
  it('HTTP-01: placeholder, then issued and renewed under HTTPS load with none failed; a refused domain keeps the previous one', async (t) => {
    const port = await freePort();
    const redirectPort = await freePort();
    const pebble = await startPebble(t, { httpPort: redirectPort, tlsPort: port, validitySeconds: 30 });
    const svc = await Service.create(t, {
      edge: { lines: [`listen: 127.0.0.1:${port}`], url: `https://127.0.0.1:${port}` },
      extra: [
        'tls:',
        '  acme:',
        '    email: ops@web.test',
        '    domains: [web.test, www.web.test]',
        `    directory: ${pebble.directory}`,
        `redirectHttp: 127.0.0.1:${redirectPort}`,
        // Two processes serve the listener: the worker reads the data plane's new files.
        'proxy: { workers: 2 }',
      ],
    });
    await svc.start(pebble.env);
    const log = logOf(path.join(svc.stateDir, 'logs', 'dataplane.log'));
    await svc.deployApi('1.0.0');
    const root = await pebble.root();
    // Both processes serve it once it is issued (the worker reads the files the data plane wrote).
    const first = await waitFor(() => everywhere(port, root), {
      timeout: 30_000,
      what: 'an issued certificate',
    });
    assert.match(
      log(),
      /tls\.acme: no certificate for web\.test, www\.web\.test yet: a self-signed placeholder serves/,
    );
    assert.match(log(), /ACME: certificate issued for web\.test, www\.web\.test/);
    assert.equal(await everywhere(port, root, 'www.web.test'), first, 'the second name is in it');
    const acmeDir = path.join(svc.stateDir, 'acme');
    for (const f of ['key.pem', 'account.key']) {
      assert.equal(statSync(path.join(acmeDir, f)).mode & 0o777, 0o600, f);
    }

    // Renewals (at 2/3 of the 30s life) under keep-alive load and a new connection per request.
    const kept = load(port, root, { rate: 60 });
    const fresh = load(port, root, { rate: 20, newConnection: true });
    t.after(() => Promise.all([kept.stop(), fresh.stop()]));
    await more(fresh.live, 20);
    const second = await waitFor(
      async () => {
        const serial = await verified(port, root);
        return serial !== null && serial !== first ? serial : null;
      },
      { timeout: 40_000, what: 'a renewed certificate' },
    );
    assert.notEqual(second, first);
    assert.match(log(), /less than 33% of its lifetime is left/);
    // Both processes serve it (a handshake goes to either): 12 in a row show it.
    await waitFor(
      async () => {
        for (let i = 0; i < 12; i++) if ((await verified(port, root)) !== second) return false;
        return true;
      },
      { timeout: 10_000, what: 'every process serving the renewed certificate' },
    );
    await more(fresh.live, 20);
    const [k, f] = await Promise.all([kept.stop(), fresh.stop()]);
    for (const r of [k, f]) {
      assert.equal(r.failed, 0, `failed: ${JSON.stringify(r.failures)} ${r.samples.join('\n')}`);
      assert.equal(r.failures.refused, 0);
      assert.ok(r.ok > 40, `${r.ok} answers`);
    }
    t.diagnostic(
      `through the renewal: keep-alive ${k.ok} ok / ${k.failed} failed, new connection ${f.ok} ok / ${f.failed} failed`,
    );

    // Control: the same load checking against another CA (pebble's listener CA) fails.
    const control = load(port, pebble.listenerCa, { rate: 20, newConnection: true });
    t.after(() => control.stop());
    await waitFor(() => control.live.failed >= 5, { timeout: 15_000, what: 'control failures' });
    const c = await control.stop();
    assert.ok(c.failed > 0 && c.ok === 0, JSON.stringify(c.failures));

    // pebble now refuses web.test: the renewal fails, naming it and the server's words; the
    // certificate issued last serves on.
    await pebble.restart({
      httpPort: redirectPort,
      tlsPort: port,
      validitySeconds: 30,
      blocklist: ['web.test'],
    });
    const before = log().length;
    await waitFor(() => /ACME: could not get a certificate for web\.test from /.test(log().slice(before)), {
      timeout: 40_000,
      what: 'the refusal in the data plane log',
    });
    const line = log()
      .slice(before)
      .split('\n')
      .find((l) => l.includes('ACME: could not get a certificate'))!;
    assert.match(line, new RegExp(`from ${pebble.directory.replace(/[.]/g, '\\.')} \\(order\\)`));
    assert.match(line, /web\.test/);
    assert.match(line, /the previous certificate \(serial [0-9A-F]+, valid until [^)]+\) keeps serving/);
    assert.match(line, /next attempt in 60s/);
    t.diagnostic((JSON.parse(line) as { msg: string }).msg);
    const now = await handshake(port, root, { servername: 'web.test', rejectUnauthorized: false });
    assert.ok(now.serial !== first, 'an issued certificate serves, not the first one');
  });

  it('TLS-ALPN-01 with `baton up` owning the proxy: issued on the HTTPS listener; other clients unaffected', async (t) => {
    const port = await freePort();
    const pebble = await startPebble(t, { httpPort: 1, tlsPort: port });
    const dir = tempDir(t);
    const backend = await startBackend(t, 'app');
    const file = writeFile(
      dir,
      'baton.yaml',
      [
        'service: web',
        `listen: 127.0.0.1:${port}`,
        'stateDir: state',
        'targets:',
        `  - address: 127.0.0.1:${backend.port}`,
        'tls:',
        '  acme:',
        '    email: ops@web.test',
        '    domains: [web.test]',
        `    directory: ${pebble.directory}`,
        '    challenge: tls-alpn-01',
        '',
      ].join('\n'),
    );
    const d = await startDaemon(t, file, { env: pebble.env, admin: false });
    const root = await pebble.root();
    await waitFor(() => verified(port, root), { timeout: 30_000, what: 'an issued certificate' }).catch(
      (err: Error) => {
        throw new Error(`${err.message}\n${d.stdout()}`);
      },
    );
    await waitFor(
      () => d.logs().some((l) => String(l.msg).startsWith('ACME: certificate issued for web.test')),
      {
        what: 'the issuance in the log',
      },
    );
    // Ordinary clients get http/1.1; acme-tls/1 for a name not being proved is refused.
    const alpn = await new Promise<string | false | null>((resolve, reject) => {
      const s = tls.connect(
        { host: '127.0.0.1', port, ca: root, servername: 'web.test', ALPNProtocols: ['http/1.1'] },
        () => {
          resolve(s.alpnProtocol);
          s.end();
        },
      );
      s.on('error', reject);
    });
    assert.equal(alpn, 'http/1.1');
    await assert.rejects(
      handshake(port, root, { servername: 'web.test', ALPNProtocols: ['acme-tls/1'] }),
      /no application protocol|no_application_protocol/i,
    );

    // A restart serves the stored certificate, with no request to the ACME server.
    const serial = await verified(port, root);
    d.child.kill('SIGTERM');
    await d.exited;
    const again = await startDaemon(t, file, { env: pebble.env, admin: false });
    assert.equal(await verified(port, root), serial);
    await waitFor(
      () => again.logs().some((l) => String(l.msg).startsWith('ACME: serving the stored certificate')),
      {
        what: 'the first check',
      },
    );
    assert.ok(!again.logs().some((l) => String(l.msg).startsWith('ACME: asking')), again.stdout());
  });

  it('a domain refused at the first issuance: the error names it, the placeholder serves on', async (t) => {
    const port = await freePort();
    const redirectPort = await freePort();
    const pebble = await startPebble(t, {
      httpPort: redirectPort,
      tlsPort: port,
      blocklist: ['blocked.test'],
    });
    const dir = tempDir(t);
    const backend = await startBackend(t, 'app');
    const file = writeFile(
      dir,
      'baton.yaml',
      [
        'service: web',
        `listen: 127.0.0.1:${port}`,
        'stateDir: state',
        'targets:',
        `  - address: 127.0.0.1:${backend.port}`,
        'tls:',
        '  acme: { email: ops@web.test, domains: [blocked.test], directory: ' + pebble.directory + ' }',
        `redirectHttp: 127.0.0.1:${redirectPort}`,
        '',
      ].join('\n'),
    );
    const d = await startDaemon(t, file, { env: pebble.env, admin: false });
    const failure = await waitFor(
      () =>
        d.logs().find((l) => String(l.msg).startsWith('ACME: could not get a certificate for blocked.test')),
      { timeout: 30_000, what: 'the refusal' },
    );
    assert.match(String(failure.msg), /the self-signed placeholder keeps serving/);
    t.diagnostic(String(failure.msg));
    assert.equal(failure.domain, 'blocked.test');
    assert.ok(String(failure.error).length > 0);
    const served = await new Promise<string>((resolve, reject) => {
      const s = tls.connect(
        { host: '127.0.0.1', port, servername: 'blocked.test', rejectUnauthorized: false },
        () => {
          resolve(String(s.getPeerCertificate().subject.CN));
          s.end();
        },
      );
      s.on('error', reject);
    });
    assert.equal(served, 'Baton placeholder (ACME pending)');

    // A validation that fails (pebble's VA sent to a port nothing listens on): the domain and
    // the step named, with the VA's words.
    // New ports: another test file may have taken the old ones between the two daemons.
    d.child.kill('SIGTERM');
    await d.exited;
    const [port2, redirect2] = [await freePort(), await freePort()];
    await pebble.restart({ httpPort: await freePort(), tlsPort: port2 });
    writeFileSync(
      file,
      readFileSync(file, 'utf8')
        .replace('[blocked.test]', '[web.test]')
        .replace(`listen: 127.0.0.1:${port}`, `listen: 127.0.0.1:${port2}`)
        .replace(`redirectHttp: 127.0.0.1:${redirectPort}`, `redirectHttp: 127.0.0.1:${redirect2}`),
    );
    const again = await startDaemon(t, file, { env: pebble.env, admin: false });
    const invalid = await waitFor(
      () =>
        again.logs().find((l) => String(l.msg).startsWith('ACME: could not get a certificate for web.test')),
      { timeout: 30_000, what: 'the failed validation' },
    );
    t.diagnostic(String(invalid.msg));
    assert.match(
      String(invalid.msg),
      /from https:\/\/127\.0\.0\.1:\d+\/dir \(validation\): .+; the self-signed/,
    );
    assert.equal(invalid.domain, 'web.test');
    assert.equal(invalid.step, 'validation');
  });
});
