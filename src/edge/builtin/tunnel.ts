// Upgraded connections (WebSocket, or any Upgrade). The request goes to a target, and only once
// the target answers `101 Switching Protocols` do bytes flow both ways untouched. Any other
// answer is an ordinary response: relayed with the usual header handling, counted and logged,
// and the client's connection goes back to the HTTP server, which parses (and rewrites) what the
// client sends next, as nginx and HAProxy do; the target's connection is closed, never spliced.
// For WebSocket the frame boundaries are tracked, so that a drain can end the tunnel gracefully:
// finish the frame in flight, send each side a Close frame (1001 "going away"), and give them a
// moment to answer before the sockets are closed.
import http, { type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { ExchangeHost, FinishedRequest } from './exchange.js';
import { downstreamResponseHeaders } from './headers.js';
import type { Target } from './target.js';

/** What a tunnel needs from its proxy: the exchange's routing, and where a refused upgrade goes. */
export interface TunnelHost extends Pick<ExchangeHost, 'pickTarget' | 'laneFor' | 'maxAttempts'> {
  /** An upgrade the target declined, answered like any request: counted and logged. */
  upgradeDeclined(r: FinishedRequest): void;
  /** Gives a connection back to the HTTP server, to parse the requests that follow on it. */
  reuseConnection(client: Socket): void;
  /** False while the proxy retires: every answer then closes its connection. */
  readonly keepAlive: boolean;
}

/** How long each side gets to answer our Close frame before the socket is closed. */
const CLOSE_GRACE_MS = 1000;

const CLOSE_PAYLOAD = Buffer.from([0x03, 0xe9]); // 1001 going away

/** Tracks where WebSocket frames start and end in one direction of a tunnel. */
class FrameCursor {
  /** Bytes of the current frame still to come; 0 at a boundary. */
  private remaining = 0;
  private header: Buffer | null = null;

  /** How many bytes of `chunk` finish the frames already begun, up to the next boundary. */
  boundaryWithin(chunk: Buffer): number {
    let at = 0;
    while (at < chunk.length) {
      if (this.remaining > 0) {
        const take = Math.min(this.remaining, chunk.length - at);
        this.remaining -= take;
        at += take;
        if (this.remaining === 0 && this.header === null) return at;
        continue;
      }
      const head = this.header ? Buffer.concat([this.header, chunk.subarray(at)]) : chunk.subarray(at);
      const consumedBefore = this.header ? this.header.length : 0;
      const size = frameHeaderSize(head);
      if (size === 0 || head.length < size) {
        this.header = Buffer.from(head);
        return chunk.length; // the rest is part of an unfinished header
      }
      this.header = null;
      this.remaining = payloadLength(head);
      at += size - consumedBefore;
      if (this.remaining === 0) return at;
    }
    return at;
  }

  get atBoundary(): boolean {
    return this.remaining === 0 && this.header === null;
  }

  /** Feeds a whole chunk, keeping track of position. */
  advance(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length) at += this.boundaryWithin(chunk.subarray(at)) || chunk.length - at;
  }
}

function frameHeaderSize(b: Buffer): number {
  if (b.length < 2) return 0;
  const len7 = b[1]! & 0x7f;
  const masked = (b[1]! & 0x80) !== 0;
  return 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + (masked ? 4 : 0);
}

function payloadLength(b: Buffer): number {
  const len7 = b[1]! & 0x7f;
  if (len7 === 126) return b.readUInt16BE(2);
  if (len7 === 127) return Number(b.readBigUInt64BE(2));
  return len7;
}

function closeFrame(masked: boolean): Buffer {
  if (!masked) return Buffer.concat([Buffer.from([0x88, 0x02]), CLOSE_PAYLOAD]);
  const mask = Buffer.from([0x5a, 0x13, 0x9c, 0x27]);
  const payload = Buffer.from(CLOSE_PAYLOAD.map((byte, i) => byte ^ mask[i % 4]!));
  return Buffer.concat([Buffer.from([0x88, 0x82]), mask, payload]);
}

