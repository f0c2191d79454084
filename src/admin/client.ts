// A client of a daemon's admin API (TCP or unix socket, bearer token from the env): the CLI's,
// and the demo's. Answers are typed with src/api/; an error answer becomes the BatonError it was.
import { request, type Agent, type Dispatcher } from 'undici';
import type { ApiErrorBody } from '../api/error.js';
import { formatAddress, type ListenAddress } from '../config/address.js';
import type { BatonConfig } from '../config/schema.js';
import { BatonError } from '../errors.js';
import { adminEndpoint } from './endpoint.js';

export class AdminClient {
  private readonly origin: string;
  private readonly dispatcher: Agent;

  constructor(
    private readonly address: ListenAddress,
    private readonly token = process.env.BATON_ADMIN_TOKEN,
  ) {
    ({ origin: this.origin, dispatcher: this.dispatcher } = adminEndpoint(address));
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

  /** `signal` cuts the call short (its error is then the abort's). */
  async call<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
    const res = await this.send(method, path, body, signal);
    const text = await res.body.text();
    const data: unknown = text ? JSON.parse(text) : {};
    if (res.statusCode >= 400) throw errorFrom(res.statusCode, data);
    return data as T;
  }

  /** Calls a streaming (NDJSON) endpoint, handing each line to `onEvent` as it arrives. */
  async stream<T>(
    method: string,
    path: string,
    body: unknown,
    onEvent: (event: T) => void,
    signal?: AbortSignal,
  ): Promise<void> {
    const res = await this.send(method, path, body, signal);
    if (res.statusCode >= 400) {
      const text = await res.body.text();
      throw errorFrom(res.statusCode, text ? (JSON.parse(text) as unknown) : {});
    }
    let buf = '';
    try {
      for await (const chunk of res.body) {
        buf += (chunk as Buffer).toString('utf8');
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          if (line.trim()) onEvent(JSON.parse(line) as T);
        }
      }
    } catch (err) {
      if (err instanceof BatonError) throw err;
      throw new BatonError(
        'BATON_E_DAEMON_UNREACHABLE',
        `the daemon on ${formatAddress(this.address)} broke off the answer (${codeOf(err)}): it stopped or crashed. ` +
          'Once it runs again it recovers one complete release; `baton status` shows which, and `baton history` the outcome.',
        { cause: err },
      );
    }
  }

  private async send(
    method: string,
    path: string,
    body?: unknown,
    signal?: AbortSignal,
  ): Promise<Dispatcher.ResponseData> {
    try {
      return await request(this.origin + path, {
        method: method as 'GET',
        dispatcher: this.dispatcher,
        headers: {
          // One request per connection: the CLI exits as soon as its answer is read.
          connection: 'close',
          'content-type': 'application/json',
          ...(this.token ? { authorization: `Bearer ${this.token}` } : {}),
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        ...(signal ? { signal } : {}),
        // Deploys stream for as long as they take.
        bodyTimeout: 0,
      });
    } catch (err) {
      const code = codeOf(err);
      // Connected, then the socket closed before an answer: the daemon is there but went away.
      if (code === 'UND_ERR_SOCKET' || code === 'ECONNRESET') {
        throw new BatonError(
          'BATON_E_DAEMON_UNREACHABLE',
          `the daemon on ${formatAddress(this.address)} closed the connection before it answered (${code}): it stopped or crashed. ` +
            'See its log; once it runs again, `baton status` shows what is live.',
          { cause: err },
        );
      }
      throw new BatonError(
        'BATON_E_DAEMON_UNREACHABLE',
        `no Baton daemon answers on ${formatAddress(this.address)} (${code}). ` +
          'Start it with: baton up -c baton.yaml',
        { cause: err },
      );
    }
  }
}

function codeOf(err: unknown): string {
  const e = err as { code?: unknown; name?: unknown } | null;
  return typeof e?.code === 'string' ? e.code : typeof e?.name === 'string' ? e.name : String(err);
}

function errorFrom(status: number, data: unknown): BatonError {
  // Something other than a Baton on that address may answer without an ApiErrorBody.
  const e = (data as Partial<ApiErrorBody>).error;
  return new BatonError(e?.code ?? 'BATON_E_INTERNAL', e?.message ?? `admin API answered ${status}`, {
    details: e?.details,
  });
}
