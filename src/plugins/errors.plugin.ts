import { unwrapResolverError } from '@apollo/server/errors';
import type { GraphQLFormattedError } from 'graphql';
import { AppError, ErrorCode } from '../errors.js';
import type { Logger } from '../logger.js';
import { databaseUnavailable, isMongoUnavailable } from '../services/mongo-errors.js';

/**
 * Apollo's `formatError`: our own errors and Apollo's (validation, bad variables) pass as they
 * are; MongoDB outages become DATABASE_UNAVAILABLE; anything else is logged and masked, so
 * that no client sees a stack trace or an internal message.
 */
export function createFormatError(logger: Logger) {
  return (formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError => {
    const original = unwrapResolverError(error);
    if (original instanceof AppError) return formatted;
    if (isMongoUnavailable(original)) {
      const masked = databaseUnavailable(original);
      logger.warn({ err: original }, 'MongoDB unavailable');
      return { message: masked.message, path: formatted.path, locations: formatted.locations, extensions: { code: masked.code } };
    }
    const code = formatted.extensions?.code;
    if (code !== undefined && code !== ErrorCode.InternalServerError) return formatted;
    logger.error({ err: original, path: formatted.path }, 'unexpected error in a resolver');
    return {
      message: 'Internal server error.',
      path: formatted.path,
      locations: formatted.locations,
      extensions: { code: ErrorCode.InternalServerError },
    };
  };
}
