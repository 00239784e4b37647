import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import { addressSubject } from '../services/rate-limits.js';

/** What bounds the responses one client makes the server store. */
export interface ResponseBudgetSettings {
  /** The largest response stored, in bytes; larger ones are sent, not stored. */
  maxBytes: number;
  /** Bytes of stored responses one client address may cause per minute, per server; 0: no limit. */
  clientBytesPerMinute: number;
}

/** Why an executed response was not stored. */
export type NotStoredReason = 'too_large' | 'client_budget';

/** Decides which executed responses are stored (see {@link createResponseBudget}). */
export interface ResponseBudget {
  /** True when a response of `bytes` caused by `clientIp` may be stored; false counts the refusal. */
  admit(clientIp: string | null, bytes: number): Promise<boolean>;
}

/**
 * Bounds what one client can make the server store in Redis: every distinct query text is a new
 * response, so without a bound one client could fill Redis (and have it evict what must not be
 * evicted). A client is its address as the rate limits count it (an IPv6 /64 as one). The window
 * is fixed and in process (each server keeps its own: a fleet of N allows N times as much).
 * A refused response is still answered, only not stored; `notStored` hears why.
 */
export function createResponseBudget(settings: ResponseBudgetSettings, notStored: (reason: NotStoredReason) => void): ResponseBudget {
  const perClient =
    settings.clientBytesPerMinute > 0 ? new RateLimiterMemory({ points: settings.clientBytesPerMinute, duration: 60 }) : null;
  return {
    async admit(clientIp, bytes) {
      if (bytes > settings.maxBytes) {
        notStored('too_large');
        return false;
      }
      if (!perClient) return true;
      try {
        await perClient.consume(addressSubject(clientIp), bytes);
        return true;
      } catch (error) {
        if (!(error instanceof RateLimiterRes)) throw error;
        notStored('client_budget');
        return false;
      }
    },
  };
}
