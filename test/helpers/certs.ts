// Certificates made by the tests with openssl: a small CA, and leaf certificates it signs for the
// names a test asks for (127.0.0.1 among them, so a client may connect by IP and still verify),
// each with a serial the test picks to tell them apart. PEM files in a folder of the test's.
import { execFileSync } from 'node:child_process';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';

export interface TestCa {
  readonly certFile: string;
  readonly keyFile: string;
  /** The CA certificate (PEM), for clients' `ca:`. */
  readonly pem: string;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
const RSA = ['-newkey', 'rsa:2048', '-nodes'];

export function makeCa(dir: string, name = 'Baton Test CA'): TestCa {
  const certFile = path.join(dir, 'ca.crt');
  const keyFile = path.join(dir, 'ca.key');
  openssl(
    ['req', '-x509', ...EC, '-keyout', keyFile, '-out', certFile, '-days', '30', '-subj', `/CN=${name}`],
    dir,
  );
  return { certFile, keyFile, pem: readFileSync(certFile, 'utf8') };
}

export interface Leaf {
  /** The leaf then the CA (a chain), PEM. */
  readonly cert: string;
  readonly key: string;
  /** As X509Certificate.serialNumber gives it: upper-case hex. */
  readonly serial: string;
}

/**
 * A leaf for `names` (DNS names; 127.0.0.1 is added as an IP) signed by `ca`, with `serial`
 * (hex); `days` -1 makes one that expired yesterday; `key` its key type (the CA's stays EC).
 * Returned as PEM text, not written.
 */
export function issue(
  ca: TestCa,
  dir: string,
  names: string[],
  serial: string,
  days = 30,
  key: 'ec' | 'rsa' = 'ec',
): Leaf {
  const base = path.join(dir, `leaf-${serial}`);
  const newKey = key === 'rsa' ? RSA : EC;
  openssl(
    ['req', ...newKey, '-keyout', `${base}.key`, '-out', `${base}.csr`, '-subj', `/CN=${names[0]}`],
    dir,
  );
  writeFileSync(
    `${base}.ext`,
    `subjectAltName=${[...names.map((n) => `DNS:${n}`), 'IP:127.0.0.1'].join(',')}\n`,
  );
  openssl(
    [
      'x509',
      '-req',
      '-in',
      `${base}.csr`,
      '-CA',
      ca.certFile,
      '-CAkey',
      ca.keyFile,
      '-set_serial',
      `0x${serial}`,
      '-days',
      String(days),
      '-extfile',
      `${base}.ext`,
      '-out',
      `${base}.crt`,
    ],
    dir,
  );
  return {
    cert: readFileSync(`${base}.crt`, 'utf8') + ca.pem,
    key: readFileSync(`${base}.key`, 'utf8'),
    serial: serial.toUpperCase(),
  };
}

/** Writes `text` to `file` atomically: a temp file in the same folder, then a rename. */
export function replaceFile(file: string, text: string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  // Owner-only, as a private key should be (Baton warns of one others can read).
  writeFileSync(tmp, text, { mode: 0o600 });
  renameSync(tmp, file);
}

/** Writes a leaf's cert and key where tls: points. */
export function installLeaf(leaf: Leaf, certFile: string, keyFile: string): void {
  replaceFile(keyFile, leaf.key);
  replaceFile(certFile, leaf.cert);
}

/**
 * A TLS handshake with 127.0.0.1:port: the serial of the certificate the server showed, and the
 * protocol; rejects with the handshake's error (code ERR_SSL_...). `servername` is the SNI name.
 */
export function handshake(
  port: number,
  ca: string,
  options: tls.ConnectionOptions = {},
): Promise<{ serial: string; protocol: string | null; authorized: boolean }> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, ca, ...options }, () => {
      const cert = s.getPeerCertificate();
      resolve({ serial: cert.serialNumber, protocol: s.getProtocol(), authorized: s.authorized });
      s.end();
    });
    s.setTimeout(5000, () => s.destroy(new Error('handshake timed out')));
    s.on('error', reject);
  });
}

/** A leaf for `names` signed by `ca`, installed as dir/web.crt and dir/web.key (tls: web.crt). */
export function installWebCert(
  ca: TestCa,
  dir: string,
  serial: string,
  names: string[] = ['web.test'],
): void {
  installLeaf(issue(ca, dir, names, serial), path.join(dir, 'web.crt'), path.join(dir, 'web.key'));
}
