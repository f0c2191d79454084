// The dashboard's logins: the token, POSTed once, buys a session: a random id in an HttpOnly,
// SameSite=Strict cookie, kept in memory here with its CSRF token and expiry (a restart logs
// everyone out). Wrong tokens are answered late and, past a few a minute from one address,
// refused outright, so that guessing is slow.
import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { SessionCheck } from '../admin/server.js';

export const SESSION_TTL_MS = 12 * 60 * 60 * 1000;
const MAX_SESSIONS = 200;
/** Wrong tokens from one address per window before it is refused until the window ends. */
export const MAX_FAILURES = 5;
const FAILURE_WINDOW_MS = 60_000;
/** How long a wrong token waits for its 401. */
export const FAILURE_DELAY_MS = 400;

interface Session {
  readonly csrf: string;
  readonly expires: number;
}

/**
 * The cookie's name, per port: cookies do not keep ports apart, and two daemons (staging,
 * production) on one host must not log each other out.
 */
export function cookieName(req: IncomingMessage): string {
  const port = /:(\d{1,5})$/.exec(req.headers.host ?? '')?.[1];
  return `baton_session${port ? `_${port}` : ''}`;
}

function cookieValue(req: IncomingMessage, name: string): string | null {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return null;
}

/** Over TLS, or behind a proxy that says the page is https (its Origin): a Secure cookie. */
function secure(req: IncomingMessage): boolean {
  return (req.socket as Partial<TLSSocket>).encrypted === true || /^https:/i.test(req.headers.origin ?? '');
}

export class Sessions implements SessionCheck {
  private readonly byId = new Map<string, Session>();
  private readonly failures = new Map<string, { count: number; since: number }>();

  constructor(private readonly ttlMs = SESSION_TTL_MS) {}

  csrfOf(req: IncomingMessage): string | null {
    const id = cookieValue(req, cookieName(req));
    if (id === null) return null;
    const s = this.byId.get(id);
    if (!s) return null;
    if (s.expires <= Date.now()) {
      this.byId.delete(id);
      return null;
    }
    return s.csrf;
  }

  /** A new session: the Set-Cookie header that carries it, and its CSRF token. */
  create(req: IncomingMessage): { cookie: string; csrf: string; expiresAt: string } {
    const now = Date.now();
    for (const [id, s] of this.byId) if (s.expires <= now) this.byId.delete(id);
    // The oldest go first (a Map keeps insertion order).
    while (this.byId.size >= MAX_SESSIONS) this.byId.delete(this.byId.keys().next().value!);
    const id = randomBytes(32).toString('base64url');
    const csrf = randomBytes(32).toString('base64url');
    const expires = now + this.ttlMs;
    this.byId.set(id, { csrf, expires });
    const attrs = ['HttpOnly', 'SameSite=Strict', 'Path=/', `Max-Age=${Math.floor(this.ttlMs / 1000)}`];
    if (secure(req)) attrs.push('Secure');
    return {
      cookie: `${cookieName(req)}=${id}; ${attrs.join('; ')}`,
      csrf,
      expiresAt: new Date(expires).toISOString(),
    };
  }

  /** Ends the request's session; the Set-Cookie header that clears the cookie. */
  end(req: IncomingMessage): string {
    const id = cookieValue(req, cookieName(req));
    if (id !== null) this.byId.delete(id);
    return `${cookieName(req)}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0`;
  }

  /** Milliseconds until `address` may try again; 0: now. */
  blockedFor(address: string): number {
    const f = this.failures.get(address);
    if (!f) return 0;
    const left = f.since + FAILURE_WINDOW_MS - Date.now();
    if (left <= 0) {
      this.failures.delete(address);
      return 0;
    }
    return f.count >= MAX_FAILURES ? left : 0;
  }

  failed(address: string): void {
    const now = Date.now();
    const f = this.failures.get(address);
    if (!f || f.since + FAILURE_WINDOW_MS <= now) this.failures.set(address, { count: 1, since: now });
    else f.count++;
    // Bounded: addresses are forgotten once their window is over.
    if (this.failures.size > 10_000) {
      for (const [a, x] of this.failures) if (x.since + FAILURE_WINDOW_MS <= now) this.failures.delete(a);
    }
  }

  succeeded(address: string): void {
    this.failures.delete(address);
  }
}
