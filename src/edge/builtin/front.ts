// The proxy's client-facing server: plain HTTP/1.1, or HTTPS when tls: is set. The TCP listener
// is the same either way (bound, handed over by an older proxy, or systemd's): TLS is per
// connection, so an inherited socket serves HTTPS as well. With TLS, Node's HTTP layer sees the
// TLS socket once its handshake is done ('secureConnection'); the raw TCP sockets still in their
// handshake are kept apart, for close() to end them. With tls.http2 (the default), ALPN offers
// "h2" first: those connections go to h2/sessions.ts instead of Node's HTTP/1.1 parser.
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { ListenAddress } from '../../config/address.js';
import type { ProxyConfig } from '../../config/schema.js';
import type { ServedCertificates } from './certificate-reload.js';
import { HttpRedirect } from './redirect.js';
import { ACME_TLS_PROTOCOL, type AlpnChallenges } from './acme/alpn.js';
import { H2Sessions, type H2Handler, type H2Settings } from './h2/sessions.js';

export type FrontServer = http.Server | https.Server;

/** HTTPS as baton.yaml asks for it (from-config.ts builds it). */
export interface HttpsOptions {
  /** tls: the certificates served, kept up to date. */
  readonly certificates: ServedCertificates;
  /** Strict-Transport-Security on every HTTPS answer (hsts:); null: none. */
  readonly hsts: string | null;
  /** redirectHttp: a plain-HTTP listener answering 308 to https://. */
  readonly redirectHttp: ListenAddress | null;
  /** tls.acme with tls-alpn-01: the validation certificates shown to acme-tls/1 handshakes. */
  readonly alpn?: AlpnChallenges | null;
  /** tls.http2: HTTP/2 offered by ALPN beside HTTP/1.1; null: HTTP/1.1 only. */
  readonly http2?: H2Settings | null;
}

/** Where HTTP/2 requests and flood reports go (the proxy). */
export interface H2Callbacks {
  readonly request: H2Handler;
  readonly flood: (what: string, socket: TLSSocket | undefined) => void;
}

type ConnectionListener = (this: https.Server, socket: TLSSocket) => void;

/** A connection whose TLS handshake chose HTTP/2: not one for node:http or the raw engine. */
export function isH2(socket: Socket): boolean {
  return (socket as TLSSocket).alpnProtocol === 'h2';
}

export interface Front {
  readonly server: FrontServer;
  /** The event a connection ready for HTTP comes with: 'connection', or 'secureConnection'. */
  readonly ready: 'connection' | 'secureConnection';
  readonly encrypted: boolean;
  readonly hsts: string | null;
  readonly certificates: ServedCertificates | null;
  /** redirectHttp's listener (ACME HTTP-01 answers from its `challenges`). */
  readonly redirect: HttpRedirect | null;
  /** ACME TLS-ALPN-01 answers (tls.acme with challenge: tls-alpn-01). */
  readonly alpn: AlpnChallenges | null;
  /** The HTTP/2 sessions (tls.http2), or null. */
  readonly h2: H2Sessions | null;
  /** TCP connections still in their TLS handshake (a retiring proxy waits for them). */
  handshaking(): number;
  /** Destroys the TCP connections still in their TLS handshake. */
  destroyHandshaking(): void;
  /** Stops watching the certificate files and closes the redirect listener. */
  close(): Promise<void>;
}

