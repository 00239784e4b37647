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
  /**
   * MongoDB could not be reached or did not answer within MONGODB_TIMEOUT_MS: nothing was
   * written, retry later; except with `reason: OUTCOME_UNKNOWN`, when a write was sent and not
   * answered, and may have been applied; or with `reason: LOCK_UNAVAILABLE` (FerretDB), when the
   * document's lock in Redis could not be taken: nothing was written.
   */
  DatabaseUnavailable = 'DATABASE_UNAVAILABLE',
  /**
   * Too many attempts (logins, sign-ups, new sessions) from this address or for this account:
   * nothing was done; retry after `extensions.retryAfterSeconds` (HTTP 429 with `Retry-After`).
   */
  RateLimited = 'RATE_LIMITED',
  /**
   * Too many MongoDB reads under way on this server (MONGODB_MAX_CONCURRENT_READS, and the queue
   * behind it): the read was not run; retry after `extensions.retryAfterSeconds` (HTTP 503 with
   * `Retry-After` when nothing of the response was answered). Writes are never refused so.
   */
  ServerBusy = 'SERVER_BUSY',
  /** Anything unexpected; details are logged, never sent. */
  InternalServerError = 'INTERNAL_SERVER_ERROR',
  /** Apollo's: the document does not parse (or has too many tokens). HTTP 400. */
  GraphqlParseFailed = 'GRAPHQL_PARSE_FAILED',
  /** Apollo's: the document breaks the schema or a limit (depth, cost, aliases). HTTP 400. */
  GraphqlValidationFailed = 'GRAPHQL_VALIDATION_FAILED',
  /**
   * Apollo's: the request itself is malformed: an empty body, no query, a batch (batching is
   * off), a GET without a preflight-forcing header (CSRF prevention), a GET mutation (405). HTTP 400.
   */
  BadRequest = 'BAD_REQUEST',
  /** Apollo's: the document has several operations and `operationName` names none of them. HTTP 400. */
  OperationResolutionFailure = 'OPERATION_RESOLUTION_FAILURE',
  /** A subscription: this server serves queries and mutations only. HTTP 400. */
  OperationNotSupported = 'OPERATION_NOT_SUPPORTED',
  /** Apollo's: a persisted query sent by hash alone that this server does not know; send the query with it. */
  PersistedQueryNotFound = 'PERSISTED_QUERY_NOT_FOUND',
  /** A persisted query sent with a query whose SHA-256 is not its `sha256Hash`. HTTP 400. */
  PersistedQueryHashMismatch = 'PERSISTED_QUERY_HASH_MISMATCH',
  /** A persisted-query extension of a version other than 1. HTTP 400. */
  PersistedQueryVersionUnsupported = 'PERSISTED_QUERY_VERSION_UNSUPPORTED',
}

/** Optional structured detail attached to an error's extensions. */
export interface AppErrorOptions {
  /** The input field at fault, e.g. `input.email`. */
  field?: string;
  /** A stable machine-readable reason inside the code, e.g. `DUPLICATE_EMAIL`. */
  reason?: string;
  /** Any further extension entries (ids, limits). */
  details?: Record<string, unknown>;
  /** The HTTP status of the response that carries this error (Apollo reads and strips `extensions.http`). */
  httpStatus?: number;
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
        ...(options.httpStatus === undefined ? {} : { http: { status: options.httpStatus } }),
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
