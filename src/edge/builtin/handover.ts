// The built-in proxy's listener across processes (issue #14). It listens on a bound address or on
// a socket it did not bind: the one an older proxy process hands over (`child.send(msg, server)`)
// or systemd's (LISTEN_FDS, `{ fd: 3 }`). After handing its own listener to a new process, it
// retires without a gap: it stops accepting (the kernel socket stays open, the new process
// accepts on it), answers what still comes on its open connections with `Connection: close`,
// closes keep-alive connections only once they have stayed idle, sends WebSockets a Close frame
// (1001 going away), and closes what is left at a deadline.
import net, { type Socket } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { formatAddress, type ListenAddress } from '../../config/address.js';
import { BatonError } from '../../errors.js';
import type { Tunnel } from './target.js';

/**
 * A listening socket the proxy did not bind: a net.Server (or anything with a `_handle`, as a
 * handle received over IPC), or a file descriptor (systemd socket activation passes fd 3).
 */
export type ListenSource = net.Server | { readonly _handle: object } | { readonly fd: number };

/** Listens on `from`, or binds `address` when there is none. */
export function listenOn(server: net.Server, address: ListenAddress, from?: ListenSource): Promise<void> {
  const where =
    from === undefined
      ? formatAddress(address)
      : 'fd' in from
        ? `the inherited file descriptor ${from.fd}`
        : 'the socket handed over by the previous proxy';
  if (from instanceof net.Server && from !== server && from.listenerCount('connection') === 0) {
    // Node wraps a server handle received over IPC in a plain net.Server that listens at once:
    // a connection it accepted before we took the handle over would hang there. Ours serves it.
    from.on('connection', (s: Socket) => server.emit('connection', s));
  }
  return new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      const why =
        err.code === 'EADDRINUSE'
          ? 'the address is in use (another proxy or app listens there?)'
          : from === undefined
            ? err.message
            : `${err.message} (it must be a listening TCP or unix socket; systemd passes it with LISTEN_FDS from a .socket unit)`;
      reject(new BatonError('BATON_E_LISTEN', `cannot listen on ${where}: ${why}`, { cause: err }));
    };
    server.once('error', onError);
    const done = (): void => {
      server.off('error', onError);
      resolve();
    };
    if (from !== undefined) server.listen(from, done);
    else if (address.kind === 'unix') server.listen(address.path, done);
    else server.listen(address.port, address.host, done);
  });
}

/**
 * Closes the listening handle of this process only. Not http.Server.close(): since Node 19 that
 * also closes every idle keep-alive connection at once, which races a client sending its next
 * request on one (it would see a reset). Those are the retirement's to close, once idle.
 */
export function stopAccepting(server: net.Server): void {
  if (server.listening) net.Server.prototype.close.call(server);
}

/** What a retirement did. */
export interface RetireResult {
  /**
   * Requests that ended while retiring: in flight when it began, or arriving on connections
   * already open (each of those answered with `Connection: close`).
   */
  readonly requests: number;
  /** Keep-alive connections closed after staying idle for the grace. */
  readonly idleClosed: number;
  /** WebSocket tunnels sent a Close frame (1001 going away). */
  readonly websocketsClosed: number;
  /**
   * Connections still open at the deadline, closed then: requests still running, tunnels of
   * other upgraded protocols, WebSockets whose peers did not close.
   */
  readonly forced: number;
  readonly waitedMs: number;
}

/** What a retirement sees of its proxy. */
export interface RetireHost {
  /** Every open client connection, tunnels included. */
  readonly connections: ReadonlySet<Socket>;
  /** Connections counted apart: HTTP/2 sessions (they end by GOAWAY), TLS handshakes under way. */
  others(): number;
  /** Every tunnel: upgraded, or waiting for the target's answer to its upgrade. */
  tunnels(): Iterable<Tunnel>;
  /** close() took over: the retirement stops waiting. */
  closing(): boolean;
}

/** How long a keep-alive connection stays idle before a retiring proxy closes it. */
export const IDLE_GRACE_MS = 1000;

/**
 * Consecutive sweeps that must see a connection idle before it is closed, besides the grace:
 * after an event-loop stall the grace may look over in one sweep while the client's next
 * request is only about to be written; the sweeps after it give that request time to show.
 */
const IDLE_SWEEPS = 3;

interface IdleSeen {
  since: number;
  read: number;
  sweeps: number;
}

export class Retirement {
  /** Requests ended since it began (the proxy counts them). */
  requests = 0;
  private idleClosed = 0;
  private websocketsClosed = 0;
  private readonly started = Date.now();
  private readonly asked = new WeakSet<Tunnel>();
  private readonly idle = new WeakMap<Socket, IdleSeen>();
  private readonly sweepMs: number;

  constructor(
    private readonly host: RetireHost,
    /** IDLE_GRACE_MS, or proxy.clientIdleTimeout when shorter. */
    private readonly graceMs: number,
  ) {
    this.sweepMs = Math.min(100, Math.max(10, Math.floor(graceMs / 5)));
  }

  /**
   * Sweeps until no connection is left, close() takes over, or the deadline passes; returns how
   * many connections are left (for the caller to close).
   */
  async run(deadline: number): Promise<number> {
    for (;;) {
      const now = Date.now();
      this.sweep(now);
      const open = this.host.connections.size + this.host.others();
      if (open === 0 || this.host.closing() || now >= deadline) {
        return this.host.closing() ? 0 : open;
      }
      await delay(Math.min(this.sweepMs, deadline - now));
    }
  }

  result(forced: number): RetireResult {
    return {
      requests: this.requests,
      idleClosed: this.idleClosed,
      websocketsClosed: this.websocketsClosed,
      forced,
      waitedMs: Date.now() - this.started,
    };
  }

  private sweep(now: number): void {
    const tunnelled = new Set<unknown>();
    for (const t of this.host.tunnels()) {
      tunnelled.add(t.socket);
      // A WebSocket is told to go (its peer reconnects, to the new process); a tunnel still
      // waiting for its 101 gets its Close frames right after it.
      if (t.websocket && !this.asked.has(t)) {
        this.asked.add(t);
        this.websocketsClosed++;
        t.close();
      }
    }
    for (const s of this.host.connections) {
      // A response under way (it goes out with Connection: close if its head is still to be
      // written), or a connection already closing.
      if (tunnelled.has(s) || !s.writable || (s as Socket & { _httpMessage?: unknown })._httpMessage) {
        this.idle.delete(s);
        continue;
      }
      const read = s.bytesRead;
      const seen = this.idle.get(s);
      if (seen === undefined || seen.read !== read) {
        // Newly idle, or bytes of a next request came in since: the grace starts again.
        this.idle.set(s, { since: now, read, sweeps: 1 });
        continue;
      }
      if (++seen.sweeps >= IDLE_SWEEPS && now - seen.since >= this.graceMs) {
        this.idle.delete(s);
        this.idleClosed++;
        s.destroy();
      }
    }
  }
}
