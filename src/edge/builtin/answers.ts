// What the built-in proxy answers itself, never forwarding the request: requests headers.ts
// refuses (or `OPTIONS *`), CONNECT, bodies over proxy.maxBodySize, and malformed or too-slow
// requests (Node's clientError), on the response or on the raw socket Node hands over.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { Transform, type TransformCallback } from 'node:stream';
import type { Logger } from '../../log.js';
import type { FinishedRequest } from './exchange.js';
import { CONNECT_REFUSED, type ProxyAnswer } from './headers.js';

/** A request refused (or, for `OPTIONS *`, answered) by the proxy: never forwarded. */
export function answerHere(res: ServerResponse, a: ProxyAnswer): void {
  res.writeHead(a.status, a.statusText, a.headers);
  res.end(a.body);
}

/** An upgrade refused like any request, on the raw socket Node handed over; the connection ends. */
export function answerUpgrade(socket: Socket, a: ProxyAnswer): void {
  let text = `HTTP/1.1 ${a.status} ${a.statusText}\r\n`;
  for (const [name, value] of Object.entries(a.headers))
    if (name !== 'connection') text += `${name}: ${value}\r\n`;
  socket.on('error', () => socket.destroy());
  socket.end(`${text}connection: close\r\n\r\n${a.body}`);
  socket.destroySoon();
}

/** CONNECT (authority-form): Node hands over the raw socket; answer and close it. */
export function onConnectMethod(_req: IncomingMessage, socket: Socket): void {
  const a = CONNECT_REFUSED;
  let head = `HTTP/1.1 ${a.status} ${a.statusText}\r\n`;
  for (const [name, value] of Object.entries(a.headers)) head += `${name}: ${value}\r\n`;
  socket.on('error', () => socket.destroy());
  socket.end(`${head}\r\n${a.body}`);
}

export function tooLarge(res: ServerResponse, max: number): void {
  const body = `request body larger than ${max} bytes (baton)\n`;
  res.writeHead(413, 'Content Too Large', {
    'content-type': 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    connection: 'close',
  });
  res.end(body);
}

/** Counts a chunked request body and fails it once it passes the limit. */
export class BodyLimit extends Transform {
  private seen = 0;
  constructor(private readonly max: number) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.seen += chunk.length;
    if (this.seen > this.max) {
      const err = Object.assign(new Error(`request body larger than ${this.max} bytes`), {
        code: 'BATON_E_BODY_TOO_LARGE',
      });
      cb(err);
      return;
    }
    cb(null, chunk);
  }
}

const CLIENT_ERROR_STATUS: Record<string, string> = {
  HPE_HEADER_OVERFLOW: '431 Request Header Fields Too Large',
  HPE_CHUNK_EXTENSIONS_OVERFLOW: '413 Content Too Large',
  ERR_HTTP_REQUEST_TIMEOUT: '408 Request Timeout',
};

/** Malformed or too-slow requests: answered here, never forwarded. */
export function onClientError(err: NodeJS.ErrnoException, socket: Socket): void {
  const s = socket as Socket & { _httpMessage?: ServerResponse | null; batonErrorLater?: true };
  const current = s._httpMessage;
  if (err.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  if (current?.req.complete && err.code?.startsWith('HPE_')) {
    // Bad bytes pipelined behind a whole request whose answer is still under way (or sent after
    // its `Connection: close`): an error head now would read as that request's answer. Let it
    // go out whole, then answer this (unless that answer closed the connection).
    if (s.batonErrorLater) return;
    s.batonErrorLater = true;
    current.once('close', () => onClientError(err, socket));
    return;
  }
  // A response already under way on this socket cannot be followed by an error head.
  if (current?.headersSent) {
    socket.destroy();
    return;
  }
  const status = CLIENT_ERROR_STATUS[err.code ?? ''] ?? '400 Bad Request';
  const body = `${status.slice(4)} (baton)\n`;
  socket.end(
    `HTTP/1.1 ${status}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`,
  );
  socket.destroySoon?.();
}

/** The warning for a client let go after proxy.clientBodyTimeout or proxy.clientSendTimeout. */
export function logClientTimeout(
  log: Logger,
  ex: FinishedRequest,
  what: 'body' | 'send',
  timeoutMs: number,
): void {
  const limit = what === 'body' ? 'clientBodyTimeout' : 'clientSendTimeout';
  log.warn(
    {
      requestId: ex.requestId,
      client: ex.req.socket.remoteAddress ?? '',
      target: ex.target?.spec.id ?? null,
      timeoutMs,
    },
    what === 'body'
      ? `client sent no request body for proxy.${limit}: connection closed`
      : `client took none of the response for proxy.${limit}: connection closed`,
  );
}
