// Where the data plane of a stateDir lives: its admin socket (the controller drives it there),
// its pid file (the lock, identity-checked like daemon.pid), the route table it last served
// (it comes back with it after its own restart) and its log.
import { createHash } from 'node:crypto';
import os from 'node:os';
import { lstatSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { BatonError } from '../errors.js';

export interface DataPlanePaths {
  readonly socket: string;
  readonly pidFile: string;
  readonly routes: string;
  readonly log: string;
}

/**
 * The address a data plane started again binds instead of `listen:`: the one its predecessor
 * had (a `listen:` with port 0 would get another port).
 */
export const LISTEN_ADDRESS_ENV = 'BATON_DATAPLANE_LISTEN';

/**
 * The fd of an inherited listening socket: systemd's, passed on by `baton up` (fd 3), or the
 * old data plane's at an upgrade (fd 4).
 */
export const LISTEN_FD_ENV = 'BATON_LISTEN_FD';

/** The fd of redirectHttp's listening socket, handed to the new data plane at an upgrade (fd 5). */
export const REDIRECT_FD_ENV = 'BATON_REDIRECT_FD';

/** Unix socket paths are limited to 107 bytes on Linux; a deep stateDir gets one in the temp folder. */
const MAX_SOCKET_PATH = 100;

export function dataPlanePaths(stateDir: string): DataPlanePaths {
  const inState = path.join(stateDir, 'dataplane.sock');
  const socket =
    Buffer.byteLength(inState) <= MAX_SOCKET_PATH
      ? inState
      : path.join(
          privateTmp(),
          `dataplane-${createHash('sha256').update(path.resolve(stateDir)).digest('hex').slice(0, 16)}.sock`,
        );
  return {
    socket,
    pidFile: path.join(stateDir, 'dataplane.pid'),
    routes: path.join(stateDir, 'dataplane-routes.json'),
    log: path.join(stateDir, 'logs', 'dataplane.log'),
  };
}

/** A folder of this user's in the temp folder, for sockets whose stateDir path is too long. */
function privateTmp(): string {
  return path.join(os.tmpdir(), `baton-${process.getuid?.() ?? 'user'}`);
}

/**
 * The folder of the admin socket exists, is this user's own and nobody else's (0700, not a
 * link): in the shared temp folder another user could have made it first, to be adopted as the
 * data plane.
 */
export function ensureSocketDir(paths: DataPlanePaths): void {
  const dir = path.dirname(paths.socket);
  if (dir !== privateTmp()) return; // stateDir: the user's own
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = lstatSync(dir);
  const uid = process.getuid?.();
  if (!st.isDirectory() || (uid !== undefined && st.uid !== uid) || (st.mode & 0o077) !== 0) {
    throw new BatonError(
      'BATON_E_STATE',
      `${dir}, the folder of the data plane's socket, is not a folder of this user's alone (owner ${st.uid}, mode ${(st.mode & 0o777).toString(8)}): remove it, or give stateDir a shorter path (the socket then lives in stateDir)`,
    );
  }
}

/** The fd of a listening server (for a child to inherit), or null when Node does not say. */
export function listeningFd(server: unknown): number | null {
  const fd = (server as { _handle?: { fd?: unknown } } | null | undefined)?._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : null;
}
