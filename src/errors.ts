// Every error Baton reports, with a stable code. Callers switch on `code`; users read `message`,
// which says what happened and what to do. `status` is the HTTP status when the error crosses
// the admin API (for the proxy's own codes: what the client is answered); `exitCode` is what the
// CLI exits with. A code written in src/ but not here, or not in the README, fails test/errors.test.ts.

export const ErrorCodes = {
  BATON_E_CONFIG: { status: 400, exitCode: 2 },
  BATON_E_USAGE: { status: 400, exitCode: 2 },
  BATON_E_BAD_REQUEST: { status: 400, exitCode: 2 },
  BATON_E_UNAUTHORIZED: { status: 401, exitCode: 3 },
  /** The admin API refused a request that may come from a web page (its Host, Origin or Sec-Fetch-Site). */
  BATON_E_FORBIDDEN: { status: 403, exitCode: 3 },
  /** An admin API request with a body that is not declared JSON (Content-Type: application/json). */
  BATON_E_UNSUPPORTED_MEDIA_TYPE: { status: 415, exitCode: 2 },
  BATON_E_NOT_FOUND: { status: 404, exitCode: 4 },
  BATON_E_CONFLICT: { status: 409, exitCode: 5 },
  BATON_E_DRAIN_TIMEOUT: { status: 504, exitCode: 6 },
  BATON_E_LISTEN: { status: 500, exitCode: 7 },
  BATON_E_STATE: { status: 500, exitCode: 8 },
  BATON_E_DAEMON_UNREACHABLE: { status: 503, exitCode: 9 },
  BATON_E_DEPLOY_FAILED: { status: 500, exitCode: 10 },
  BATON_E_LOCKED: { status: 409, exitCode: 11 },
  /** Outside the deploy windows, or deploys are frozen (`--force` overrides). */
  BATON_E_REFUSED: { status: 409, exitCode: 13 },
  /** nginx / HAProxy refused a change or cannot be reached; the previous routes still serve. */
  BATON_E_EDGE: { status: 502, exitCode: 14 },
  /** A host cannot do what was asked: `baton hosts check` found it not ready, `baton logs` could not read it. */
  BATON_E_HOSTS: { status: 502, exitCode: 15 },
  /**
   * The built-in proxy's, never an admin API answer: a chunked request body passed
   * proxy.maxBodySize. The client gets 413; exit 2 as for any request at fault.
   */
  BATON_E_BODY_TOO_LARGE: { status: 413, exitCode: 2 },
  /**
   * The built-in proxy's, never an admin API answer: an attempt given up because its target failed
   * its health checks. Retried on another target when safe, else the client gets 502.
   */
  BATON_E_TARGET_DOWN: { status: 502, exitCode: 1 },
  BATON_E_INTERNAL: { status: 500, exitCode: 1 },
} as const;

export type ErrorCode = keyof typeof ErrorCodes;

export class BatonError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly exitCode: number;
  /** Extra machine-readable detail (e.g. the list of config problems). */
  readonly details: unknown;

  constructor(code: ErrorCode, message: string, options: { cause?: unknown; details?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'BatonError';
    this.code = code;
    this.status = ErrorCodes[code].status;
    this.exitCode = ErrorCodes[code].exitCode;
    this.details = options.details;
  }

  toJSON(): { code: ErrorCode; message: string; details?: unknown } {
    return this.details === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, details: this.details };
  }
}

export function isBatonError(err: unknown): err is BatonError {
  return err instanceof BatonError;
}

/** Whether `err`, or an error it wraps (its `cause`, and so on), is a BatonError with `code`. */
export function causedBy(err: unknown, code: ErrorCode): boolean {
  const seen = new Set<unknown>();
  for (let e = err; e instanceof Error && !seen.has(e); e = e.cause) {
    if (isBatonError(e) && e.code === code) return true;
    seen.add(e);
  }
  return false;
}

/** The message of anything thrown, for logs and error text. */
export function messageOf(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
