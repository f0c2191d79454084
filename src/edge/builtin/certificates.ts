// The certificates the built-in proxy serves over HTTPS (tls: in baton.yaml): PEM files read and
// checked (the chain parses, the key matches the leaf), each made into a TLS secure context,
// and the set chosen from by the name a client asks for (SNI). One set of checks for
// `baton validate`, `baton up`, the data plane and every reload (certificate-reload.ts).
import { X509Certificate, constants, createPrivateKey, type KeyObject } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { isIP } from 'node:net';
import path from 'node:path';
import tls, { type SecureContext, type SecureContextOptions } from 'node:tls';
import type { ConfigProblem } from '../../config/load.js';
import type { BatonConfig, TlsConfig } from '../../config/schema.js';
import { BatonError, messageOf } from '../../errors.js';
import { keyTypeOrder } from './key-order.js';

/** One certificate of tls:, its paths absolute. */
export interface CertificateFiles {
  /** Where it is in baton.yaml: "tls" or "tls.certificates[1]". */
  readonly at: string;
  readonly cert: string;
  readonly key: string;
}

/** The TLS settings every context shares (README, "HTTPS"). */
export type TlsSettings = Pick<
  SecureContextOptions,
  'minVersion' | 'ciphers' | 'honorCipherOrder' | 'secureOptions'
>;

export interface LoadedCertificate {
  readonly files: CertificateFiles;
  /** DNS names it is for, lower-case (subjectAltName, else the subject's CN); may start with `*.`. */
  readonly names: readonly string[];
  readonly serial: string;
  readonly validTo: Date;
  /** The leaf, for the names it is valid for as a client checks them (`covers`). */
  readonly leaf: X509Certificate;
  /** Its key's type: 'ec', 'rsa', ... (KeyObject.asymmetricKeyType). */
  readonly keyType: string;
  /** The key file's permission bits, when others than its owner may read it (else 0). */
  readonly keyOpenMode: number;
  /** What makes its context (the server's own, from the default's: CertificateSet.serverOptions). */
  readonly options: SecureContextOptions;
  readonly context: SecureContext;
}

export function tlsSettings(t: Pick<TlsConfig, 'minVersion' | 'ciphers'>): TlsSettings {
  return {
    minVersion: t.minVersion,
    ...(t.ciphers !== undefined ? { ciphers: t.ciphers } : {}),
    // The server's order of preference, not the client's: the strongest both have.
    honorCipherOrder: true,
    // No renegotiation (TLS 1.2; TLS 1.3 has none): a client cannot make the server redo the
    // expensive part of a handshake on a connection it holds.
    secureOptions: constants.SSL_OP_NO_RENEGOTIATION,
  };
}

/** The certificates of tls:, in order (cert/key first, then certificates), relative to the file. */
export function certificateFiles(config: Pick<BatonConfig, 'tls' | 'baseDir'>): CertificateFiles[] {
  const t = config.tls;
  if (!t) return [];
  const abs = (p: string): string => path.resolve(config.baseDir, p);
  const out: CertificateFiles[] = [];
  if (t.cert !== undefined && t.key !== undefined)
    out.push({ at: 'tls', cert: abs(t.cert), key: abs(t.key) });
  t.certificates?.forEach((c, i) =>
    out.push({ at: `tls.certificates[${i}]`, cert: abs(c.cert), key: abs(c.key) }),
  );
  return out;
}

/** A certificate file that cannot be served: the file, what is wrong, what to do. */
export class CertificateProblem extends Error {
  constructor(
    readonly at: string,
    readonly file: string,
    message: string,
  ) {
    super(message);
  }
}

function read(at: string, file: string, what: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why =
      e.code === 'ENOENT'
        ? 'no such file'
        : e.code === 'EACCES'
          ? `permission denied (the user running Baton must be able to read it)`
          : messageOf(err);
    throw new CertificateProblem(at, file, `cannot read the ${what} ${file} (${at}): ${why}`);
  }
}

const CERT_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

