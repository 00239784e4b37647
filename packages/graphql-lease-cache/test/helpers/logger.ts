import type { CacheLogger } from '../../src/logger.js';

/** A logger that drops every line. */
export const silentLogger: CacheLogger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  child: () => silentLogger,
};