export function createFront(
  p: ProxyConfig,
  tls: HttpsOptions | null,
  onRequest: (req: IncomingMessage, res: ServerResponse) => void,
  /** Where the main listener is bound (the redirect's port). */
  address: () => ListenAddress,
  h2Callbacks: H2Callbacks,
): Front {
  const options: http.ServerOptions = {
    maxHeaderSize: p.maxHeaderSize,
    headersTimeout: p.clientHeaderTimeout,
    requestTimeout: p.clientRequestTimeout,
    keepAliveTimeout: p.clientIdleTimeout,
    // Node checks the two timeouts above on this timer (30s by default), so without it a
    // 10s header timeout could take 40s to fire.
    connectionsCheckingInterval: Math.min(1000, Math.max(50, Math.floor(p.clientHeaderTimeout / 4))),
    requireHostHeader: true,
    insecureHTTPParser: false,
    noDelay: true,
  };
  if (tls === null) {
    return {
      server: http.createServer(options, onRequest),
      ready: 'connection',
      encrypted: false,
      hsts: null,
      certificates: null,
      redirect: null,
      alpn: null,
      h2: null,
      handshaking: () => 0,
      destroyHandshaking: () => undefined,
      close: () => Promise.resolve(),
    };
  }
  const { certificates } = tls;
  const alpn = tls.alpn ?? null;
  const h2 = tls.http2
    ? new H2Sessions(
        { ...tls.http2, maxHeaderListSize: p.maxHeaderSize, idleTimeoutMs: p.clientIdleTimeout },
        h2Callbacks.request,
        h2Callbacks.flood,
      )
    : null;
  // The server's preference: h2 when the client offers it.
  const protocols = h2 ? ['h2', 'http/1.1'] : ['http/1.1'];
  const served = certificates.serverOptions();
  const server = https.createServer(
    {
      ...options,
      ...served,
      // With TLS-ALPN-01, a callback picks the protocol (acme-tls/1 for a validation).
      ...(alpn ? alpn.serverOptions(protocols, served.SNICallback!) : { ALPNProtocols: protocols }),
      // A client that connects and never finishes its handshake holds a socket as a slow
      // request head would: the same limit.
      handshakeTimeout: p.clientHeaderTimeout,
    },
    onRequest,
  );
  if (h2) {
    // Node's HTTP/1.1 listener, behind one that sends h2 connections to their sessions. Named as
    // Node's: the raw engine takes it for the connections it does not serve itself.
    const listeners = server.listeners('secureConnection') as ConnectionListener[];
    const node = listeners.find((l) => l.name === 'connectionListener') ?? listeners[0]!;
    server.off('secureConnection', node);
    server.on('secureConnection', function connectionListener(this: https.Server, s: TLSSocket) {
      if (isH2(s)) h2.accept(s);
      else node.call(this, s);
    });
  }
  const handshaking = new Set<Socket>();
  server.on('connection', (raw: Socket) => {
    handshaking.add(raw);
    raw.once('close', () => handshaking.delete(raw));
  });
  server.on('secureConnection', (s: TLSSocket) => {
    const raw = (s as TLSSocket & { _parent?: Socket })._parent;
    if (raw) handshaking.delete(raw);
    // A TLS-ALPN-01 validation is over once its handshake is: no HTTP on it.
    if (s.alpnProtocol === ACME_TLS_PROTOCOL) s.destroy();
  });
  // A failed handshake (a TLS 1.1 client, a port scan, a handshake timeout): the connection
  // ends. Not Node's default for HTTPS, which passes it on as a clientError: that handler
  // answers an HTTP 400, meaningless on a connection that never got to speak HTTP.
  server.removeAllListeners('tlsClientError');
  server.on('tlsClientError', (_err: Error, s: TLSSocket) => s.destroy());
  certificates.attach(server);
  const redirect = tls.redirectHttp
    ? new HttpRedirect(tls.redirectHttp, p, certificates, () => {
        const a = address();
        return a.kind === 'tcp' ? a.port : null;
      })
    : null;
  return {
    server,
    ready: 'secureConnection',
    encrypted: true,
    hsts: tls.hsts,
    certificates,
    redirect,
    alpn,
    h2,
    handshaking: () => handshaking.size,
    destroyHandshaking: () => {
      for (const s of handshaking) s.destroy();
    },
    close: async () => {
      certificates.close();
      await redirect?.close();
    },
  };
}
