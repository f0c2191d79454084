// redirectHttp: a plain-HTTP listener beside the HTTPS one. A request gets a 308 to the same
// host and path on https:// (the HTTPS listener's port added when it is not 443) when a
// certificate served covers its Host (or tls.acme has it among its domains); any other Host is
// refused with a 421 and no Location, so the proxy is no open redirect to a name a request
// made up; a Host the proxy would refuse gets the same 400. ACME HTTP-01 challenges
// (/.well-known/acme-challenge/<token>) are answered from `challenges`, which the ACME client
// fills while it proves a domain: empty, they are 404s. No HSTS here: RFC 6797 §7.2 forbids it
// over plain HTTP.
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { ListenAddress } from '../../config/address.js';
import type { ProxyConfig } from '../../config/schema.js';
import type { ServedCertificates } from './certificate-reload.js';
import { listenOn, stopAccepting, type ListenSource } from './handover.js';
import { validAuthority } from './headers.js';

const CHALLENGE_PREFIX = '/.well-known/acme-challenge/';

function answer(
  res: ServerResponse,
  status: number,
  body: string,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, {
    ...headers,
    'content-type': 'text/plain; charset=utf-8',
    'content-length': String(Buffer.byteLength(body)),
  });
  res.end(body);
}

/** `host[:port]` without its port (an IPv6 literal keeps its brackets). */
function hostOnly(authority: string): string {
  if (authority.startsWith('[')) return authority.slice(0, authority.indexOf(']') + 1);
  const colon = authority.indexOf(':');
  return colon < 0 ? authority : authority.slice(0, colon);
}

export class HttpRedirect {
  /** ACME HTTP-01: token → key authorization. */
  readonly challenges = new Map<string, string>();
  readonly server: http.Server;

  constructor(
    readonly address: ListenAddress,
    p: ProxyConfig,
    /** Which hosts are redirected (and challenged): the certificates serving now. */
    private readonly names: Pick<ServedCertificates, 'covers'>,
    /** The port the HTTPS listener has (null: a unix socket, no port in the URL). */
    private readonly httpsPort: () => number | null,
  ) {
    this.server = http.createServer(
      {
        maxHeaderSize: p.maxHeaderSize,
        headersTimeout: p.clientHeaderTimeout,
        requestTimeout: p.clientRequestTimeout,
        keepAliveTimeout: p.clientIdleTimeout,
        requireHostHeader: true,
      },
      this.onRequest,
    );
    // Malformed requests: Node's own 400, and the connection ends.
    this.server.on('clientError', (_err: Error, socket: Socket) => {
      if (socket.writable)
        socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
      socket.destroySoon?.();
    });
  }

  listen(from?: ListenSource): Promise<void> {
    return listenOn(this.server, this.address, from);
  }

  /** Stops accepting (a handover: the new process accepts on the same socket). */
  stopAccepting(): void {
    stopAccepting(this.server);
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private readonly onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const hosts = req.rawHeaders.filter((_, i) => i % 2 === 0 && req.rawHeaders[i]!.toLowerCase() === 'host');
    const host = req.headers.host ?? '';
    if (hosts.length !== 1 || !validAuthority(host)) {
      return answer(res, 400, 'the Host header is not a valid host[:port] (baton)\n', {
        connection: 'close',
      });
    }
    const name = hostOnly(host);
    // 421 (RFC 9110 §15.5.20): this server does not answer for that authority; an ACME
    // server asks for one of tls.acme's domains, which `names` has.
    if (!this.names.covers(name)) {
      return answer(res, 421, 'no certificate served here is for this Host (baton)\n', {
        connection: 'close',
      });
    }
    let url = req.url ?? '/';
    // Absolute-form (a forward proxy's form): its path only; Host names the site.
    if (!url.startsWith('/')) {
      const m = /^https?:\/\/[^/?#]*(.*)$/i.exec(url);
      url = m ? m[1] || '/' : '/';
      if (!url.startsWith('/')) url = `/${url}`;
    }
    if (url.startsWith(CHALLENGE_PREFIX) && (req.method === 'GET' || req.method === 'HEAD')) {
      const token = url.slice(CHALLENGE_PREFIX.length).split('?')[0]!;
      const auth = this.challenges.get(token);
      if (auth === undefined) return answer(res, 404, 'no such ACME challenge (baton)\n');
      // The key authorization exactly (RFC 8555 §8.3).
      return answer(res, 200, auth);
    }
    const port = this.httpsPort();
    const location = `https://${name}${port !== null && port !== 443 ? `:${port}` : ''}${url}`;
    // 308, not 301: the method and body stay as they are (a POST stays a POST).
    answer(res, 308, `redirecting to ${location}\n`, { location });
  };
}