export function openTunnel(
  host: TunnelHost,
  req: IncomingMessage,
  client: Socket,
  head: Buffer,
  headers: string[],
  requestId: string,
): void {
  if (client.destroyed) return;
  const started = Date.now();
  const websocket = (req.headers.upgrade ?? '').toLowerCase() === 'websocket';
  const lane = host.laneFor(req);
  const canary = lane?.canary ?? null;
  const tried: Target[] = [];
  // What the client sends after its request waits in the kernel until the target agrees to
  // switch: a client sends nothing more before that answer (RFC 6455 §4.1, RFC 9113 §3.2), and
  // after a refusal those bytes are its next HTTP request, for the HTTP server to parse.
  client.pause();
  const onClientError = (): void => void client.destroy();
  client.on('error', onClientError);
  if (req.headers['transfer-encoding'] !== undefined) {
    // Its end could not be found without decoding the chunks here; no upgrade needs a body.
    refuse(client, '501 Not Implemented', 'an Upgrade request with a chunked body is not supported');
    return;
  }
  // Node's parser checked Content-Length: these many body bytes go to the target, no more.
  let bodyLeft = Number(req.headers['content-length'] ?? 0);
  /** Client bytes read past the body: the first tunnel bytes, or the next request. */
  let rest = head;
  let bodyReader: ((chunk: Buffer) => void) | null = null;

  const sendBody = (up: http.ClientRequest): void => {
    const first = rest.subarray(0, bodyLeft);
    rest = rest.subarray(first.length);
    bodyLeft -= first.length;
    if (first.length) up.write(first);
    if (bodyLeft === 0) {
      up.end();
      return;
    }
    bodyReader = (chunk) => {
      const take = chunk.subarray(0, bodyLeft);
      bodyLeft -= take.length;
      const more = up.write(take);
      if (bodyLeft === 0) {
        stopBody();
        rest = chunk.subarray(take.length);
        up.end();
      } else if (!more) {
        client.pause();
        up.once('drain', () => bodyReader && client.resume());
      }
    };
    client.on('data', bodyReader);
    client.resume();
  };
  const stopBody = (): void => {
    if (bodyReader !== null) client.off('data', bodyReader);
    bodyReader = null;
    client.pause();
  };

  const attempt = (): void => {
    const target = host.pickTarget(req, Date.now(), tried, canary);
    if (target === undefined || tried.length >= host.maxAttempts) {
      if (tried.length) refuse(client, '502 Bad Gateway', 'upstream failed');
      else refuse(client, '503 Service Unavailable', 'no target available');
      return;
    }
    tried.push(target);
    // Counted by the target from now on: a drain that begins while we wait for the answer waits
    // for this tunnel and closes it gracefully once it is bridged, rather than missing it.
    let closeAsked = false;
    const pending = { socket: client, websocket, close: (): void => void (closeAsked = true) };
    target.tunnels.add(pending);
    const settle = (): void => {
      target.tunnels.delete(pending);
      if (target.isIdle()) target.notifyIdle();
    };
    let connected = false;
    let answered = false;
    const up = http.request({
      host: target.spec.host,
      port: target.spec.port,
      method: req.method,
      path: req.url,
      headers,
      // A connection of its own: after a refusal it is closed, never reused nor spliced.
      agent: false,
      setHost: false,
    });
    up.setNoDelay(true);
    const onClientGone = (): void => {
      if (answered) return;
      answered = true;
      up.destroy();
      settle();
    };
    client.once('close', onClientGone);
    up.once('socket', (s: Socket) =>
      s.once('connect', () => {
        connected = true;
        sendBody(up);
      }),
    );
    up.on('error', () => {
      if (answered) return;
      answered = true;
      client.off('close', onClientGone);
      settle();
      if (!connected) {
        // Nothing was sent yet: try another target.
        target.recordFailure(Date.now());
        attempt();
        return;
      }
      stopBody();
      refuse(client, '502 Bad Gateway', 'upstream failed');
    });
    up.once('upgrade', (answer: IncomingMessage, upstream: Socket, upHead: Buffer) => {
      answered = true;
      client.off('close', onClientGone);
      client.off('error', onClientError);
      stopBody();
      target.tunnels.delete(pending);
      let answerHead = `HTTP/1.1 101 ${answer.statusMessage || 'Switching Protocols'}\r\n`;
      const raw = answer.rawHeaders;
      for (let i = 0; i < raw.length; i += 2) answerHead += `${raw[i]}: ${raw[i + 1]}\r\n`;
      bridge(target, client, upstream, websocket, closeAsked, `${answerHead}\r\n`, upHead, rest);
    });
    up.once('response', (answer: IncomingMessage) => {
      answered = true;
      client.off('close', onClientGone);
      stopBody();
      // Declined: an ordinary answer to an ordinary request.
      const res = new http.ServerResponse(req);
      // The connection can carry the next request only if it is where that request begins.
      res.shouldKeepAlive =
        host.keepAlive &&
        bodyLeft === 0 &&
        req.httpVersion === '1.1' &&
        !/(^|,)\s*close\s*(,|$)/i.test(req.headers.connection ?? '');
      res.assignSocket(client);
      const raw = answer.rawHeaders.map((v) => Buffer.from(v, 'latin1'));
      const out = downstreamResponseHeaders(raw, requestId).headers;
      if (lane?.setCookie) out.push('set-cookie', lane.setCookie);
      const status = answer.statusCode ?? 502;
      res.writeHead(status, answer.statusMessage || undefined, out);
      answer.pipe(res);
      let counted = false;
      const count = (failure: FinishedRequest['failure']): void => {
        if (counted) return;
        counted = true;
        up.destroy();
        settle();
        host.upgradeDeclined({ req, target, status, failure, started, requestId, attempts: tried.length });
      };
      const onClientClose = (): void => count('client-closed');
      client.once('close', onClientClose);
      answer.once('close', () => {
        if (answer.complete) return;
        // The target's answer broke off: the client cannot get the rest of it.
        count('upstream-error');
        client.destroy();
      });
      res.once('finish', () => {
        count(undefined);
        res.detachSocket(client);
        client.off('close', onClientClose);
        client.off('error', onClientError);
        if (!res.shouldKeepAlive) {
          client.destroySoon();
          return;
        }
        if (rest.length) client.unshift(rest);
        host.reuseConnection(client);
      });
    });
  };
  attempt();
}

