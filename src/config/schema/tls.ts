// HTTPS at the built-in proxy (issue #17): the certificates it serves (tls:), a plain-HTTP
// listener that redirects to it (redirectHttp:) and the Strict-Transport-Security header (hsts:).
// The files are read and checked by src/edge/builtin/certificates.ts, for `baton validate` and
// `baton up` alike; the schema checks the shape only.
import { z } from 'zod';
import { editorSchemas, fail } from './values.js';

const pemFile = z.string().min(1, { message: 'a file path, e.g. /etc/baton/web.crt' });

export const certificateSchema = z.strictObject({
  cert: pemFile.describe(
    'The certificate file (PEM), the leaf first and then its chain; relative to this file.',
  ),
  key: pemFile.describe("The certificate's private key file (PEM), unencrypted; relative to this file."),
});

/** A DNS name an ACME server can prove by HTTP-01 or TLS-ALPN-01: no wildcard, no IP, no port. */
const acmeDomain = z
  .string()
  .regex(
    /^(\*\.)?(?=.{1,253}$)[a-z0-9_](?:[a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+\.?$/i,
    {
      message: 'a DNS name with at least one dot, e.g. example.com',
    },
  )
  .refine((v) => !v.startsWith('*.'), {
    message: 'a wildcard needs the DNS-01 challenge, which Baton does not do: list the names',
  });

export const acmeSchema = z.strictObject({
  email: z
    .string()
    .regex(/^[^@\s]+@[^@\s]+$/, { message: 'an e-mail address, e.g. ops@example.com' })
    .describe("The ACME account's contact: the CA writes there about expiring certificates and problems."),
  domains: z
    .array(acmeDomain)
    .min(1)
    .max(100)
    .describe('The names the certificate is for (the first is its subject); each must reach this proxy.'),
  directory: z
    .string()
    .regex(/^https:\/\/\S+$/, { message: "the ACME server's directory URL, https://..." })
    .describe(
      "The ACME server's directory URL, e.g. https://acme-v02.api.letsencrypt.org/directory (Let's Encrypt).",
    ),
  challenge: z
    .enum(['http-01', 'tls-alpn-01'])
    .prefault('http-01')
    .describe(
      'How domains are proved: http-01 (the default; answered on redirectHttp:, which must be port 80 to the world) or tls-alpn-01 (answered on listen:, which must be port 443 to the world).',
    ),
});

export const tlsSchema = z
  .strictObject({
    acme: acmeSchema
      .optional()
      .describe(
        'Certificates from an ACME server (RFC 8555, e.g. Let\'s Encrypt) instead of cert/key: issued, stored in stateDir/acme/ and renewed by Baton (README, "HTTPS").',
      ),
    cert: certificateSchema.shape.cert.optional(),
    key: certificateSchema.shape.key.optional(),
    certificates: z
      .array(certificateSchema)
      .min(1)
      .optional()
      .describe(
        'Several certificates, each { cert, key }, chosen by the name the client asks for (SNI); the first is the default (a client that names none, or a name none of them has). With cert and key too, that one comes first.',
      ),
    minVersion: z
      .enum(['TLSv1.2', 'TLSv1.3'])
      .prefault('TLSv1.2')
      .describe('The oldest TLS version accepted: TLSv1.2 (the default) or TLSv1.3.'),
    ciphers: z
      .string()
      .min(1)
      .optional()
      .describe(
        "TLS 1.2 cipher suites, in OpenSSL's list format (e.g. ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256); left out: Node's default list.",
      ),
    http2: z
      .boolean()
      .prefault(true)
      .describe(
        'true (the default): HTTP/2 offered to clients by ALPN beside HTTP/1.1, forwarded to the targets over HTTP/1.1; false: HTTP/1.1 only.',
      ),
    maxConcurrentStreams: z
      .number()
      .int()
      .min(1)
      .max(1000)
      .prefault(128)
      .describe(
        'HTTP/2: the requests one client connection may have under way at once (SETTINGS_MAX_CONCURRENT_STREAMS; nginx: 128).',
      ),
  })
  .superRefine((t, ctx) => {
    if ((t.cert === undefined) !== (t.key === undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: [t.cert === undefined ? 'cert' : 'key'],
        message: 'cert and key go together: the certificate file and its private key file',
      });
    }
    if (t.acme !== undefined && (t.cert !== undefined || t.key !== undefined || t.certificates)) {
      ctx.addIssue({
        code: 'custom',
        path: ['acme'],
        message: 'acme replaces cert, key and certificates: keep acme, or the files',
      });
    }
    if (t.cert === undefined && t.certificates === undefined && t.acme === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: [],
        message:
          'tls needs a certificate: cert and key (PEM files), certificates: [{ cert, key }, ...], or acme: { email, domains, directory }',
      });
    }
  });

