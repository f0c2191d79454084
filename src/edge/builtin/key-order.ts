// The server's own TLS context when its certificates have keys of more than one type (EC and
// RSA). Node 20 adds the certificate an SNI callback picks to the connection beside the
// default one instead of replacing it (nodejs/node#54235: SSL_use_certificate fills the slot
// of that key type, the default's slot stays), and OpenSSL then signs with whichever slot comes
// first in the server's order of preference. So the default's key type goes last, in the
// signature algorithms (TLS 1.3 and 1.2) and the TLS 1.2 cipher suites: a connection whose SNI
// name picked a certificate of another type gets it, and any other holds the default alone.
import tls, { type SecureContextOptions } from 'node:tls';

/** The signature algorithms each key type signs with, in OpenSSL's default order (no SHA-1). */
const SIGALGS: Readonly<Record<string, readonly string[]>> = {
  ec: ['ecdsa_secp256r1_sha256', 'ecdsa_secp384r1_sha384', 'ecdsa_secp521r1_sha512', 'ECDSA+SHA224'],
  ed25519: ['ed25519'],
  ed448: ['ed448'],
  'rsa-pss': ['rsa_pss_pss_sha256', 'rsa_pss_pss_sha384', 'rsa_pss_pss_sha512'],
  rsa: [
    'rsa_pss_rsae_sha256',
    'rsa_pss_rsae_sha384',
    'rsa_pss_rsae_sha512',
    'rsa_pkcs1_sha256',
    'rsa_pkcs1_sha384',
    'rsa_pkcs1_sha512',
    'RSA+SHA224',
  ],
};

/** The TLS 1.2 authentication a key type's cipher suites name (OpenSSL's cipher-list alias). */
function authOf(keyType: string): string {
  return keyType === 'rsa' || keyType === 'rsa-pss' ? 'aRSA' : 'aECDSA';
}

/**
 * `options` (the default certificate's) for the server's own context; with key types mixed in
 * `keyTypes` (the default's first), the default's type put last. Unknown types: as they are.
 */
export function keyTypeOrder(
  options: SecureContextOptions,
  keyTypes: readonly string[],
): SecureContextOptions {
  const [first, ...others] = keyTypes;
  if (first === undefined || others.every((k) => k === first)) return options;
  if (keyTypes.some((k) => SIGALGS[k] === undefined)) return options;
  const order = [...Object.keys(SIGALGS).filter((k) => k !== first), first];
  return {
    ...options,
    sigalgs: order.flatMap((k) => SIGALGS[k]!).join(':'),
    // "+alias" moves those suites to the end of the list, keeping their order.
    ciphers: `${options.ciphers ?? tls.DEFAULT_CIPHERS}:+${authOf(first)}`,
  };
}
