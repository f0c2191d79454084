// The admin API: JSON over HTTP on `admin` (TCP or a unix socket). A bearer token from
// BATON_ADMIN_TOKEN is required whenever it is set, and always when the API listens beyond
// loopback; requests that may come from a web page are refused before that (guard.ts). Routes
// are registered by the daemon's parts; the CLI is a thin client of them. The dashboard
// (src/dashboard/) adds cookie sessions: a session stands for the token only with its CSRF
// token in a header (GETs too), and on a state-changing request with the page's own Origin.
import { timingSafeEqual } from 'node:crypto';
import { chmodSync, existsSync, unlinkSync } from 'node:fs';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { ApiErrorBody } from '../api/error.js';
import { formatAddress, isLocalOnly, type ListenAddress } from '../config/address.js';
import { DEFAULTS } from '../config/defaults.js';
import { BatonError, isBatonError, messageOf } from '../errors.js';
import type { Logger } from '../log.js';
import type { z } from 'zod';
import { guardRequest, type GuardOptions } from './guard.js';

export interface AdminRequest {
  readonly req: IncomingMessage;
  readonly url: URL;
  readonly params: Readonly<Record<string, string>>;
  /** The JSON body ({} when empty); a malformed one is a 400. */
  json(): Promise<Record<string, unknown>>;
  /** The JSON body checked against `schema`; every problem is listed in the 400. */
  body<T>(schema: z.ZodType<T>): Promise<T>;
  /** True once the client has gone away (for long waits such as drains). */
  readonly signal: AbortSignal;
  /** The token was given (bearer or session), or none is needed; open routes read it. */
  readonly authenticated: boolean;
}

/** An answer: `json` (typed with the endpoint's answer type from src/api/), or `text`. */
export interface AdminReply<T = unknown> {
  readonly status?: number;
  readonly json?: T;
  readonly text?: string;
  readonly contentType?: string;
  /** More headers (Set-Cookie, the dashboard's security headers). */
  readonly headers?: Readonly<Record<string, string>>;
}

/** Cookie sessions (src/dashboard/sessions.ts): the CSRF token of the request's session. */
export interface SessionCheck {
  /** The CSRF token of the live session this request's cookie names; null: none. */
  csrfOf(req: IncomingMessage): string | null;
}

/** The header every request of a session carries its CSRF token in. */
export const CSRF_HEADER = 'x-baton-csrf';

export type AdminHandler<T = unknown> = (r: AdminRequest) => Promise<AdminReply<T>> | AdminReply<T>;

/** Raw access for streaming endpoints (deploy progress): the handler owns `res`. */
export type AdminStreamHandler = (r: AdminRequest, res: ServerResponse) => Promise<void>;

interface Route {
  readonly method: string;
  readonly pattern: RegExp;
  readonly names: string[];
  readonly handler: AdminHandler | null;
  readonly stream: AdminStreamHandler | null;
  /** Answered without the token (the guard still applies): the login page and its assets. */
  readonly open: boolean;
}

/** Options of a route. */
export interface RouteOptions {
  /** Answered without the token; the handler reads `authenticated`. */
  readonly open?: boolean;
}

const MAX_BODY = 64 * 1024;

export interface AdminServerOptions {
  /** The bearer token callers must send (default: $BATON_ADMIN_TOKEN; empty: none). */
  readonly token?: string | undefined;
  /** `adminHosts:`, read at each request (a SIGHUP reload applies). */
  readonly hosts?: () => readonly string[];
}

export class AdminServer {
  private readonly routes: Route[] = [];
  private readonly server: http.Server;
  private readonly token: string | undefined;
  private readonly sockets = new Set<Socket>();
  private readonly guard: GuardOptions;
  private sessions: SessionCheck | null = null;
  /** Called after each state-changing request answered (the dashboard pushes a new view). */
  private readonly changed = new Set<() => void>();
  private readonly closing = new Set<() => void>();
  private abandoned = false;