function dnsNames(c: X509Certificate): string[] {
  const san = (c.subjectAltName ?? '')
    .split(/,\s*/)
    .filter((e) => e.startsWith('DNS:'))
    .map((e) => e.slice(4).toLowerCase());
  if (san.length) return san;
  const cn = /(?:^|\n)CN=([^\n]+)/.exec(c.subject)?.[1];
  return cn ? [cn.toLowerCase()] : [];
}

/** Reads and checks one certificate and its key; throws a CertificateProblem naming the file. */
export function loadCertificate(files: CertificateFiles, settings: TlsSettings): LoadedCertificate {
  const { at, cert: certFile, key: keyFile } = files;
  const certPem = read(`${at}.cert`, certFile, 'certificate');
  const blocks = certPem.match(CERT_BLOCK) ?? [];
  if (blocks.length === 0) {
    throw new CertificateProblem(
      `${at}.cert`,
      certFile,
      `the certificate ${certFile} (${at}.cert) is not PEM: no -----BEGIN CERTIFICATE----- block (a DER file converts with: openssl x509 -inform der -in FILE -out FILE.pem)`,
    );
  }
  const chain = blocks.map((b, i) => {
    try {
      return new X509Certificate(b);
    } catch (err) {
      throw new CertificateProblem(
        `${at}.cert`,
        certFile,
        `the certificate ${certFile} (${at}.cert) has a block that does not parse (number ${i + 1}): ${messageOf(err)}`,
      );
    }
  });
  const leaf = chain[0]!;
  const keyPem = read(`${at}.key`, keyFile, 'private key');
  let key: KeyObject;
  try {
    key = createPrivateKey(keyPem);
  } catch (err) {
    const encrypted = /ENCRYPTED/.test(keyPem);
    throw new CertificateProblem(
      `${at}.key`,
      keyFile,
      encrypted
        ? `the private key ${keyFile} (${at}.key) is encrypted: Baton needs it unencrypted (openssl pkey -in FILE -out FILE.plain, then chmod 600)`
        : `the private key ${keyFile} (${at}.key) is not a PEM private key: ${messageOf(err)}`,
    );
  }
  if (!leaf.checkPrivateKey(key)) {
    throw new CertificateProblem(
      `${at}.key`,
      keyFile,
      `the private key ${keyFile} (${at}.key) does not match the certificate ${certFile} (${leaf.subject.replace(/\n/g, ', ')}, serial ${leaf.serialNumber}): give the key the certificate was issued for`,
    );
  }
  const options: SecureContextOptions = { ...settings, cert: certPem, key: keyPem };
  let context: SecureContext;
  try {
    context = tls.createSecureContext(options);
  } catch (err) {
    throw new CertificateProblem(
      `${at}.cert`,
      certFile,
      `the certificate ${certFile} (${at}.cert) cannot be used: ${messageOf(err)}`,
    );
  }
  let keyOpenMode = 0;
  try {
    const mode = statSync(keyFile).mode & 0o777;
    if (mode & 0o044) keyOpenMode = mode;
  } catch {
    // read a moment ago: gone since, the next reload says so
  }
  return {
    files,
    keyOpenMode,
    names: dnsNames(leaf),
    leaf,
    keyType: key.asymmetricKeyType ?? 'unknown',
    serial: leaf.serialNumber,
    validTo: new Date(leaf.validTo),
    options,
    context,
  };
}

/** A certificate this close to its end is warned of at every load. */
const EXPIRY_WARNING_MS = 14 * 86_400_000;

