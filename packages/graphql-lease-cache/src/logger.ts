/**
 * What the cache needs of a logger: pino's shape (an object of fields first, then the message),
 * so that a pino logger is one as it is, and any other logger takes a few lines to adapt.
 */
export interface CacheLogger {
  debug(fields: object, message: string): void;
  info(fields: object | string, message?: string): void;
  warn(fields: object | string, message?: string): void;
  error(fields: object, message: string): void;
  /** A logger that adds `fields` to every line. */
  child(fields: object): CacheLogger;
}

/** A logger that drops every line (the default). */
export const SILENT_LOGGER: CacheLogger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  child: () => SILENT_LOGGER,
};