  constructor(
    private readonly address: ListenAddress,
    private readonly log: Logger,
    { token = process.env.BATON_ADMIN_TOKEN, hosts = () => DEFAULTS.adminHosts }: AdminServerOptions = {},
  ) {
    this.token = token || undefined;
    this.guard = { ownHost: address.kind === 'tcp' ? address.host : null, hosts };
    if (!this.token && !isLocalOnly(address)) {
      throw new BatonError(
        'BATON_E_CONFIG',
        `admin listens on ${formatAddress(address)}, beyond loopback, but BATON_ADMIN_TOKEN is not set. ` +
          'Set BATON_ADMIN_TOKEN (clients send it as "Authorization: Bearer <token>") or listen on 127.0.0.1 or a unix socket.',
      );
    }
    this.server = http.createServer({ headersTimeout: 10_000, requestTimeout: 0 }, (req, res) => {
      void this.dispatch(req, res);
    });
    this.server.on('connection', (s: Socket) => {
      if (this.abandoned) {
        s.destroy();
        return;
      }
      this.sockets.add(s);
      s.once('close', () => this.sockets.delete(s));
    });
  }

  /**
   * Registers `handler` for `method` and a path like "/v1/targets/:id/drain" (PATHS in
   * src/api/paths.ts); `T` is what it answers.
   */
  route<T>(method: string, path: string, handler: AdminHandler<T>, options: RouteOptions = {}): void {
    this.add(method, path, handler, null, options);
  }

  stream(method: string, path: string, handler: AdminStreamHandler, options: RouteOptions = {}): void {
    this.add(method, path, null, handler, options);
  }

  /** Whether a token is needed (BATON_ADMIN_TOKEN set). */
  get tokenRequired(): boolean {
    return this.token !== undefined;
  }

  /** Whether `given` is the admin token (in constant time). */
  isToken(given: string): boolean {
    if (!this.token) return false;
    const a = Buffer.from(given);
    const b = Buffer.from(this.token);
    return a.length === b.length && timingSafeEqual(a, b);
  }

  /** Cookie sessions stand for the token from now on (the dashboard's login). */
  useSessions(sessions: SessionCheck): void {
    this.sessions = sessions;
  }

  /** `listener` runs when the admin API closes (daemon shutdown), before its sockets go. */
  onClose(listener: () => void): void {
    this.closing.add(listener);
  }

  /** `listener` runs after every state-changing request answered. */
  onChange(listener: () => void): void {
    this.changed.add(listener);
  }

  private add(
    method: string,
    path: string,
    handler: AdminHandler | null,
    stream: AdminStreamHandler | null,
    { open = false }: RouteOptions,
  ): void {
    const names: string[] = [];
    const source = path.replace(/:(\w+)/g, (_, name: string) => {
      names.push(name);
      return '([^/]+)';
    });
    this.routes.push({ method, pattern: new RegExp(`^${source}$`), names, handler, stream, open });
  }

  /** The unix socket's path, or undefined for TCP. */
  get path(): string | undefined {
    return this.address.kind === 'unix' ? this.address.path : undefined;
  }

  /**
   * Stops answering without closing the listener: for a data plane whose socket path was taken
   * over by its successor (closing a unix listener unlinks its path, now the successor's).
   * The process exits soon after; nothing reaches this listener any more.
   */
  abandon(): void {
    this.abandoned = true;
    for (const s of this.sockets) s.destroy();
  }

