// Where the data plane of a stateDir lives: its admin socket (the controller drives it there),
// its pid file (the lock, identity-checked like daemon.pid), the route table it last served
// (it comes back with it after its own restart) and its log.
import { createHash } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';

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

/** Unix socket paths are limited to 107 bytes on Linux; a deep stateDir gets one in the temp folder. */
const MAX_SOCKET_PATH = 100;

export function dataPlanePaths(stateDir: string): DataPlanePaths {
  const inState = path.join(stateDir, 'dataplane.sock');
  const socket =
    Buffer.byteLength(inState) <= MAX_SOCKET_PATH
      ? inState
      : path.join(
          os.tmpdir(),
          `baton-dataplane-${createHash('sha256').update(path.resolve(stateDir)).digest('hex').slice(0, 16)}.sock`,
        );
  return {
    socket,
    pidFile: path.join(stateDir, 'dataplane.pid'),
    routes: path.join(stateDir, 'dataplane-routes.json'),
    log: path.join(stateDir, 'logs', 'dataplane.log'),
  };
}
