// The dashboard's logins: the token, POSTed once, buys a session: a random id in an HttpOnly,
// SameSite=Strict cookie, kept in memory here with its CSRF token and expiry (a restart logs
// everyone out). Wrong tokens are answered late and, past a few a minute from one address (or
// GLOBAL_MAX_FAILURES from all), refused outright, so that guessing is slow. A session's live
// feeds end with it (logout, expiry).
import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { SessionCheck } from '../admin/server.js';

export const SESSION_TTL_MS = 12 * 60 * 60 * 1000;
const MAX_SESSIONS = 200;
/** Wrong tokens from one address per window before it is refused until the window ends. */
export const MAX_FAILURES = 5;
const FAILURE_WINDOW_MS = 60_000;
/** Wrong tokens per window from all addresses together before every login waits. */
export const GLOBAL_MAX_FAILURES = 50;
/** Addresses whose wrong tokens are remembered; past it the oldest are forgotten. */
export const MAX_FAILED_ADDRESSES = 10_000;
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
  private readonly all = { count: 0, since: 0 };
  /** Run when a session ends (logout): its live feeds close. */
  private readonly watchers = new Map<string, Set<() => void>>();

  constructor(
    private readonly ttlMs = SESSION_TTL_MS,
    private readonly limits = { global: GLOBAL_MAX_FAILURES, addresses: MAX_FAILED_ADDRESSES },
  ) {}

  /**
   * For a stream of `req`'s session: whether the session still lives (checked on each send:
   * expiry), and `onEnd` run at logout; `stop` when the stream ends. null: no session.
   */
  watch(req: IncomingMessage, onEnd: () => void): { alive: () => boolean; stop: () => void } | null {
    const id = cookieValue(req, cookieName(req));
    if (id === null || this.csrfOf(req) === null) return null;
    const set = this.watchers.get(id) ?? new Set();
    set.add(onEnd);
    this.watchers.set(id, set);
    return {
      alive: () => {
        const s = this.byId.get(id);
        return s !== undefined && s.expires > Date.now();
      },
      stop: () => {
        set.delete(onEnd);
        if (set.size === 0 && this.watchers.get(id) === set) this.watchers.delete(id);
      },
    };
  }

  private ended(id: string): void {
    const set = this.watchers.get(id);
    this.watchers.delete(id);
    for (const f of set ?? []) f();
  }

  csrfOf(req: IncomingMessage): string | null {
    const id = cookieValue(req, cookieName(req));
    if (id === null) return null;
    const s = this.byId.get(id);
    if (!s) return null;
    if (s.expires <= Date.now()) {
      this.byId.delete(id);
      this.ended(id);
      return null;
    }
    return s.csrf;
  }

  /** A new session: the Set-Cookie header that carries it, and its CSRF token. */
  create(req: IncomingMessage): { cookie: string; csrf: string; expiresAt: string } {
    const now = Date.now();
    for (const [id, s] of this.byId) if (s.expires <= now) this.drop(id);
    // The oldest go first (a Map keeps insertion order).
    while (this.byId.size >= MAX_SESSIONS) this.drop(this.byId.keys().next().value!);
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
    if (id !== null) this.drop(id);
    return `${cookieName(req)}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0`;
  }

  private drop(id: string): void {
    this.byId.delete(id);
    this.ended(id);
  }

  /** Milliseconds until `address` may try again (its own wrong tokens, or all of them); 0: now. */
  blockedFor(address: string): number {
    const now = Date.now();
    const allLeft = this.all.since + FAILURE_WINDOW_MS - now;
    if (allLeft > 0 && this.all.count >= this.limits.global) return allLeft;
    const f = this.failures.get(address);
    if (!f) return 0;
    const left = f.since + FAILURE_WINDOW_MS - now;
    if (left <= 0) {
      this.failures.delete(address);
      return 0;
    }
    return f.count >= MAX_FAILURES ? left : 0;
  }

  /** Counts a login attempt as wrong: before its body is read (succeeded() undoes it). */
  failed(address: string): void {
    const now = Date.now();
    if (this.all.since + FAILURE_WINDOW_MS <= now) Object.assign(this.all, { count: 0, since: now });
    this.all.count++;
    const f = this.failures.get(address);
    if (f && f.since + FAILURE_WINDOW_MS > now) f.count++;
    else {
      // Re-inserted: the Map's order stays the order of the windows' starts.
      this.failures.delete(address);
      this.failures.set(address, { count: 1, since: now });
    }
    // Bounded: addresses are forgotten once their window is over, the oldest past the cap.
    if (this.failures.size > this.limits.addresses) {
      for (const [a, x] of this.failures) if (x.since + FAILURE_WINDOW_MS <= now) this.failures.delete(a);
      while (this.failures.size > this.limits.addresses)
        this.failures.delete(this.failures.keys().next().value!);
    }
  }

  /** The right token: the attempt counted by failed() is undone, the address cleared. */
  succeeded(address: string): void {
    if (this.failures.delete(address) && this.all.count > 0) this.all.count--;
  }
}
