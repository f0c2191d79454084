// --ca and --insecure: how `baton load` and `baton deploy --verify-load` trust an HTTPS listener
// whose certificate a private CA signed (--ca, besides the system's CAs) or that nothing can
// verify (--insecure, with a warning: anyone between the client and the server could answer).
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { BatonError, messageOf } from '../errors.js';
import type { LoadOptions } from '../load/runner.js';

export interface TrustFlags {
  ca?: string;
  insecure?: boolean;
}

/** What the load client's connections are told; throws BATON_E_USAGE for a CA it cannot use. */
export function trustOptions(f: TrustFlags): Pick<LoadOptions, 'ca' | 'rejectUnauthorized'> {
  if (f.ca !== undefined && f.insecure) {
    throw new BatonError(
      'BATON_E_USAGE',
      '--ca and --insecure together: --ca verifies the certificate against that CA, --insecure verifies nothing. Give one',
    );
  }
  if (f.insecure) {
    process.stderr.write(
      "baton: warning: --insecure: the server's certificate is not verified, so anyone between here and the server could answer; give --ca <file> to trust a private CA instead\n",
    );
    return { rejectUnauthorized: false };
  }
  if (f.ca === undefined) return {};
  return { ca: readCa(f.ca) };
}

function readCa(file: string): string {
  let pem: string;
  try {
    pem = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'no such file'
        : code === 'EACCES'
          ? 'permission denied'
          : code === 'EISDIR'
            ? 'a directory, not a file'
            : messageOf(err);
    throw new BatonError(
      'BATON_E_USAGE',
      `cannot read --ca ${file}: ${why}. Give the PEM file of the CA that signed the server's certificate`,
      { cause: err },
    );
  }
  const first = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(pem)?.[0];
  try {
    if (first === undefined) throw new Error('no -----BEGIN CERTIFICATE----- block');
    new X509Certificate(first);
  } catch (err) {
    throw new BatonError(
      'BATON_E_USAGE',
      `--ca ${file} is not a PEM certificate (${messageOf(err)}). Give the CA's certificate in PEM (a DER file converts with: openssl x509 -inform der -in FILE -out FILE.pem)`,
      { cause: err },
    );
  }
  return pem;
}