  async listen(): Promise<ListenAddress> {
    const a = this.address;
    if (a.kind === 'unix' && existsSync(a.path)) unlinkSync(a.path);
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', (err: NodeJS.ErrnoException) =>
        reject(
          new BatonError('BATON_E_LISTEN', `admin API cannot listen on ${formatAddress(a)}: ${err.message}`, {
            cause: err,
          }),
        ),
      );
      if (a.kind === 'unix') this.server.listen(a.path, resolve);
      else this.server.listen(a.port, a.host, resolve);
    });
    if (a.kind === 'unix') chmodSync(a.path, 0o600);
    const bound = this.server.address();
    return bound && typeof bound === 'object' ? { kind: 'tcp', host: bound.address, port: bound.port } : a;
  }

  async close(): Promise<void> {
    for (const f of this.closing) f();
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const s of this.sockets) s.destroy();
    await closed;
  }

  /**
   * Whether `req` may act: no token needed, the bearer token, or a session. Every request of a
   * session (GETs too) must carry its CSRF token, and a state-changing one an Origin, which the
   * guard compared: the cookie alone (sent to every port of the host) gives nothing. An open
   * route (the page shell, its assets, the login) is answered as without a session.
   */
  private authorized(req: IncomingMessage, open: boolean): boolean {
    if (!this.token) return true;
    if (this.isToken(/^Bearer (.+)$/i.exec(req.headers.authorization ?? '')?.[1] ?? '')) return true;
    const csrf = this.sessions?.csrfOf(req) ?? null;
    if (csrf === null) return false;
    const given = req.headers[CSRF_HEADER];
    const a = Buffer.from(typeof given === 'string' ? given : '');
    const b = Buffer.from(csrf);
    const read = req.method === 'GET' || req.method === 'HEAD';
    if ((!read && req.headers.origin === undefined) || a.length !== b.length || !timingSafeEqual(a, b)) {
      if (open) return false;
      throw new BatonError(
        'BATON_E_FORBIDDEN',
        `refused a ${req.method} of a dashboard session without its CSRF token (header ${CSRF_HEADER}) or without an Origin: reload the dashboard, or call the API with "Authorization: Bearer $BATON_ADMIN_TOKEN"`,
      );
    }
    return true;
  }

  private async dispatch(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://admin');
    const ac = new AbortController();
    res.on('close', () => ac.abort());
    try {
      // Before the token: a page must not even learn whether it would be taken.
      guardRequest(req, this.guard);
      const open = this.routes.some((r) => r.open && r.method === req.method && r.pattern.test(url.pathname));
      const authenticated = this.authorized(req, open);
      if (!authenticated && !open) {
        throw new BatonError(
          'BATON_E_UNAUTHORIZED',
          'missing or wrong admin token: send "Authorization: Bearer $BATON_ADMIN_TOKEN"',
        );
      }
      let pathMatched = false;
      for (const route of this.routes) {
        const m = route.pattern.exec(url.pathname);
        if (!m) continue;
        pathMatched = true;
        if (route.method !== req.method) continue;
        if (!authenticated && !route.open) continue;
        const params: Record<string, string> = {};
        route.names.forEach((n, i) => (params[n] = decodeURIComponent(m[i + 1]!)));
        const json = (): Promise<Record<string, unknown>> => readJson(req);
        const r: AdminRequest = {
          req,
          url,
          params,
          json,
          body: async (schema) => checkBody(schema, await json()),
          signal: ac.signal,
          authenticated,
        };
        if (route.stream) return await route.stream(r, res);
        send(res, await route.handler!(r));
        if (req.method !== 'GET' && req.method !== 'HEAD') for (const f of this.changed) f();
        return;
      }
      throw new BatonError(
        pathMatched ? 'BATON_E_BAD_REQUEST' : 'BATON_E_NOT_FOUND',
        pathMatched ? `${req.method} is not allowed on ${url.pathname}` : `no admin endpoint ${url.pathname}`,
      );
    } catch (err) {
      const e = isBatonError(err) ? err : new BatonError('BATON_E_INTERNAL', messageOf(err), { cause: err });
      if (e.code === 'BATON_E_INTERNAL') this.log.error({ err }, 'admin request failed');
      if (res.headersSent) res.destroy();
      else send<ApiErrorBody>(res, { status: e.status, json: { error: e.toJSON() } });
    }
  }
}

function send<T>(res: ServerResponse, reply: AdminReply<T>): void {
  const body = reply.text ?? `${JSON.stringify(reply.json ?? {}, null, 2)}\n`;
  res.writeHead(reply.status ?? 200, {
    ...reply.headers,
    'content-type':
      reply.contentType ?? (reply.text !== undefined ? 'text/plain; charset=utf-8' : 'application/json'),
    'content-length': Buffer.byteLength(body),
  });
  res.end(body);
}

function checkBody<T>(schema: z.ZodType<T>, body: unknown): T {
  const r = schema.safeParse(body);
  if (r.success) return r.data;
  const problems = r.error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`);
  throw new BatonError('BATON_E_BAD_REQUEST', `invalid request body: ${problems.join('; ')}`, {
    details: problems,
  });
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY) throw new BatonError('BATON_E_BAD_REQUEST', `request body over ${MAX_BODY} bytes`);
    chunks.push(chunk);
  }
  if (size === 0) return {};
  try {
    const v: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    // fall through to the error below
  }
  throw new BatonError('BATON_E_BAD_REQUEST', 'the request body must be a JSON object');
}