/** What a loaded certificate should be told about, though it is served: expired, not yet valid. */
export function certificateWarnings(c: LoadedCertificate, now = Date.now()): string[] {
  const out: string[] = [];
  const { cert } = c.files;
  if (c.validTo.getTime() <= now) {
    out.push(
      `the certificate ${cert} (${c.files.at}.cert) expired on ${c.validTo.toISOString()}: clients refuse it; Baton serves it until you replace the file (it is re-read when it changes)`,
    );
  }
  const left = c.validTo.getTime() - now;
  if (left > 0 && left < EXPIRY_WARNING_MS) {
    out.push(
      `the certificate ${cert} (${c.files.at}.cert) expires on ${c.validTo.toISOString()}, in ${Math.ceil(left / 86_400_000)} day(s): replace the file before then (it is re-read when it changes)`,
    );
  }
  if (c.keyOpenMode !== 0) {
    out.push(
      `the private key ${c.files.key} (${c.files.at}.key) can be read by other users (mode ${c.keyOpenMode.toString(8).padStart(4, '0')}): chmod 600 ${c.files.key}`,
    );
  }
  if (c.names.length === 0) {
    out.push(`the certificate ${cert} (${c.files.at}.cert) names no DNS host (no subjectAltName, no CN)`);
  }
  return out;
}

/** The certificates served: the first is the default; a client's SNI name picks another. */
export class CertificateSet {
  private readonly exact = new Map<string, LoadedCertificate>();
  private readonly wildcard = new Map<string, LoadedCertificate>();
  /** The server's own context: the default certificate's, key types ordered (key-order.ts). */
  readonly serverOptions: SecureContextOptions;

  constructor(readonly all: readonly LoadedCertificate[]) {
    const types = all.map((c) => c.keyType);
    this.serverOptions = all[0] ? keyTypeOrder(all[0].options, types) : {};
    for (const c of all) {
      for (const n of c.names) {
        const map = n.startsWith('*.') ? this.wildcard : this.exact;
        const key = n.startsWith('*.') ? n.slice(2) : n;
        // The first one listed wins a name two of them have.
        if (!map.has(key)) map.set(key, c);
      }
    }
  }

  get default(): LoadedCertificate {
    return this.all[0]!;
  }

  /** The certificate for `servername` (one label under a wildcard matches it), else the default. */
  pick(servername: string): LoadedCertificate {
    const name = servername.toLowerCase().replace(/\.$/, '');
    const found = this.exact.get(name);
    if (found) return found;
    const dot = name.indexOf('.');
    return (dot > 0 ? this.wildcard.get(name.slice(dot + 1)) : undefined) ?? this.default;
  }

  /**
   * Whether one of them is valid for `host` (a DNS name, an IP, `[v6]`) as a client checks it
   * (RFC 6125: subjectAltName DNS and IP entries, a `*.` wildcard for one whole label).
   */
  covers(host: string): boolean {
    const h = host.startsWith('[') ? host.slice(1, -1) : host.replace(/\.$/, '');
    if (isIP(h) !== 0) return this.all.some((c) => c.leaf.checkIP(h) !== undefined);
    return this.all.some((c) => c.leaf.checkHost(h, { partialWildcards: false }) !== undefined);
  }
}

/** Loads every certificate of `files`; the first problem throws (a CertificateProblem). */
export function loadCertificates(files: readonly CertificateFiles[], settings: TlsSettings): CertificateSet {
  return new CertificateSet(files.map((f) => loadCertificate(f, settings)));
}

/**
 * The check `baton validate` and `baton up` share: tls:'s files load, or a BATON_E_CONFIG
 * (exit 2) naming the file and what to do. Returns the set and its warnings (expired: served).
 */
export function checkCertificates(config: Pick<BatonConfig, 'tls' | 'baseDir' | 'file'>): {
  set: CertificateSet | null;
  warnings: string[];
} {
  // tls.acme: its shape is the schema's to check; the pair is Baton's own (acme/store.ts).
  if (!config.tls || config.tls.acme) return { set: null, warnings: [] };
  try {
    const set = loadCertificates(certificateFiles(config), tlsSettings(config.tls));
    return { set, warnings: set.all.flatMap((c) => certificateWarnings(c)) };
  } catch (err) {
    if (!(err instanceof CertificateProblem)) throw err;
    const problem: ConfigProblem = { path: err.at, message: err.message };
    throw new BatonError('BATON_E_CONFIG', `${config.file || 'baton.yaml'}: ${err.message}`, {
      details: [problem],
    });
  }
}
