// The body of every admin API error answer (4xx, 5xx): the code from src/errors.ts, a message
// saying what to do, and machine-readable details where there are some.
import type { ErrorCode } from '../errors.js';

export interface ApiError {
  readonly code: ErrorCode;
  readonly message: string;
  readonly details?: unknown;
}

export interface ApiErrorBody {
  readonly error: ApiError;
}
