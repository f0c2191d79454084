// The certificate served while ACME has not issued one yet (tls.acme, first start, or every
// attempt failed so far): self-signed, for the configured names, its subject saying what it is.
// Clients refuse it (not trusted), as they would an expired one, but the listener is up, the
// redirect and the ACME challenges are answered, and nothing waits for the CA. Made here with
// node:crypto alone (an EC P-256 key, the X.509 DER written by hand: a few fixed structures),
// synchronously, so the proxy can be built before the first issuance.
import { X509Certificate, generateKeyPairSync, randomBytes, sign } from 'node:crypto';

/** In the subject's CN of every placeholder: how a stored one is told from an issued one. */
export const PLACEHOLDER_CN = 'Baton placeholder (ACME pending)';

function length(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function tlv(tag: number, ...parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  return Buffer.concat([Buffer.from([tag]), length(body.length), body]);
}

const seq = (...parts: Buffer[]): Buffer => tlv(0x30, ...parts);

function oid(dotted: string): Buffer {
  const [a, b, ...rest] = dotted.split('.').map(Number);
  const bytes = [a! * 40 + b!];
  for (const n of rest) {
    const enc = [n & 0x7f];
    for (let v = Math.floor(n / 128); v > 0; v = Math.floor(v / 128)) enc.unshift(0x80 | (v & 0x7f));
    bytes.push(...enc);
  }
  return tlv(0x06, Buffer.from(bytes));
}

function time(d: Date): Buffer {
  const iso = d.toISOString().replace(/[-:T]/g, '').slice(0, 14); // YYYYMMDDHHMMSS
  // RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050.
  return d.getUTCFullYear() < 2050
    ? tlv(0x17, Buffer.from(`${iso.slice(2)}Z`))
    : tlv(0x18, Buffer.from(`${iso}Z`));
}

const name = (cn: string): Buffer => seq(tlv(0x31, seq(oid('2.5.4.3'), tlv(0x0c, Buffer.from(cn)))));
const ECDSA_SHA256 = seq(oid('1.2.840.10045.4.3.2'));

export interface Placeholder {
  readonly cert: string;
  readonly key: string;
}

/** A self-signed certificate for `domains` (SAN), valid from an hour ago for `days`. */
export function makePlaceholder(domains: readonly string[], days = 365, now = Date.now()): Placeholder {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const serial = randomBytes(12);
  serial[0] = (serial[0]! & 0x7f) | 0x40; // positive, and no leading zero byte (DER: minimal)
  const san = seq(...domains.map((d) => tlv(0x82, Buffer.from(d))));
  const tbs = seq(
    tlv(0xa0, tlv(0x02, Buffer.from([2]))), // v3
    tlv(0x02, serial),
    ECDSA_SHA256,
    name(PLACEHOLDER_CN),
    seq(time(new Date(now - 3_600_000)), time(new Date(now + days * 86_400_000))),
    name(PLACEHOLDER_CN),
    publicKey.export({ type: 'spki', format: 'der' }),
    tlv(0xa3, seq(seq(oid('2.5.29.17'), tlv(0x04, san)))),
  );
  const signature = sign('sha256', tbs, privateKey);
  const der = seq(tbs, ECDSA_SHA256, tlv(0x03, Buffer.from([0]), signature));
  const cert = new X509Certificate(der).toString();
  return { cert, key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() };
}

/** Whether a certificate (PEM, the leaf first) is one of these placeholders. */
export function isPlaceholder(certPem: string): boolean {
  try {
    return new X509Certificate(certPem).subject.includes(PLACEHOLDER_CN);
  } catch {
    return false;
  }
}
