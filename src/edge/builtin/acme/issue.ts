// One ACME issuance (RFC 8555) with acme-client: the account (made, or found by its key), an
// order for tls.acme.domains, each authorization proved by the challenge chosen (http-01: the
// key authorization answered by redirectHttp's listener; tls-alpn-01: the validation
// certificate shown on the HTTPS listener), then the order finalized with a CSR for a new key
// and the certificate chain downloaded. The challenge answers are removed whatever happens.
// A failure throws an AcmeFailure naming the domain (when one is to blame) and the server's words.
import { generateKeyPairSync } from 'node:crypto';
import type { AcmeConfig } from '../../../config/schema.js';
import { messageOf } from '../../../errors.js';
import type { AlpnChallenges } from './alpn.js';

/** Where the challenge answers go: redirectHttp's token map, the TLS listener's contexts. */
export interface ChallengeAnswers {
  readonly http: Map<string, string> | null;
  readonly alpn: AlpnChallenges | null;
}

export class AcmeFailure extends Error {
  constructor(
    /** The domain the server refused or could not validate; null: the order as a whole. */
    readonly domain: string | null,
    /** What failed: "account", "order", "validation", "finalize", "download". */
    readonly step: string,
    /** The server's (or the network's) own words. */
    readonly detail: string,
  ) {
    super(detail);
  }
}

export interface Issued {
  /** The leaf and its chain, PEM. */
  readonly chain: string;
  /** Its private key, PEM (EC P-256). */
  readonly key: string;
}

/**
 * acme-client retries a request that got no answer (refused, TLS, timeout), then crashes on the
 * missing answer ("Cannot read properties of undefined (reading 'config')", issue #101 of
 * publishlab/node-acme-client) and the cause is lost. Its axios instance gets an adapter that
 * turns such a failure into a plain error (no retry: the renewal's own backoff retries) that
 * says what happened and to which URL.
 */
let adapterPatched = false;
async function patchAdapter(instance: { defaults: { adapter?: unknown } }): Promise<void> {
  if (adapterPatched) return;
  adapterPatched = true;
  const { default: axios } = await import('axios');
  const http = axios.getAdapter('http');
  const adapter: typeof http = async (config) => {
    try {
      return await http(config);
    } catch (err) {
      const e = err as { response?: unknown; code?: string; message?: string };
      if (e.response !== undefined) throw err;
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      const why = cause?.message ?? e.message ?? String(err);
      throw new Error(
        `no answer from ${config.url ?? 'the ACME server'}: ${why}${e.code ? ` (${e.code})` : ''}`,
      );
    }
  };
  instance.defaults.adapter = adapter;
}

/** A new EC P-256 private key, PEM. */
function newKey(): string {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
}

/** Polling the order and challenges: the first look soon, then less often. */
const BACKOFF = { backoffAttempts: 10, backoffMin: 500, backoffMax: 10_000 };

export async function issueCertificate(
  acme: AcmeConfig,
  accountKeyPem: string,
  answers: ChallengeAnswers,
): Promise<Issued> {
  const { Client, crypto, axios } = await import('acme-client');
  await patchAdapter(axios);
  const client = new Client({ directoryUrl: acme.directory, accountKey: accountKeyPem, ...BACKOFF });
  const domains = acme.domains.map((d) => d.toLowerCase().replace(/\.$/, ''));
  const step = async <T>(name: string, domain: string | null, run: () => Promise<T>): Promise<T> => {
    try {
      return await run();
    } catch (err) {
      if (err instanceof AcmeFailure) throw err;
      const detail = messageOf(err);
      // An order refused as a whole: the server's words name the culprit when there is one.
      const named = domains.filter((d) =>
        new RegExp(`(^|[^a-z0-9.-])${d.replace(/\./g, '\\.')}($|[^a-z0-9-])`, 'i').test(detail),
      );
      throw new AcmeFailure(domain ?? (named.length === 1 ? named[0]! : null), name, detail);
    }
  };
  await step('account', null, () =>
    client.createAccount({ termsOfServiceAgreed: true, contact: [`mailto:${acme.email}`] }),
  );
  const order = await step('order', domains.length === 1 ? domains[0]! : null, () =>
    client.createOrder({ identifiers: domains.map((value) => ({ type: 'dns', value })) }),
  );
  const authorizations = await step('order', null, () => client.getAuthorizations(order));
  // One at a time: a failure names its domain, and the others are not left half-proved.
  for (const authz of authorizations) {
    const domain = authz.identifier.value;
    if (authz.status === 'valid') continue;
    const challenge = authz.challenges.find((c) => c.type === acme.challenge);
    if (!challenge) {
      const offered = authz.challenges.map((c) => c.type).join(', ');
      throw new AcmeFailure(
        domain,
        'validation',
        `the ACME server offers no ${acme.challenge} challenge for it (offered: ${offered || 'none'})`,
      );
    }
    await step('validation', domain, async () => {
      const keyAuthorization = await client.getChallengeKeyAuthorization(challenge);
      const token = (challenge as { token: string }).token;
      try {
        if (acme.challenge === 'http-01') answers.http?.set(token, keyAuthorization);
        else {
          // EC like the served certificates: OpenSSL keeps serving the default context's
          // certificate when the one SNI picks has another key type (an RSA one, here).
          const [key, cert] = await crypto.createAlpnCertificate(authz, keyAuthorization, newKey());
          answers.alpn?.set(domain, cert.toString(), key.toString());
        }
        await client.completeChallenge(challenge);
        await client.waitForValidStatus(challenge);
      } finally {
        answers.http?.delete(token);
        answers.alpn?.delete(domain);
      }
    });
  }
  const key = newKey();
  const [, csr] = await crypto.createCsr({ commonName: domains[0]!, altNames: domains }, key);
  const finalized = await step('finalize', null, () => client.finalizeOrder(order, csr));
  const chain = await step('download', null, () => client.getCertificate(finalized));
  return { chain, key };
}
