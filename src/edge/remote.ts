// A built-in proxy on another machine as an edge: `edges: [{ type: builtin, admin: 10.0.0.2:9901 }]`.
// That machine runs `baton up` with a config of its own that has `listen:` and `admin:` but no
// `app:` and no `targets:` (an edge-only Baton); this one drives it through its edge API
// (src/admin/edge-routes.ts) with the admin token from $tokenEnv (BATON_ADMIN_TOKEN). Its proxy does the
// rest exactly as the local one would: atomic route swaps, drains that wait for requests in
// flight, canary counters, and health checks made from where it runs.
//
// Every call has a deadline; a call that fails (unreachable, refused, timed out) is an
// EdgeError naming the address. A route swap is one request: it happened entirely or not at
// all; when its answer is lost, the previous table is sent again so that what it serves is
// known (and the error says whether that worked).
import { request, type Agent } from 'undici';
import type {
  EdgeDrainAnswer,
  EdgeDrainBody,
  EdgeRoutesBody,
  EdgeStatsAnswer,
  EdgeStatsBody,
  EdgeTrafficAnswer,
  EdgeViewAnswer,
} from '../api/edge.js';
import type { ApiErrorBody } from '../api/error.js';
import type { HealthAnswer } from '../api/health.js';
import { EDGE_API_PREFIX, PATHS } from '../api/paths.js';
import { adminEndpoint } from '../admin/endpoint.js';
import { formatAddress, type ListenAddress } from '../config/address.js';
import type { EdgeConfig } from '../config/schema.js';
import { messageOf } from '../errors.js';
import { BUILTIN_CAPABILITIES } from './builtin/edge.js';
import {
  EdgeError,
  type DrainResult,
  type Edge,
  type EdgeOptions,
  type EdgeTargetView,
  type RouteSpec,
  type SplitSpec,
  type StatsSnapshot,
  type TrafficSnapshot,
} from './edge.js';
import { thenSentence } from '../util/text.js';

/** The details of an EdgeError for a call that may have arrived but got no answer. */
const NO_ANSWER = Object.freeze({ answered: false });

/** Failures before a connection existed: the request cannot have arrived. */
const NOT_CONNECTED = new Set([
  'ECONNREFUSED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ENOENT', // a unix socket that is not there
  'UND_ERR_CONNECT_TIMEOUT',
]);

export type RemoteBuiltinConfig = Extract<EdgeConfig, { type: 'builtin' }> & {
  readonly admin: ListenAddress;
};

/** How errors name it and what they advise (the local data plane's differ from a remote Baton's). */
export interface RemoteEdgeText {
  readonly describe: string;
  /** Said when the call did not get through. */
  readonly hint: string;
}

export class RemoteBuiltinEdge implements Edge {
  readonly kind = 'builtin';
  readonly describe: string;
  readonly can = BUILTIN_CAPABILITIES;
  private readonly origin: string;
  private dispatcher: Agent;
  private readonly address: ListenAddress;
  private readonly hint: string;
  private readonly timeoutMs: number;

  private readonly token: string | undefined;
  private readonly tokenEnv: string;
  /** The last route table it confirmed. */
  private applied: EdgeRoutesBody | null = null;

  constructor(
    cfg: RemoteBuiltinConfig,
    private readonly opts: EdgeOptions,
    env: NodeJS.ProcessEnv = process.env,
    text?: RemoteEdgeText,
  ) {
    const a = cfg.admin;
    this.address = a;
    this.tokenEnv = cfg.tokenEnv;
    this.token = env[cfg.tokenEnv] || undefined;
    this.describe = text?.describe ?? `the built-in proxy of the Baton at ${formatAddress(a)}`;
    this.hint =
      text?.hint ??
      'Check that `baton up` runs there with this admin address, and that this machine can reach it';
    this.timeoutMs = cfg.timeout;
    ({ origin: this.origin, dispatcher: this.dispatcher } = this.endpoint());
  }

  private endpoint(): { origin: string; dispatcher: Agent } {
    return adminEndpoint(this.address, { connectTimeoutMs: this.timeoutMs, keepAliveTimeoutMs: 4000 });
  }

  /** Sends the last confirmed table again (to a data plane started again from its file). */
  async reapply(): Promise<void> {
    if (this.applied) await this.call('PUT', PATHS.edgeRoutes, this.applied, 'take its routes again');
  }

  /**
   * Drops the kept-alive connections: after a handover another process answers at the same
   * address, and a request on a connection to the old one would be lost.
   */
  async reconnect(): Promise<void> {
    const old = this.dispatcher;
    this.dispatcher = this.endpoint().dispatcher;
    await old.close().catch(() => undefined);
  }

