// One notification POSTed as JSON, with bounded retries: 3 attempts, 500ms then 2s apart (or the
// endpoint's Retry-After, up to 10s). Network errors, timeouts, 429 and 5xx are retried; other
// answers are final. Errors never carry the URL (it is a secret): only what went wrong.
import { request } from 'undici';
import { sleep } from '../util/sleep.js';

export const ATTEMPTS = 3;
const BACKOFF_MS = [500, 2000];
const MAX_RETRY_AFTER_MS = 10_000;

export interface DeliveryOptions {
  readonly headers?: Readonly<Record<string, string>>;
  /** Per attempt. */
  readonly timeoutMs: number;
  /** Aborts the delivery (daemon shutdown). */
  readonly signal?: AbortSignal;
  /** Called before each retry with why the attempt failed. */
  readonly onRetry?: (attempt: number, why: string) => void;
}

export class DeliveryError extends Error {
  constructor(
    message: string,
    readonly attempts: number,
  ) {
    super(message);
    this.name = 'DeliveryError';
  }
}

export async function postJson(url: string, body: unknown, o: DeliveryOptions): Promise<void> {
  const payload = JSON.stringify(body);
  let why = '';
  for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
    if (o.signal?.aborted)
      throw new DeliveryError(`abandoned (daemon stopping); last: ${why || 'none'}`, attempt - 1);
    let retryAfterMs: number | undefined;
    try {
      const signal = o.signal
        ? AbortSignal.any([o.signal, AbortSignal.timeout(o.timeoutMs)])
        : AbortSignal.timeout(o.timeoutMs);
      const res = await request(url, {
        method: 'POST',
        headers: { ...o.headers, 'content-type': 'application/json' },
        body: payload,
        signal,
        headersTimeout: o.timeoutMs,
        bodyTimeout: o.timeoutMs,
      });
      const text = (await res.body.text().catch(() => '')).slice(0, 200).trim();
      if (res.statusCode >= 200 && res.statusCode < 300) return;
      why = `HTTP ${res.statusCode}${text ? ` ${JSON.stringify(text)}` : ''}`;
      if (res.statusCode !== 429 && res.statusCode < 500) throw new DeliveryError(why, attempt);
      retryAfterMs = retryAfter(res.headers['retry-after']);
    } catch (err) {
      if (err instanceof DeliveryError) throw err;
      why = errorText(err, o.timeoutMs);
    }
    if (attempt === ATTEMPTS) break;
    o.onRetry?.(attempt, why);
    await sleep(Math.min(retryAfterMs ?? BACKOFF_MS[attempt - 1]!, MAX_RETRY_AFTER_MS), o.signal);
  }
  throw new DeliveryError(`${why} (after ${ATTEMPTS} attempts)`, ATTEMPTS);
}

function errorText(err: unknown, timeoutMs: number): string {
  const e = err as {
    name?: string;
    code?: string;
    message?: string;
    cause?: { code?: string; message?: string };
  };
  if (
    e.name === 'TimeoutError' ||
    e.code === 'UND_ERR_HEADERS_TIMEOUT' ||
    e.code === 'UND_ERR_BODY_TIMEOUT'
  ) {
    return `no answer within ${timeoutMs}ms`;
  }
  if (e.name === 'AbortError') return 'abandoned (daemon stopping)';
  // Node's errors name the address (e.g. "connect ECONNREFUSED 127.0.0.1:9"), never the path.
  const code = e.cause?.code ?? e.code;
  const message = e.cause?.message ?? e.message ?? String(err);
  return code && !message.includes(code) ? `${code}: ${message}` : message;
}

function retryAfter(h: string | string[] | undefined): number | undefined {
  const v = Array.isArray(h) ? h[0] : h;
  if (v === undefined) return undefined;
  const s = Number(v);
  if (Number.isFinite(s)) return Math.max(0, s * 1000);
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : Math.max(0, t - Date.now());
}
