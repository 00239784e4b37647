import { GraphQLError } from 'graphql';

/** Every error code a client can see in `errors[].extensions.code`. */
export enum ErrorCode {
  /** The input is malformed or breaks a rule (ids, ranges, emails, stock). */
  BadUserInput = 'BAD_USER_INPUT',
  /** The operation needs a session and the request has none (or an expired one). */
  Unauthenticated = 'UNAUTHENTICATED',
  /** The session's user may not do this. */
  Forbidden = 'FORBIDDEN',
  /** The entity the mutation names does not exist. */
  NotFound = 'NOT_FOUND',
  /** MongoDB could not be reached: nothing was written, retry later. */
  DatabaseUnavailable = 'DATABASE_UNAVAILABLE',
  /**
   * Too many attempts (logins, sign-ups, new sessions) from this address or for this account:
   * nothing was done; retry after `extensions.retryAfterSeconds` (HTTP 429 with `Retry-After`).
   */
  RateLimited = 'RATE_LIMITED',
  /** Anything unexpected; details are logged, never sent. */
  InternalServerError = 'INTERNAL_SERVER_ERROR',
}

/** Optional structured detail attached to an error's extensions. */
export interface AppErrorOptions {
  /** The input field at fault, e.g. `input.email`. */
  field?: string;
  /** A stable machine-readable reason inside the code, e.g. `DUPLICATE_EMAIL`. */
  reason?: string;
  /** Any further extension entries (ids, limits). */
  details?: Record<string, unknown>;
  cause?: unknown;
}

/** The one error class of the domain: sets `extensions.code` (and field/reason) for clients. */
export class AppError extends GraphQLError {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options: AppErrorOptions = {}) {
    super(message, {
      extensions: {
        code,
        ...(options.field === undefined ? {} : { field: options.field }),
        ...(options.reason === undefined ? {} : { reason: options.reason }),
        ...options.details,
      },
      originalError: options.cause instanceof Error ? options.cause : undefined,
    });
    this.code = code;
  }
}

/** A BAD_USER_INPUT error naming the field at fault. */
export function badInput(field: string, message: string, reason?: string): AppError {
  return new AppError(ErrorCode.BadUserInput, message, { field, ...(reason ? { reason } : {}) });
}
