import { AppError, ErrorCode } from '../errors.js';

/** Why a read was refused: every slot and queue place taken, or it waited its whole time. */
export type ReadRejection = 'queue_full' | 'timeout';

/** Options of {@link ReadBulkhead}. */
export interface ReadBulkheadOptions {
  /** Reads running at once; at least 1 (MONGODB_MAX_CONCURRENT_READS). */
  capacity: number;
  /** Reads waiting for a slot at once; one more is refused without waiting; 0 for no queue. */
  maxQueued: number;
  /** How long a read waits for a slot before it is refused, in milliseconds (MONGODB_READ_QUEUE_MS). */
  queueMs: number;
  /** Told of each refusal (the metrics count them). */
  onReject?: (reason: ReadRejection) => void;
  /** Told when the reads running or waiting change (the metrics' gauges). */
  onChange?: (state: { inFlight: number; waiting: number }) => void;
}

/** Where a read waits its turn: a {@link ReadBulkhead}, or a pass-through (a mutation's reads). */
export interface ReadGate {
  /** Runs `read`, when its turn comes; may reject with SERVER_BUSY instead. */
  run<T>(read: () => Promise<T>): Promise<T>;
}

interface Waiter {
  /** Gives the waiter the slot just freed. */
  admit(): void;
}

/**
 * A bulkhead for the MongoDB reads of queries (the loaders' batch functions): at most `capacity`
 * run at once, up to `maxQueued` more wait at most `queueMs` for a slot, and any other is refused
 * with SERVER_BUSY. Writes never pass here, so that a storm of reads cannot take the driver's
 * pool and MongoDB's time from them (a read refused is retried; a write timed out may have been
 * applied). A slot freed goes to the oldest waiter. Per process: each instance bounds its own.
 */
export class ReadBulkhead implements ReadGate {
  private running = 0;
  private readonly queue: Waiter[] = [];

  constructor(private readonly options: ReadBulkheadOptions) {
    if (!Number.isInteger(options.capacity) || options.capacity < 1) throw new RangeError('ReadBulkhead: capacity must be an integer >= 1');
  }

  /** Reads running now. */
  get inFlight(): number {
    return this.running;
  }

  /** Reads waiting for a slot now. */
  get waiting(): number {
    return this.queue.length;
  }

  /** Runs `read` in a slot, after waiting for one if need be; rejects with SERVER_BUSY (an AppError) when refused. */
  async run<T>(read: () => Promise<T>): Promise<T> {
    await this.acquire();
    this.changed();
    try {
      return await read();
    } finally {
      this.release();
      this.changed();
    }
  }

  private acquire(): Promise<void> {
    if (this.running < this.options.capacity) {
      this.running++;
      return Promise.resolve();
    }
    if (this.queue.length >= this.options.maxQueued) return Promise.reject(this.refuse('queue_full'));
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        admit: () => {
          clearTimeout(timer);
          resolve();
        },
      };
      const timer = setTimeout(() => {
        this.queue.splice(this.queue.indexOf(waiter), 1);
        this.changed();
        reject(this.refuse('timeout'));
      }, this.options.queueMs);
      this.queue.push(waiter);
      this.changed();
    });
  }

  private release(): void {
    // The slot passes to the oldest waiter as it is: `running` stays the same.
    const next = this.queue.shift();
    if (next) next.admit();
    else this.running--;
  }

  private changed(): void {
    this.options.onChange?.({ inFlight: this.running, waiting: this.queue.length });
  }

  private refuse(reason: ReadRejection): AppError {
    this.options.onReject?.(reason);
    return serverBusy(this.options.queueMs);
  }
}

/** SERVER_BUSY: the read was not run; retry after `retryAfterSeconds` (HTTP 503 with `Retry-After`). */
export function serverBusy(queueMs: number): AppError {
  return new AppError(ErrorCode.ServerBusy, 'The server is busy with other reads; nothing was read, retry shortly.', {
    details: { retryAfterSeconds: Math.max(1, Math.ceil(queueMs / 1_000)) },
  });
}
