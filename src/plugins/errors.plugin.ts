import { unwrapResolverError } from '@apollo/server/errors';
import type { GraphQLFormattedError } from 'graphql';
import { AppError, ErrorCode } from '../errors.js';
import type { Logger } from '../logger.js';
import { databaseUnavailable, isMongoUnavailable, outcomeUnknown } from '../services/mongo-errors.js';
import { currentTrace } from '../trace.js';

/** What graphql-armor's blockFieldSuggestion puts in place of a suggestion (its default mask). */
const SUGGESTION_MASK = '[Suggestion hidden]';

/**
 * Apollo's `formatError`: our own errors and Apollo's (validation, bad variables) pass as they
 * are; MongoDB outages become DATABASE_UNAVAILABLE, saying "nothing was changed" only when the
 * request sent no write that MongoDB did not refuse (else reason OUTCOME_UNKNOWN: a write whose
 * reply never came may have been applied); anything else is logged and masked, so that no
 * client sees a stack trace or an internal message.
 */
export function createFormatError(logger: Logger) {
  return (formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError => {
    // graphql-armor's blockFieldSuggestion (production) masks `Did you mean "name"` but leaves its `?`.
    if (formatted.message.includes(`${SUGGESTION_MASK}?`)) {
      formatted = { ...formatted, message: formatted.message.replaceAll(`${SUGGESTION_MASK}?`, SUGGESTION_MASK) };
    }
    const original = unwrapResolverError(error);
    if (original instanceof AppError) return formatted;
    if (isMongoUnavailable(original)) {
      // formatError runs inside the request, so the trace is this request's (see trace.ts).
      const wrote = (currentTrace()?.mongoWrites ?? 0) > 0;
      const masked = wrote ? outcomeUnknown(original) : databaseUnavailable(original);
      logger.warn({ err: original, path: formatted.path, outcomeUnknown: wrote }, 'MongoDB unavailable');
      return { message: masked.message, path: formatted.path, locations: formatted.locations, extensions: { ...masked.extensions } };
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
