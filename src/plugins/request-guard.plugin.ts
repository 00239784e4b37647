import { createHash } from 'node:crypto';
import type { ApolloServerPlugin } from '@apollo/server';
import type { RequestHandler } from 'express';
import { AppError, ErrorCode } from '../errors.js';

/**
 * Client mistakes that Apollo answers with an error without a code, which formatError would
 * mask as INTERNAL_SERVER_ERROR and log as unexpected, refused here with HTTP 400 and a code of
 * their own. This plugin refuses subscriptions (OPERATION_NOT_SUPPORTED): the schema has no
 * Subscription type, and the server no transport for one. See also {@link persistedQueryGuard}.
 */
export function requestGuardPlugin<C extends object>(): ApolloServerPlugin<C> {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ operation }) {
          if (operation?.operation === 'subscription') {
            throw new AppError(ErrorCode.OperationNotSupported, 'Subscriptions are not supported; send a query or a mutation.', {
              httpStatus: 400,
            });
          }
        },
      };
    },
  };
}

/**
 * Express middleware for `/graphql`, after the body parser: refuses a persisted-query extension
 * of a version other than 1 (PERSISTED_QUERY_VERSION_UNSUPPORTED) and a persisted query sent
 * with a query whose SHA-256 is not its hash (PERSISTED_QUERY_HASH_MISMATCH), with HTTP 400.
 * These are the checks Apollo's request pipeline makes before any plugin could answer (an error
 * thrown from `requestDidStart` is a 500), so they are made here first, the same way.
 */
export const persistedQueryGuard: RequestHandler = (req, res, next) => {
  const { extensions, query } = requestParts(req.method === 'GET' ? req.query : req.body);
  const persisted = extensions?.persistedQuery;
  if (persisted === undefined || persisted === null) return next();
  // Anything but an object (a string, a number, true) is a malformed extension, not an older version.
  const { version, sha256Hash } = (typeof persisted === 'object' ? persisted : {}) as { version?: unknown; sha256Hash?: unknown };
  if (version !== 1) {
    return refuse(
      res,
      ErrorCode.PersistedQueryVersionUnsupported,
      `Persisted query version ${JSON.stringify(version)} is not supported; use 1.`,
    );
  }
  if (typeof query === 'string' && createHash('sha256').update(query).digest('hex') !== sha256Hash) {
    return refuse(res, ErrorCode.PersistedQueryHashMismatch, 'The persisted query hash is not the SHA-256 of the query sent with it.');
  }
  next();
};

/** `extensions` and `query` of a POST body or GET parameters (where `extensions` is JSON text); Apollo judges anything malformed. */
function requestParts(source: unknown): { extensions?: Record<string, unknown>; query?: unknown } {
  if (typeof source !== 'object' || source === null || Array.isArray(source)) return {};
  const { extensions, query } = source as { extensions?: unknown; query?: unknown };
  let parsed = extensions;
  if (typeof extensions === 'string') {
    try {
      parsed = JSON.parse(extensions);
    } catch {
      return {};
    }
  }
  return typeof parsed === 'object' && parsed !== null ? { extensions: parsed as Record<string, unknown>, query } : { query };
}

function refuse(res: Parameters<RequestHandler>[1], code: ErrorCode, message: string): void {
  res.status(400).json({ errors: [{ message, extensions: { code } }] });
}
