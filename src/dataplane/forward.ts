// The controller's admin API answers the proxy's endpoints (targets, drains, the proxy's
// metrics) for a proxy that runs in the data plane process: each call is passed on to the data
// plane's socket as it came, and its answer back as it went.
import { request, type Dispatcher } from 'undici';
import { DATAPLANE_PATHS, PATHS } from '../api/paths.js';
import { adminEndpoint } from '../admin/endpoint.js';
import type { AdminServer } from '../admin/server.js';
import { BatonError, messageOf } from '../errors.js';
import { thenSentence } from '../util/text.js';
import type { DataPlanePaths } from './paths.js';
import type { HandoverResult } from './upgrade.js';

/** Drains may take their timeout: the answer gets up to an hour (as the drain endpoint allows). */
const FORWARD_TIMEOUT_MS = 3_600_000;

const FORWARDED: ReadonlyArray<readonly [string, string]> = [
  ['GET', PATHS.targets],
  ['POST', PATHS.targets],
  ['PATCH', PATHS.target],
  ['DELETE', PATHS.target],
  ['POST', PATHS.targetDrain],
  ['POST', PATHS.targetUndrain],
];

export class DataPlaneClient {
  private readonly origin: string;
  private readonly dispatcher: Dispatcher;

  constructor(private readonly paths: DataPlanePaths) {
    ({ origin: this.origin, dispatcher: this.dispatcher } = adminEndpoint(
      { kind: 'unix', path: paths.socket },
      { connectTimeoutMs: 5000, keepAliveTimeoutMs: 1000 },
    ));
  }

  /** One call, as it came; the answer's status, type and body as they went. */
  async call(
    method: string,
    pathAndQuery: string,
    body?: string,
    timeoutMs = FORWARD_TIMEOUT_MS,
  ): Promise<{ status: number; contentType: string; text: string }> {
    try {
      const res = await request(this.origin + pathAndQuery, {
        method: method,
        dispatcher: this.dispatcher,
        headers: body !== undefined ? { 'content-type': 'application/json' } : {},
        ...(body !== undefined ? { body } : {}),
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
      const contentType = String(res.headers['content-type'] ?? 'application/json');
      return { status: res.statusCode, contentType, text: await res.body.text() };
    } catch (err) {
      throw new BatonError(
        'BATON_E_EDGE',
        thenSentence(
          `the data plane did not answer ${method} ${pathAndQuery} on ${this.paths.socket}: ${messageOf(err)}`,
          `Its log is ${this.paths.log}.`,
        ),
        { cause: err },
      );
    }
  }

  /** The proxy's own metrics (per target), as Prometheus text. */
  async metrics(): Promise<string> {
    const r = await this.call('GET', PATHS.metrics, undefined, 10_000);
    if (r.status !== 200)
      throw new BatonError('BATON_E_EDGE', `the data plane's /metrics answered ${r.status}`);
    return r.text;
  }

  /** `baton upgrade`: the data plane hands over to a new one (src/dataplane/upgrade.ts). */
  async upgrade(): Promise<HandoverResult> {
    const r = await this.call('POST', DATAPLANE_PATHS.upgrade, '{}', 120_000);
    const data = JSON.parse(r.text) as HandoverResult & { error?: { code: string; message: string } };
    if (r.status !== 200) {
      throw new BatonError('BATON_E_EDGE', data.error?.message ?? `the data plane answered ${r.status}`);
    }
    return data;
  }

  /** SIGHUP: it re-reads tls:'s certificates; false when it refused them (its log says why). */
  async reloadCertificates(): Promise<boolean> {
    const r = await this.call('POST', DATAPLANE_PATHS.certificates, '{}', 10_000);
    return r.status === 200 && (JSON.parse(r.text) as { reloaded?: boolean }).reloaded === true;
  }

  /** Asks it to stop (it answers, then finishes its requests and exits). */
  async stop(): Promise<void> {
    await this.call('POST', DATAPLANE_PATHS.stop, '{}', 10_000);
  }

  close(): Promise<void> {
    return this.dispatcher.close();
  }
}

export function registerDataPlaneForwards(admin: AdminServer, client: DataPlaneClient): void {
  for (const [method, path] of FORWARDED) {
    admin.route(method, path, async (r) => {
      const body = method === 'GET' || method === 'DELETE' ? undefined : JSON.stringify(await r.json());
      const answer = await client.call(method, r.url.pathname + r.url.search, body);
      return { status: answer.status, text: answer.text, contentType: answer.contentType };
    });
  }
}
