// TLS-ALPN-01 (RFC 8737) on the HTTPS listener: while a domain is being proved, a handshake
// for it that offers only the "acme-tls/1" protocol gets the validation certificate (self-signed,
// with the acmeIdentifier extension acme-client makes) instead of the served one. Node calls
// ALPNCallback before SNICallback, both on the TLS socket, so the first marks the socket and the
// second picks the context. Every other handshake is as without: the served certificates, and
// the listener's protocols in its order of preference.
import type { TLSSocket } from 'node:tls';
import tls, { type SecureContext } from 'node:tls';

export const ACME_TLS_PROTOCOL = 'acme-tls/1';

type SniCallback = (servername: string, cb: (err: Error | null, ctx?: SecureContext) => void) => void;

export class AlpnChallenges {
  /** Domain (lower-case) → the validation certificate's context. */
  private readonly contexts = new Map<string, SecureContext>();
  private readonly validating = new WeakSet<TLSSocket>();

  set(domain: string, cert: string, key: string): void {
    this.contexts.set(domain.toLowerCase(), tls.createSecureContext({ cert, key }));
  }

  delete(domain: string): void {
    this.contexts.delete(domain.toLowerCase());
  }

  /**
   * The server options that replace ALPNProtocols: `protocols` (the server's preference) for
   * every client, acme-tls/1 for a validation, and `sni` for the rest.
   */
  serverOptions(
    protocols: readonly string[],
    sni: SniCallback,
  ): Pick<tls.TlsOptions, 'ALPNCallback' | 'SNICallback'> {
    const { contexts, validating } = this;
    return {
      ALPNCallback(this: TLSSocket, { servername, protocols: offered }) {
        if (offered.includes(ACME_TLS_PROTOCOL)) {
          // RFC 8737 §3: a validation offers acme-tls/1 alone; for a name not being proved,
          // the handshake fails (no_application_protocol).
          if (!contexts.has((servername ?? '').toLowerCase())) return undefined;
          validating.add(this);
          return ACME_TLS_PROTOCOL;
        }
        return protocols.find((p) => offered.includes(p));
      },
      SNICallback(this: TLSSocket, servername, cb) {
        const ctx = validating.has(this) ? contexts.get(servername.toLowerCase()) : undefined;
        if (ctx) return cb(null, ctx);
        sni.call(this, servername, cb);
      },
    };
  }
}
