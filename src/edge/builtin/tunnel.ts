// Upgraded connections (WebSocket, or any Upgrade): the request head goes to a target, then
// bytes flow both ways untouched. For WebSocket the frame boundaries are tracked, so that a
// drain can end the tunnel gracefully: finish the frame in flight, send each side a Close frame
// (1001 "going away"), and give them a moment to answer before the sockets are closed.
import type { IncomingMessage } from 'node:http';
import net, { type Socket } from 'node:net';
import type { ExchangeHost } from './exchange.js';
import type { Target } from './target.js';

/** What a tunnel needs from its proxy: the exchange's routing, without the retry timing. */
export type TunnelHost = Pick<ExchangeHost, 'pickTarget' | 'laneFor' | 'maxAttempts'>;

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
  headers: readonly string[],
): void {
  const websocket = (req.headers.upgrade ?? '').toLowerCase() === 'websocket';
  let requestHead = `${req.method} ${req.url} HTTP/1.1\r\n`;
  for (let i = 0; i < headers.length; i += 2) requestHead += `${headers[i]}: ${headers[i + 1]}\r\n`;
  requestHead += '\r\n';
  const tried: Target[] = [];
  const canary = host.laneFor(req)?.canary ?? null;
  client.on('error', () => client.destroy());

  const attempt = (): void => {
    const target = host.pickTarget(req, Date.now(), tried, canary);
    if (target === undefined || tried.length >= host.maxAttempts) {
      const body = tried.length ? 'upstream failed (baton)\n' : 'no target available (baton)\n';
      const status = tried.length ? '502 Bad Gateway' : '503 Service Unavailable';
      client.end(
        `HTTP/1.1 ${status}\r\ncontent-type: text/plain\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`,
      );
      return;
    }
    tried.push(target);
    // Counted by the target from now on: a drain that begins while we connect waits for this
    // tunnel and closes it gracefully once it is bridged, rather than missing it.
    let closeAsked = false;
    const connecting = { socket: client, close: (): void => void (closeAsked = true) };
    target.tunnels.add(connecting);
    const settle = (): void => {
      target.tunnels.delete(connecting);
      if (target.isIdle()) target.notifyIdle();
    };
    const upstream = net.connect({ host: target.spec.host, port: target.spec.port, noDelay: true });
    upstream.once('error', () => {
      // Nothing was sent yet: try another target.
      settle();
      target.recordFailure(Date.now());
      upstream.destroy();
      attempt();
    });
    upstream.once('connect', () => {
      upstream.removeAllListeners('error');
      target.tunnels.delete(connecting);
      bridge(target, client, upstream, websocket, closeAsked);
      upstream.write(requestHead);
      if (head.length) upstream.write(head);
    });
  };
  attempt();
}

function bridge(
  target: Target,
  client: Socket,
  upstream: Socket,
  websocket: boolean,
  closeAsked: boolean,
): void {
  // Server-to-client bytes begin with the HTTP response head; frames start after it.
  let inHead = true;
  let headTail = '';
  const down = new FrameCursor();
  const up = new FrameCursor();
  let closing = false;
  let downClosed = false;
  let upClosed = false;

  const entry = { socket: client, close: (): void => beginClose() };
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
    if (inHead) {
      const text = headTail + chunk.toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      if (end < 0) {
        headTail = text.slice(-3);
        return chunk;
      }
      inHead = false;
      const rest = chunk.subarray(Math.max(0, end + 4 - headTail.length));
      if (websocket) down.advance(rest);
      if (closing && websocket) {
        // A drain began during the handshake: the client gets its answer, then the Close frames.
        client.write(chunk);
        if (/^HTTP\/1\.[01] 101 /.test(text)) sendCloses();
        setTimeout(finish, CLOSE_GRACE_MS).unref();
        return null;
      }
      return chunk;
    }
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
    if (!closing || inHead) {
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
    // A WebSocket handshake under way is let finish (the relay above closes right after the
    // answer): ending the sockets now would leave the client without any answer.
    if (websocket && inHead) return;
    if (!websocket) {
      client.end();
      upstream.end();
    } else sendCloses();
    setTimeout(finish, CLOSE_GRACE_MS).unref();
  }

  // The client left while we connected; or a drain asked to close before the tunnel was bridged.
  if (client.destroyed) finish();
  else if (closeAsked) beginClose();
}
