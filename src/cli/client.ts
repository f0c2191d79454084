// The CLI's client of the daemon's admin API (TCP or unix socket, bearer token from the env).
import { Agent, request } from 'undici';
import { formatAddress, type ListenAddress } from '../config/address.js';
import type { BatonConfig } from '../config/schema.js';
import { BatonError, type ErrorCode } from '../errors.js';

export class AdminClient {
  private readonly origin: string;
  private readonly dispatcher: Agent;

  constructor(
    private readonly address: ListenAddress,
    private readonly token = process.env.BATON_ADMIN_TOKEN,
  ) {
    if (address.kind === 'unix') {
      this.origin = 'http://localhost';
      this.dispatcher = new Agent({ connect: { socketPath: address.path } });
    } else {
      const host = address.host === '0.0.0.0' ? '127.0.0.1' : address.host === '::' ? '::1' : address.host;
      this.origin = `http://${host.includes(':') ? `[${host}]` : host}:${address.port}`;
      this.dispatcher = new Agent();
    }
  }

  static fromConfig(config: BatonConfig): AdminClient {
    if (!config.admin) {
      throw new BatonError(
        'BATON_E_CONFIG',
        `${config.file} has no "admin" address; add e.g. admin: 127.0.0.1:9901`,
      );
    }
    return new AdminClient(config.admin);
  }

  async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    let res;
    try {
      res = await request(this.origin + path, {
        method: method as 'GET',
        dispatcher: this.dispatcher,
        headers: {
          'content-type': 'application/json',
          ...(this.token ? { authorization: `Bearer ${this.token}` } : {}),
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
    } catch (err) {
      throw new BatonError(
        'BATON_E_DAEMON_UNREACHABLE',
        `no Baton daemon answers on ${formatAddress(this.address)} (${(err as NodeJS.ErrnoException).code ?? String(err)}). ` +
          'Start it with: baton up -c baton.yaml',
        { cause: err },
      );
    } finally {
      void this.dispatcher.close();
    }
    const text = await res.body.text();
    const data: unknown = text ? JSON.parse(text) : {};
    if (res.statusCode >= 400) {
      const e = (data as { error?: { code?: ErrorCode; message?: string; details?: unknown } }).error;
      throw new BatonError(
        e?.code ?? 'BATON_E_INTERNAL',
        e?.message ?? `admin API answered ${res.statusCode}`,
        {
          details: e?.details,
        },
      );
    }
    return data as T;
  }
}
