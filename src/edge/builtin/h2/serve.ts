// One HTTP/2 request into the proxy: the same checks and the same Exchange as an HTTP/1.1 one
// (proxy.ts serve), through node:http2's compatibility objects, which carry what the exchange
// and the routing read (method, url, headers, socket address; writeHead/write/end/'drain'/
// 'close'). What differs on h2: the Host comes from :authority (headers.ts), a body is known by
// the stream, not by Content-Length or Transfer-Encoding (a body without Content-Length goes
// upstream chunked), and the answers have no reason phrase nor Connection header. CONNECT never
// comes here: node:http2 answers it 405 itself (and RFC 8441's WebSocket over h2 is not offered):
// WebSockets use HTTP/1.1.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import type { Readable } from 'node:stream';
import type { Logger } from '../../../log.js';
import { BodyLimit } from '../answers.js';
import type { H2Callbacks } from '../front.js';
import { H2_SESSION } from './sessions.js';
import { Exchange, type ExchangeHost } from '../exchange.js';
import { upstreamRequestHeaders, type ProxyAnswer, type TrustedProxies } from '../headers.js';

export interface H2Host extends ExchangeHost {
  /** The in-flight count the proxy's close waits for. */
  requestStarted(): void;
}

/** The proxy's settings an h2 request is served with. */
export interface H2Context {
  readonly trusted: TrustedProxies;
  readonly underscores: boolean;
  /** proxy.maxBodySize (0: none). */
  readonly maxBodySize: number;
  /** The Strict-Transport-Security value, or null. */
  readonly hsts: string | null;
}

/** The front's HTTP/2 callbacks: requests served by `host`, floods logged. */
export function h2Callbacks(host: H2Host, ctx: H2Context, log: Logger): H2Callbacks {
  return {
    request: (req, res, expectContinue) => serveH2(host, ctx, req, res, expectContinue),
    flood: (what, socket) =>
      log.warn(
        { client: socket?.remoteAddress ?? '' },
        `HTTP/2 connection ended with GOAWAY ENHANCE_YOUR_CALM: ${what}`,
      ),
  };
}

export function serveH2(
  host: H2Host,
  ctx: H2Context,
  req: Http2ServerRequest,
  res: Http2ServerResponse,
  expectContinue: boolean,
): void {
  // Reset by the client in the same read as its HEADERS (a rapid reset's usual shape): nghttp2
  // has closed the stream already. Nothing to answer, nothing to forward (and writing to it,
  // say a 100 Continue, would throw).
  if (req.stream.destroyed || req.stream.closed) return;
  if (ctx.hsts !== null) res.setHeader('strict-transport-security', ctx.hsts);
  // The exchange and the routing read only what both kinds of request carry (see above).
  const r = req as unknown as IncomingMessage & { [H2_SESSION]?: unknown };
  r[H2_SESSION] = req.stream.session;
  const h = upstreamRequestHeaders(r, ctx.trusted, true, false, ctx.underscores);
  if (h.answer !== null) return answerH2(res, h.answer);
  let body: Readable | null = null;
  const cl = req.headers['content-length'];
  // nghttp2 holds the DATA frames to the Content-Length given (a mismatch resets the stream).
  if (!req.stream.endAfterHeaders && cl !== '0') {
    const max = ctx.maxBodySize;
    if (cl !== undefined) {
      if (max > 0 && Number(cl) > max) return answerH2(res, tooLargeAnswer(max));
      body = req;
    } else body = max > 0 ? req.pipe(new BodyLimit(max)) : req;
  }
  if (expectContinue) res.writeContinue();
  const now = Date.now();
  host.requestStarted();
  new Exchange(host, r, res as unknown as ServerResponse, h.headers, h.requestId, body, now).start(now);
}

/** An answer of the proxy's own on an h2 stream: the stream ends, the connection goes on. */
function answerH2(res: Http2ServerResponse, a: ProxyAnswer): void {
  const headers: Record<string, string> = {};
  for (const name in a.headers) if (name !== 'connection') headers[name] = a.headers[name]!;
  res.writeHead(a.status, headers);
  res.end(a.body);
}

function tooLargeAnswer(max: number): ProxyAnswer {
  const body = `request body larger than ${max} bytes (baton)\n`;
  return {
    status: 413,
    statusText: 'Content Too Large',
    body,
    headers: {
      'content-type': 'text/plain; charset=utf-8',
      'content-length': String(Buffer.byteLength(body)),
    },
  };
}