/** The proxy's own answer on a raw socket; the connection ends with it. */
function refuse(client: Socket, status: string, reason: string): void {
  if (client.destroyed) return;
  const body = `${reason} (baton)\n`;
  client.end(
    `HTTP/1.1 ${status}\r\ncontent-type: text/plain\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`,
  );
  client.destroySoon();
}

function bridge(
  target: Target,
  client: Socket,
  upstream: Socket,
  websocket: boolean,
  closeAsked: boolean,
  answerHead: string,
  upHead: Buffer,
  clientHead: Buffer,
): void {
  const down = new FrameCursor();
  const up = new FrameCursor();
  let closing = false;
  let downClosed = false;
  let upClosed = false;

  const entry = { socket: client, websocket, close: (): void => beginClose() };
  target.tunnels.add(entry);
  let ended = false;
  const finish = (): void => {
    if (ended) return;
    ended = true;
    client.destroy();
    upstream.destroy();
    target.tunnels.delete(entry);
    if (target.isIdle()) target.notifyIdle();
  };
  client.on('close', finish);
  upstream.on('close', finish);
  client.on('error', finish);
  upstream.on('error', finish);

  // The 101 and what the target sent right behind it; then what the client sent after its request.
  client.write(answerHead);
  if (upHead.length) {
    if (websocket) down.advance(upHead);
    client.write(upHead);
  }
  if (clientHead.length) {
    if (websocket) up.advance(clientHead);
    upstream.write(clientHead);
  }

  const relay = (from: Socket, to: Socket, onChunk: (chunk: Buffer) => Buffer | null): void => {
    from.on('data', (chunk: Buffer) => {
      const out = onChunk(chunk);
      if (out !== null && out.length && !to.write(out)) {
        from.pause();
        to.once('drain', () => from.resume());
      }
    });
    from.on('end', () => to.end());
  };

  relay(upstream, client, (chunk) => {
    if (downClosed) return null;
    if (!websocket) return chunk;
    if (!closing) {
      down.advance(chunk);
      return chunk;
    }
    const cut = down.boundaryWithin(chunk);
    if (down.atBoundary) {
      downClosed = true;
      client.write(chunk.subarray(0, cut));
      client.write(closeFrame(false));
      return null;
    }
    return chunk;
  });

  relay(client, upstream, (chunk) => {
    if (upClosed) return null;
    if (!websocket) return chunk;
    if (!closing) {
      up.advance(chunk);
      return chunk;
    }
    const cut = up.boundaryWithin(chunk);
    if (up.atBoundary) {
      upClosed = true;
      upstream.write(chunk.subarray(0, cut));
      upstream.write(closeFrame(true));
      return null;
    }
    return chunk;
  });

  function sendCloses(): void {
    if (down.atBoundary && !downClosed) {
      downClosed = true;
      client.write(closeFrame(false));
    }
    if (up.atBoundary && !upClosed) {
      upClosed = true;
      upstream.write(closeFrame(true));
    }
  }

  function beginClose(): void {
    if (closing || ended) return;
    closing = true;
    if (!websocket) {
      client.end();
      upstream.end();
    } else sendCloses();
    setTimeout(finish, CLOSE_GRACE_MS).unref();
  }

  client.resume();
  upstream.resume();
  // The client left while we waited; or a drain asked to close during the handshake: the client
  // got its answer above, and now the Close frames.
  if (client.destroyed) finish();
  else if (closeAsked) beginClose();
}
