import { randomBytes } from 'node:crypto';
import type { CacheEvents } from './events.js';
import type { CacheLogger } from './logger.js';

/** This process's random prefix of {@link newToken}. */
const TOKEN_PREFIX = randomBytes(9).toString('base64url');
let tokenCounter = 0;

/**
 * A lease token, which also names the value it fills (its etag, see LocalCopies): unique across
 * processes (a random prefix per process) and within one (a counter). It need not be secret:
 * nothing but this process's fills present it. Cheaper than random bytes per call.
 */
export function newToken(): string {
  tokenCounter += 1;
  return TOKEN_PREFIX + tokenCounter.toString(36);
}

/** Reports a cache operation that failed: the read or write it was part of goes on without the cache. */
export function reportFailure(events: CacheEvents, logger: CacheLogger, op: string, error: unknown): void {
  events.error(op, error);
  logger.debug({ err: error, op }, 'cache operation failed; reading from the source');
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function positive(name: string, value: number): number {
  if (!(Number.isFinite(value) && value > 0)) throw new TypeError(`${name} must be a positive number, got ${String(value)}`);
  return value;
}

export function nonNegative(name: string, value: number): number {
  if (!(Number.isInteger(value) && value >= 0)) throw new TypeError(`${name} must be a non-negative integer, got ${String(value)}`);
  return value;
}