  /** Checks the Baton there answers, takes our token and is an edge-only Baton. */
  async start(): Promise<void> {
    const health = await this.call<Partial<HealthAnswer>>('GET', PATHS.health, undefined, 'answer');
    await this.call<EdgeViewAnswer>('GET', PATHS.edgeView, undefined, 'list its targets');
    this.opts.log.info({ edge: this.describe, remoteService: health.service }, 'remote built-in edge ready');
  }

  async apply(routes: readonly RouteSpec[], split: SplitSpec | null): Promise<void> {
    try {
      const body: EdgeRoutesBody = { routes, split };
      await this.call('PUT', PATHS.edgeRoutes, body, 'change its routes');
      this.applied = body;
    } catch (err) {
      const unanswered = (err as EdgeError).details === NO_ANSWER;
      if (!unanswered || this.applied === null) throw err;
      // No answer is not a refusal: the swap may have happened there. Put the table the
      // controller still believes in back, so that what it serves is known.
      const back = await this.call(
        'PUT',
        PATHS.edgeRoutes,
        this.applied,
        'take its previous routes back',
      ).then(
        () => true,
        () => false,
      );
      throw new EdgeError(
        `${messageOf(err)} ${back ? 'It has its previous routes again.' : 'Telling it to go back to its previous routes failed too: check what it serves (GET /v1/edge/view there).'}`,
        { cause: err },
      );
    }
  }

  async drain(ids: readonly string[], timeoutMs: number): Promise<DrainResult[]> {
    // The drain itself may take timeoutMs there: the answer gets that much more time.
    const body: EdgeDrainBody = { ids, timeoutMs };
    const r = await this.call<EdgeDrainAnswer>('POST', PATHS.edgeDrain, body, 'drain targets', timeoutMs);
    return r.results;
  }

  stats(ids: readonly string[]): Promise<StatsSnapshot> {
    const body: EdgeStatsBody = { ids };
    return this.call<EdgeStatsAnswer>('POST', PATHS.edgeStats, body, 'report its counters');
  }

  traffic(): Promise<TrafficSnapshot> {
    return this.call<EdgeTrafficAnswer>('GET', PATHS.edgeTraffic, undefined, 'report its traffic counters');
  }

  async view(): Promise<EdgeTargetView[]> {
    return (await this.call<EdgeViewAnswer>('GET', PATHS.edgeView, undefined, 'list its targets')).targets;
  }

  async close(): Promise<void> {
    await this.dispatcher.close();
  }

  private async call<T>(
    method: 'GET' | 'PUT' | 'POST',
    path: string,
    body: unknown,
    what: string,
    extraMs = 0,
  ): Promise<T> {
    const where = this.describe;
    const timeout = this.timeoutMs + extraMs;
    let status: number;
    let text: string;
    try {
      const res = await request(this.origin + path, {
        method,
        dispatcher: this.dispatcher,
        headers: {
          'content-type': 'application/json',
          ...(this.token ? { authorization: `Bearer ${this.token}` } : {}),
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        headersTimeout: timeout,
        bodyTimeout: timeout,
        signal: AbortSignal.timeout(timeout),
      });
      status = res.statusCode;
      text = await res.body.text();
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      // Not connected: the request never reached it. Connected, then nothing: it may have acted.
      const unsent = NOT_CONNECTED.has(e.code ?? '');
      throw new EdgeError(
        `${where} did not ${what}: ${e.code ?? e.name} (${messageOf(err)}), deadline ${timeout}ms. ` +
          this.hint +
          (unsent ? '; it got nothing, so whatever it routed before, it still routes.' : '.'),
        { cause: err, ...(unsent ? {} : { details: NO_ANSWER }) },
      );
    }
    let data: unknown = {};
    try {
      data = text ? JSON.parse(text) : {};
    } catch {
      // not JSON: quoted below
    }
    if (status >= 400) {
      const e = (data as Partial<ApiErrorBody>).error;
      const hint =
        status === 404 && path.startsWith(EDGE_API_PREFIX)
          ? ' It is not an edge-only Baton: its config must have listen: and admin:, and neither app: nor targets:.'
          : status === 401
            ? ` Set ${this.tokenEnv} here to the admin token that Baton was started with (edge tokenEnv names the variable).`
            : status === 403
              ? ` Write this edge's admin: as an IP address, or add its name to adminHosts: in the config of the Baton there.`
              : '';
      throw new EdgeError(
        thenSentence(
          `${where} refused to ${what}: ${status} ${e?.message ?? text.slice(0, 300)}`,
          `${hint.trimStart()}${hint ? ' ' : ''}Whatever it routed before, it still routes.`,
        ),
        { details: { status, error: e } },
      );
    }
    return data as T;
  }
}