/** `hsts: true`: one year, the HSTS preload list's floor. */
export const HSTS_DEFAULT_MAX_AGE = 31_536_000;

/** Seconds, or a count of days (d) or years (y, 365 days): "1y", "180d", 31536000. */
const maxAge = z.union([z.number(), z.string()]).transform((v, ctx): number => {
  if (typeof v === 'number') return Number.isInteger(v) && v >= 0 ? v : fail(ctx, `${v}: seconds, 0 or more`);
  const m = /^(\d+)(s|d|y)$/.exec(v.trim());
  if (!m)
    return fail(ctx, `"${v}" is not an HSTS max-age: write seconds (31536000), days (180d) or years (1y)`);
  return Number(m[1]) * (m[2] === 'y' ? 31_536_000 : m[2] === 'd' ? 86_400 : 1);
});
editorSchemas.add(maxAge, {
  jsonSchema: {
    anyOf: [
      { type: 'integer', minimum: 0 },
      { type: 'string', pattern: String.raw`^\d+(s|d|y)$` },
    ],
  },
});

export const hstsSchema = z.union([
  z.boolean(),
  z
    .strictObject({
      maxAge: maxAge
        .prefault(HSTS_DEFAULT_MAX_AGE)
        .describe(
          'How long browsers remember to use HTTPS only: seconds, days (180d) or years (1y); default 1y.',
        ),
      includeSubDomains: z
        .boolean()
        .prefault(false)
        .describe('true: every subdomain too (only when all of them serve HTTPS).'),
      preload: z
        .boolean()
        .prefault(false)
        .describe("true: ask to be in the browsers' preload list (needs includeSubDomains and 1y or more)."),
    })
    // The preload list takes a site whose header has both (hstspreload.org, "Submission
    // Requirements"): without them, browsers would pin less than the list is asked for.
    .superRefine((h, ctx) => {
      if (!h.preload) return;
      if (!h.includeSubDomains) {
        ctx.addIssue({
          code: 'custom',
          path: ['includeSubDomains'],
          message:
            "hsts.preload needs hsts.includeSubDomains: true (the browsers' preload list covers every subdomain): set it, once every subdomain serves HTTPS, or drop preload",
        });
      }
      if (h.maxAge < HSTS_DEFAULT_MAX_AGE) {
        ctx.addIssue({
          code: 'custom',
          path: ['maxAge'],
          message: `hsts.preload needs hsts.maxAge of 1y (31536000 seconds) or more, not ${h.maxAge}: the browsers' preload list refuses less`,
        });
      }
    }),
]);

export type TlsConfig = z.output<typeof tlsSchema>;
export type AcmeConfig = z.output<typeof acmeSchema>;
export type HstsConfig = z.output<typeof hstsSchema>;

/** The Strict-Transport-Security value `hsts:` asks for; null when off. */
export function hstsHeader(h: HstsConfig | undefined): string | null {
  if (h === undefined || h === false) return null;
  const o = h === true ? { maxAge: HSTS_DEFAULT_MAX_AGE, includeSubDomains: false, preload: false } : h;
  return `max-age=${o.maxAge}${o.includeSubDomains ? '; includeSubDomains' : ''}${o.preload ? '; preload' : ''}`;
}
