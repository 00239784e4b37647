/** What bounds the responses one client makes the server store. */
export interface ResponseBudgetSettings {
  /** The largest response stored, in bytes; larger ones are sent, not stored. */
  maxBytes: number;
  /** Bytes of stored responses one client may cause per minute, per server; 0: no limit. */
  clientBytesPerMinute: number;
}

/** Why an executed response was not stored. */
export type NotStoredReason = 'too_large' | 'client_budget';

/** Decides which executed responses are stored (see {@link createResponseBudget}). */
export interface ResponseBudget {
  /** True when a response of `bytes` caused by `clientId` (null: unknown, one client) may be stored; false counts the refusal. */
  admit(clientId: string | null, bytes: number): boolean;
}

/** The length of a client's window, in milliseconds. */
const WINDOW_MS = 60_000;
/** Clients tracked before the ones whose window ended are swept. */
const SWEEP_AT = 10_000;

/**
 * Bounds what one client can make the server store in Redis: every distinct query text is a new
 * response, so without a bound one client could fill Redis (and have it evict what must not be
 * evicted). A client is whatever `clientId` the caller passes (an address, an IPv6 /64). The
 * window is fixed (a minute from the client's first store) and in process: each server keeps
 * its own, so a fleet of N allows N times as much. A refused response is still answered, only
 * not stored; `notStored` hears why.
 */
export function createResponseBudget(settings: ResponseBudgetSettings, notStored?: (reason: NotStoredReason) => void): ResponseBudget {
  const windows = new Map<string, { endsAt: number; bytes: number }>();
  const sweep = (now: number): void => {
    for (const [client, window] of windows) if (window.endsAt <= now) windows.delete(client);
  };
  return {
    admit(clientId, bytes) {
      if (bytes > settings.maxBytes) {
        notStored?.('too_large');
        return false;
      }
      if (settings.clientBytesPerMinute <= 0) return true;
      const now = Date.now();
      const client = clientId ?? '';
      let window = windows.get(client);
      if (!window || window.endsAt <= now) {
        if (windows.size >= SWEEP_AT) sweep(now);
        window = { endsAt: now + WINDOW_MS, bytes: 0 };
        windows.set(client, window);
      }
      if (window.bytes + bytes > settings.clientBytesPerMinute) {
        notStored?.('client_budget');
        return false;
      }
      window.bytes += bytes;
      return true;
    },
  };
}
