// What tls.acme keeps in stateDir/acme/: the account key (account.key), the certificate served
// (cert.pem: the leaf and its chain; key.pem: its key) and what it was issued for (issued.json:
// the directory and the names). Keys are written 0600, every file atomically (a temp file, then
// a rename; the key before the certificate), so the proxy, its workers and their file watchers
// (certificate-reload.ts) only ever see a whole pair. Before the first issuance the pair is a
// self-signed placeholder (placeholder.ts).
import { X509Certificate, createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { AcmeConfig } from '../../../config/schema.js';
import type { CertificateFiles } from '../certificates.js';
import { isPlaceholder, makePlaceholder } from './placeholder.js';

export interface AcmeFiles {
  readonly dir: string;
  readonly accountKey: string;
  readonly cert: string;
  readonly key: string;
  readonly issued: string;
}

export function acmeFiles(stateDirPath: string): AcmeFiles {
  const dir = path.join(stateDirPath, 'acme');
  return {
    dir,
    accountKey: path.join(dir, 'account.key'),
    cert: path.join(dir, 'cert.pem'),
    key: path.join(dir, 'key.pem'),
    issued: path.join(dir, 'issued.json'),
  };
}

/** The pair as tls:'s certificates are given to the proxy. */
export function acmeCertificateFiles(f: AcmeFiles): CertificateFiles {
  return { at: 'tls.acme', cert: f.cert, key: f.key };
}

function writeAtomic(file: string, text: string, mode: number): void {
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, text, { mode });
  renameSync(tmp, file);
}

function readOr(file: string): string | null {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return null;
  }
}

/** The account key (EC P-256, PEM), made and stored on first use. */
export function accountKey(f: AcmeFiles): string {
  const have = readOr(f.accountKey);
  if (have !== null) return have;
  mkdirSync(f.dir, { recursive: true, mode: 0o700 });
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  writeAtomic(f.accountKey, pem, 0o600);
  return pem;
}

/** The stored certificate, as the renewal sees it. */
export interface StoredCertificate {
  readonly placeholder: boolean;
  readonly names: readonly string[];
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly serial: string;
  /** The directory it came from (issued.json), null for a placeholder. */
  readonly directory: string | null;
}

/** The pair stored, or null when it is missing, does not parse or the key does not match. */
export function readStored(f: AcmeFiles): StoredCertificate | null {
  const cert = readOr(f.cert);
  const key = readOr(f.key);
  if (cert === null || key === null) return null;
  try {
    const leaf = new X509Certificate(cert);
    if (!leaf.checkPrivateKey(createPrivateKey(key))) return null;
    const names = (leaf.subjectAltName ?? '')
      .split(/,\s*/)
      .filter((e) => e.startsWith('DNS:'))
      .map((e) => e.slice(4).toLowerCase());
    const placeholder = isPlaceholder(cert);
    let directory: string | null = null;
    if (!placeholder) {
      const meta = JSON.parse(readOr(f.issued) ?? '{}') as { directory?: unknown; serial?: unknown };
      // issued.json describes this certificate only if it names its serial.
      if (typeof meta.directory === 'string' && meta.serial === leaf.serialNumber) directory = meta.directory;
    }
    return {
      placeholder,
      names,
      notBefore: new Date(leaf.validFrom),
      notAfter: new Date(leaf.validTo),
      serial: leaf.serialNumber,
      directory,
    };
  } catch {
    return null;
  }
}

/** Stores an issued certificate (its chain) and key: key first, then the certificate. */
export function storeIssued(f: AcmeFiles, chain: string, key: string, directory: string): StoredCertificate {
  // Checked before anything is written: a bad answer leaves the pair serving as it is.
  const leaf = new X509Certificate(chain);
  if (!leaf.checkPrivateKey(createPrivateKey(key))) {
    throw new Error(`the certificate issued (serial ${leaf.serialNumber}) does not match its key`);
  }
  mkdirSync(f.dir, { recursive: true, mode: 0o700 });
  writeAtomic(f.issued, `${JSON.stringify({ directory, serial: leaf.serialNumber })}\n`, 0o600);
  writeAtomic(f.key, key, 0o600);
  writeAtomic(f.cert, chain.endsWith('\n') ? chain : `${chain}\n`, 0o644);
  const stored = readStored(f);
  if (!stored) throw new Error(`the certificate just stored in ${f.cert} does not read back`);
  return stored;
}

/**
 * Makes sure a pair is there for the proxy to load: the stored one when it reads (a placeholder:
 * when it is for `acme.domains`), else a placeholder for them. Returns whether one was written.
 */
export function ensureServable(f: AcmeFiles, acme: AcmeConfig): boolean {
  const domains = acme.domains.map((d) => d.toLowerCase().replace(/\.$/, ''));
  const stored = readStored(f);
  // A placeholder for other names (domains changed before any issuance) is made again.
  if (stored !== null && (!stored.placeholder || stored.names.join() === domains.join())) return false;
  mkdirSync(f.dir, { recursive: true, mode: 0o700 });
  const p = makePlaceholder(domains);
  writeAtomic(f.key, p.key, 0o600);
  writeAtomic(f.cert, p.cert, 0o644);
  return true;
}
