/** Options of {@link CircuitBreaker}. */
export interface CircuitBreakerOptions {
  /** Open after this many consecutive failures; default 5. */
  failureThreshold?: number;
  /** Stay open this long before letting one probe through, in milliseconds; default 5000. */
  openMs?: number;
  /** Called on every state change (for logs and metrics). */
  onStateChange?: (state: BreakerState) => void;
  /** The clock, in milliseconds; default Date.now (tests move it). */
  now?: () => number;
}

/** closed: calls go through; open: they fail at once; half-open: one probe decides. */
export type BreakerState = 'closed' | 'open' | 'half-open';

/** Thrown instead of calling Redis while the breaker is open. */
export class BreakerOpenError extends Error {
  override readonly name = 'BreakerOpenError';
  readonly code = 'E_CACHE_BREAKER_OPEN';
}

/**
 * A circuit breaker for the cache store. A Redis that times out costs every request the full
 * command timeout; after `failureThreshold` consecutive failures the breaker stops calling it
 * (reads go straight to the source), and after `openMs` lets a single call probe it again.
 */
export class CircuitBreaker {
  readonly #threshold: number;
  readonly #openMs: number;
  readonly #onStateChange: (state: BreakerState) => void;
  readonly #now: () => number;
  #state: BreakerState = 'closed';
  #failures = 0;
  #openedAt = 0;
  #probing = false;

  constructor(options: CircuitBreakerOptions = {}) {
    this.#threshold = validatePositiveInteger('failureThreshold', options.failureThreshold ?? 5);
    this.#openMs = validatePositiveInteger('openMs', options.openMs ?? 5_000);
    this.#onStateChange = options.onStateChange ?? (() => undefined);
    this.#now = options.now ?? Date.now;
  }

  /** The current state (moves from open to half-open when `openMs` has passed). */
  get state(): BreakerState {
    if (this.#state === 'open' && this.#now() - this.#openedAt >= this.#openMs) this.#transition('half-open');
    return this.#state;
  }

  /** Runs `fn` unless open; a failure counts toward opening, a success closes. */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    const state = this.state;
    if (state === 'open' || (state === 'half-open' && this.#probing)) throw new BreakerOpenError('the Redis circuit breaker is open');
    const probe = state === 'half-open';
    if (probe) this.#probing = true;
    try {
      const result = await fn();
      this.#failures = 0;
      if (this.#state !== 'closed') this.#transition('closed');
      return result;
    } catch (error) {
      this.#failures += 1;
      if (probe || this.#failures >= this.#threshold) {
        this.#openedAt = this.#now();
        this.#transition('open');
      }
      throw error;
    } finally {
      if (probe) this.#probing = false;
    }
  }

  #transition(state: BreakerState): void {
    if (this.#state === state) return;
    this.#state = state;
    this.#onStateChange(state);
  }
}

function validatePositiveInteger(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) throw new TypeError(`${name} must be a positive integer, got ${String(value)}`);
  return value;
}
