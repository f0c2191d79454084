// Writes on the raw engine's plain-TCP sockets straight to the kernel when nothing is queued:
// one write(2) through fs.writeSync on the socket's descriptor, without net's per-write request
// object, stream bookkeeping and nextTick (half of the bytes the raw engine still allocated per
// request after the read path went to a shared buffer, by heap sampling under
// `npm run bench:proxy`, issue #16). libuv itself tries the same write(2) first (uv_try_write):
// its descriptors are non-blocking, so this never waits. What the kernel does not take at once
// (a full send buffer: a short write or EAGAIN), and every error, goes through socket.write
// behind it, which queues it, reports 'drain' and turns errors into the socket's 'error' as ever;
// a socket with anything queued, corked, connecting or ending is written through the stream
// only, so bytes never overtake each other.
import { writeSync } from 'node:fs';
import type { Socket } from 'node:net';

type WithHandle = Socket & { _handle?: { fd?: number; writeQueueSize?: number } | null; encrypted?: boolean };

/** Writes `b` to `socket`; the return value is socket.write's (false: wait for 'drain'). */
export function writeDirect(socket: Socket, b: Buffer): boolean {
  const s = socket as WithHandle;
  const handle = s._handle;
  const fd = handle?.fd;
  if (
    fd === undefined ||
    fd < 0 ||
    s.encrypted === true ||
    socket.writableLength !== 0 ||
    socket.writableCorked !== 0 ||
    handle!.writeQueueSize !== 0 ||
    !socket.writable ||
    socket.connecting
  ) {
    return socket.write(b);
  }
  let n = 0;
  try {
    n = writeSync(fd, b);
  } catch {
    // EAGAIN (nothing taken), or an error the stream's own write reports properly.
  }
  if (n === b.length) return true;
  return socket.write(n === 0 ? b : b.subarray(n));
}
