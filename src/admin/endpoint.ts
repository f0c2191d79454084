// Where a client reaches a Baton's admin API (the CLI, or another Baton driving this one's proxy
// as an edge): the URL origin and an undici dispatcher for its address, TCP or a unix socket. A
// wildcard listen address is reached on loopback.
import { Agent } from 'undici';
import type { ListenAddress } from '../config/address.js';

export function adminEndpoint(
  address: ListenAddress,
  { connectTimeoutMs, keepAliveTimeoutMs }: { connectTimeoutMs?: number; keepAliveTimeoutMs?: number } = {},
): { origin: string; dispatcher: Agent } {
  const timeout = connectTimeoutMs === undefined ? {} : { timeout: connectTimeoutMs };
  const keepAlive = keepAliveTimeoutMs === undefined ? {} : { keepAliveTimeout: keepAliveTimeoutMs };
  if (address.kind === 'unix') {
    return {
      origin: 'http://localhost',
      dispatcher: new Agent({ connect: { socketPath: address.path, ...timeout }, ...keepAlive }),
    };
  }
  const host = address.host === '0.0.0.0' ? '127.0.0.1' : address.host === '::' ? '::1' : address.host;
  return {
    origin: `http://${host.includes(':') ? `[${host}]` : host}:${address.port}`,
    dispatcher: new Agent({ connect: timeout, ...keepAlive }),
  };
}
