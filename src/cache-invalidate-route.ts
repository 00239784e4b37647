import { createHash, timingSafeEqual } from 'node:crypto';
import express, { Router, type ErrorRequestHandler, type Request, type Response } from 'express';
import type { Cache } from 'graphql-lease-cache';
import type { TagInvalidator } from './caching/tags.js';
import type { Config } from './config.js';
import { parseBearer } from './context.js';
import { AppError, ErrorCode } from './errors.js';
import type { Logger } from './logger.js';
import { invalidateCaches, parseInvalidation, roleOf } from './services/cache-invalidation.js';
import type { Services } from './services/index.js';
import type { RateLimits } from './services/rate-limits.js';

/** What {@link cacheInvalidateRoute} is built from (server.ts passes its own). */
export interface CacheInvalidateRouteOptions {
  config: Config;
  logger: Logger;
  cache: Cache;
  fieldCache: TagInvalidator;
  services: Services;
  rateLimits: RateLimits;
}

/** The header that carries CACHE_INVALIDATION_KEY. */
export const INVALIDATION_KEY_HEADER = 'x-cache-invalidation-key';

/** The largest body accepted, in bytes: 1,000 items of about 60 bytes, with room. */
const MAX_BODY_BYTES = 128 * 1024;

const STATUS: Partial<Record<ErrorCode, number>> = {
  [ErrorCode.BadUserInput]: 400,
  [ErrorCode.Unauthenticated]: 401,
  [ErrorCode.Forbidden]: 403,
  [ErrorCode.RateLimited]: 429,
};

/**
 * POST /cache/invalidate (docs/operations.md, Writes made outside the API): voids what its JSON
 * body names on every cache layer and answers `{ voided: { entities, tags } }`. Rate-limited per
 * client address first, then authorised by an ADMIN session or by CACHE_INVALIDATION_KEY; every
 * refusal is `{ errors: [{ message, extensions: { code, reason? } }] }` with a 4xx status.
 */
export function cacheInvalidateRoute(options: CacheInvalidateRouteOptions): Router {
  const router = Router();
  router.post('/cache/invalidate', express.json({ limit: MAX_BODY_BYTES, strict: false }), async (req, res) => {
    try {
      await options.rateLimits.cacheInvalidation(req.ip ?? null);
      const by = await authorize(options, req);
      const request = parseInvalidation(req.body);
      const voided = await invalidateCaches(options, request);
      options.logger.info({ by, entities: request.entities.length, tags: request.tags }, 'cache invalidated from outside');
      res.json({ voided });
    } catch (error) {
      sendError(options.logger, res, error);
    }
  });
  router.use('/cache/invalidate', invalidationBodyError);
  return router;
}

/** Who may invalidate: `key` or `admin:<id>`; UNAUTHENTICATED with neither, FORBIDDEN for a wrong key or a non-ADMIN. */
async function authorize({ config, services }: CacheInvalidateRouteOptions, req: Request): Promise<string> {
  const key = req.headers[INVALIDATION_KEY_HEADER];
  if (typeof key === 'string') {
    if (config.cacheInvalidationKey === null)
      throw new AppError(ErrorCode.Forbidden, 'Key authorisation is off (CACHE_INVALIDATION_KEY is unset).', { reason: 'KEY_AUTH_OFF' });
    if (!sameSecret(key, config.cacheInvalidationKey))
      throw new AppError(ErrorCode.Forbidden, 'Wrong cache invalidation key.', { reason: 'WRONG_KEY' });
    return 'key';
  }
  const token = parseBearer(req.headers.authorization);
  if (!token)
    throw new AppError(ErrorCode.Unauthenticated, `Send ${INVALIDATION_KEY_HEADER}, or Authorization: Bearer <token> of an ADMIN.`);
  const session = await services.auth.resolveSession(token);
  if (!session) throw new AppError(ErrorCode.Unauthenticated, 'The session has expired or does not exist: log in again.');
  const userId = session.userId.toHexString();
  if ((await roleOf(userId)) !== 'ADMIN') throw new AppError(ErrorCode.Forbidden, 'Only an ADMIN may invalidate the cache.');
  return `admin:${userId}`;
}

/** Compares in constant time (of the secret's digest, so the lengths leak nothing either). */
function sameSecret(given: string, expected: string): boolean {
  const digest = (value: string) => createHash('sha256').update(value).digest();
  return timingSafeEqual(digest(given), digest(expected));
}

function sendError(logger: Logger, res: Response, error: unknown): void {
  if (error instanceof AppError && STATUS[error.code] !== undefined) {
    const retryAfter = error.extensions.retryAfterSeconds;
    if (typeof retryAfter === 'number') res.setHeader('retry-after', String(retryAfter));
    res.status(STATUS[error.code] ?? 400).json({ errors: [{ message: error.message, extensions: error.extensions }] });
    return;
  }
  logger.error({ err: error }, 'cache invalidation failed');
  res.status(500).json({ errors: [{ message: 'Internal server error.', extensions: { code: ErrorCode.InternalServerError } }] });
}

/** A body that is not JSON, or too large: a 400/413 with a code, never Express's HTML page. */
const invalidationBodyError: ErrorRequestHandler = (error: { status?: number; type?: string }, _req, res, next) => {
  if (res.headersSent) return next(error);
  const tooLarge = error.type === 'entity.too.large';
  res.status(tooLarge ? 413 : 400).json({
    errors: [
      {
        message: tooLarge ? `The body is larger than ${MAX_BODY_BYTES} bytes.` : 'The body is not JSON.',
        extensions: { code: ErrorCode.BadUserInput, reason: tooLarge ? 'BATCH_TOO_LARGE' : 'MALFORMED' },
      },
    ],
  });
};
