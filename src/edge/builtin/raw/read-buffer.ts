// Plain-TCP client sockets of the raw engine read into one shared buffer, as the upstream sockets
// do with net's `onread` option: no Buffer, no stream push, no 'data' event and no nextTick per
// read (the stream read path made about a sixth of the bytes allocated per proxied request, by
// heap sampling under `npm run bench:proxy`, issue #16). net offers `onread` only to sockets it
// connects; an accepted socket gets the same two slots set (found by their names on a socket
// made with `onread`, so nothing is assumed of Node's internals but that they exist) and
// `useUserBuffer` called on its handle, as net itself does. Where any of that is missing (another
// Node, a TLS socket, bytes already buffered in the stream), the socket stays on 'data' events.
//
// Nothing may keep a view of CLIENT_READ_BUFFER past the read's callback: the next read on any
// client socket overwrites it (client.ts copies the bytes it keeps, request-view.ts the head).
import net, { type Socket } from 'node:net';

export const CLIENT_READ_BUFFER = Buffer.allocUnsafe(64 * 1024);

/** Called with each read's length (its bytes: CLIENT_READ_BUFFER[0, n)); false stops reading. */
export type ReadCallback = (n: number, buf: Buffer) => boolean;

// @types/node types `onread` for net.connect only; net.Socket takes it too (Node 12+).
const probe = new net.Socket({
  onread: { buffer: Buffer.alloc(1), callback: () => true },
} as net.SocketConstructorOpts);
const slot = (name: string): symbol | undefined =>
  Object.getOwnPropertySymbols(probe).find((s) => s.description === name);
const kBuffer = slot('kBuffer');
const kBufferCb = slot('kBufferCb');
const kBufferGen = slot('kBufferGen');
probe.destroy();

type Slots = Socket &
  Record<symbol, unknown> & {
    _handle?: { useUserBuffer?: (b: Uint8Array) => void } | null;
    encrypted?: boolean;
  };

/** Sends the socket's reads to `onRead` in CLIENT_READ_BUFFER; false: not possible here. */
export function readIntoShared(socket: Socket, onRead: ReadCallback): boolean {
  if (kBuffer === undefined || kBufferCb === undefined || kBufferGen === undefined) return false;
  const s = socket as Slots;
  const handle = s._handle;
  if (handle == null || typeof handle.useUserBuffer !== 'function') return false;
  if (s.encrypted === true || socket.readableLength > 0 || s[kBufferGen] != null) return false;
  // A connection handed back by node:http (proxy.ts reuseConnection) has the buffer already.
  if (s[kBuffer] !== CLIENT_READ_BUFFER) {
    if (s[kBuffer] != null) return false;
    handle.useUserBuffer(CLIENT_READ_BUFFER);
    s[kBuffer] = CLIENT_READ_BUFFER;
  }
  s[kBufferCb] = onRead;
  return true;
}

/** The socket's reads as 'data' events again (node:http takes it): each one copied and pushed. */
export function readAsStream(socket: Socket): void {
  const s = socket as Slots;
  if (kBuffer === undefined || kBufferCb === undefined || s[kBuffer] !== CLIENT_READ_BUFFER) return;
  s[kBufferCb] = (n: number, buf: Buffer): boolean => socket.push(Buffer.from(buf.subarray(0, n)));
}
