// The HTTPS row of bench/proxy.ts: Baton's built-in proxy and nginx each terminating TLS with the
// same certificate (ECDSA P-256, made here with openssl) and the same single cipher suite
// (TLS 1.3, TLS_AES_128_GCM_SHA256), checked with a handshake to each before the runs. wrk keeps
// its connections open, so this measures HTTP/1.1 over TLS, handshakes amortised.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import tls from 'node:tls';

export const TLS_SUITE = 'TLS_AES_128_GCM_SHA256';

export interface BenchCert {
  readonly cert: string;
  readonly key: string;
}

/** A self-signed certificate for 127.0.0.1 in `dir` (wrk does not verify it). */
export function makeBenchCert(dir: string): BenchCert {
  const cert = path.join(dir, 'bench.crt');
  const key = path.join(dir, 'bench.key');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '2',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  return { cert, key };
}

/** baton.yaml lines: HTTPS on listen, TLS 1.3 only, the one suite. */
export function batonTlsLines(c: BenchCert): string[] {
  return ['tls:', `  cert: ${c.cert}`, `  key: ${c.key}`, '  minVersion: TLSv1.3', `  ciphers: ${TLS_SUITE}`];
}

/** nginx server-block lines for the same. */
export function nginxTlsLines(c: BenchCert): string {
  return `    ssl_certificate ${c.cert};
    ssl_certificate_key ${c.key};
    ssl_protocols TLSv1.3;
    ssl_conf_command Ciphersuites ${TLS_SUITE};
    ssl_session_cache shared:bench:1m;
`;
}

/** The protocol and suite a handshake with 127.0.0.1:port gets, e.g. "TLSv1.3 TLS_AES_128_GCM_SHA256". */
export function negotiated(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      resolve(`${s.getProtocol() ?? '?'} ${s.getCipher().name}`);
      s.end();
    });
    s.setTimeout(5000, () => s.destroy(new Error(`no TLS handshake with 127.0.0.1:${port}`)));
    s.on('error', reject);
  });
}
