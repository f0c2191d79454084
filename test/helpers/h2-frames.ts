// HTTP/2 frames written by hand over TLS (ALPN h2), for the flood tests: what a well-behaved
// client library would never send (thousands of HEADERS+RST_STREAM pairs, PING and SETTINGS
// floods, more streams than the server allows). Header blocks use HPACK literals with indexed
// names from the static table (RFC 7541 Appendix A), no Huffman: enough for a GET.
import tls from 'node:tls';

export const FRAME = { DATA: 0, HEADERS: 1, RST_STREAM: 3, SETTINGS: 4, PING: 6, GOAWAY: 7 } as const;
export const FLAG = { END_STREAM: 1, ACK: 1, END_HEADERS: 4 } as const;
export const ERROR = { NO_ERROR: 0, PROTOCOL_ERROR: 1, REFUSED_STREAM: 7, CANCEL: 8, ENHANCE_YOUR_CALM: 11 };

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

export function frame(
  type: number,
  flags: number,
  stream: number,
  payload: Buffer = Buffer.alloc(0),
): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(stream & 0x7fffffff, 5);
  return Buffer.concat([head, payload]);
}

/** A literal field without indexing, its name indexed in the static table. */
function literal(nameIndex: number, value: string): Buffer {
  const v = Buffer.from(value, 'latin1');
  if (v.length > 126) throw new Error('value too long for this encoder');
  return Buffer.concat([Buffer.from([nameIndex & 0x0f, v.length]), v]);
}

/** A literal field without indexing, with a literal name. */
function literalNamed(name: string, value: string): Buffer {
  const n = Buffer.from(name, 'latin1');
  const v = Buffer.from(value, 'latin1');
  if (n.length > 126 || v.length > 126) throw new Error('too long for this encoder');
  return Buffer.concat([Buffer.from([0x00, n.length]), n, Buffer.from([v.length]), v]);
}

/** HEADERS for `GET path` (END_STREAM unless `endStream` is false), plus `extra` fields. */
export function getHeaders(
  stream: number,
  authority: string,
  path: string,
  extra: [string, string][] = [],
  endStream = true,
): Buffer {
  const block = Buffer.concat([
    Buffer.from([0x82, 0x87]), // :method GET, :scheme https
    literal(1, authority),
    literal(4, path),
    ...extra.map(([n, v]) => literalNamed(n, v)),
  ]);
  return frame(FRAME.HEADERS, (endStream ? FLAG.END_STREAM : 0) | FLAG.END_HEADERS, stream, block);
}

export function rst(stream: number, code: number = ERROR.CANCEL): Buffer {
  const p = Buffer.alloc(4);
  p.writeUInt32BE(code);
  return frame(FRAME.RST_STREAM, 0, stream, p);
}

export function ping(n: number): Buffer {
  const p = Buffer.alloc(8);
  p.writeUInt32BE(n >>> 0, 4);
  return frame(FRAME.PING, 0, 0, p);
}

export const emptySettings = (): Buffer => frame(FRAME.SETTINGS, 0, 0);

export interface ReadFrame {
  readonly type: number;
  readonly flags: number;
  readonly stream: number;
  readonly payload: Buffer;
}

/** An h2 connection of raw frames: what the server sent, and whether it closed. */
export interface RawH2 {
  readonly socket: tls.TLSSocket;
  readonly frames: ReadFrame[];
  readonly closed: () => boolean;
  /** The GOAWAY the server sent (its error code), or null. */
  goaway(): { code: number; lastStream: number } | null;
  write(data: Buffer): void;
}

/** Connects with ALPN h2 (no certificate check: the frames are the point), sends the preface. */
export function connectRawH2(port: number, servername: string): Promise<RawH2> {
  return new Promise((resolve, reject) => {
    const frames: ReadFrame[] = [];
    let buf = Buffer.alloc(0);
    let closed = false;
    const socket = tls.connect(
      { host: '127.0.0.1', port, servername, ALPNProtocols: ['h2'], rejectUnauthorized: false },
      () => {
        if (socket.alpnProtocol !== 'h2') return reject(new Error(`ALPN chose ${socket.alpnProtocol}`));
        socket.write(Buffer.concat([PREFACE, emptySettings()]));
        resolve({
          socket,
          frames,
          closed: () => closed,
          goaway: () => {
            const g = frames.find((f) => f.type === FRAME.GOAWAY);
            return g
              ? { lastStream: g.payload.readUInt32BE(0) & 0x7fffffff, code: g.payload.readUInt32BE(4) }
              : null;
          },
          write: (data) => {
            if (!socket.destroyed) socket.write(data);
          },
        });
      },
    );
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 9) {
        const len = buf.readUIntBE(0, 3);
        if (buf.length < 9 + len) break;
        frames.push({
          type: buf[3]!,
          flags: buf[4]!,
          stream: buf.readUInt32BE(5) & 0x7fffffff,
          payload: buf.subarray(9, 9 + len),
        });
        buf = buf.subarray(9 + len);
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => (closed = true));
    socket.once('error', reject);
  });
}
