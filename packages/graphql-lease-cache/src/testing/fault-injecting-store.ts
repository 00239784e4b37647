import type { CacheTrace } from '../trace.js';
import type { GetOrLeaseOptions, LeaseReply, LeaseRequest, LeaseStore, PendingEntry, VersionedValue } from '../lease-store.js';

/** The operations of a {@link LeaseStore}, as {@link FaultInjectingStore} names them. */
export type LeaseStoreOperation = 'getOrLease' | 'setIfLeased' | 'refresh' | 'invalidate' | 'pending';

/** Every {@link LeaseStoreOperation}. */
export const LEASE_STORE_OPERATIONS: readonly LeaseStoreOperation[] = Object.freeze([
  'getOrLease',
  'setIfLeased',
  'refresh',
  'invalidate',
  'pending',
]);

/** What a {@link FaultInjectingStore} throws when told to fail and given no error of the test's own. */
export class InjectedFaultError extends Error {
  override readonly name = 'InjectedFaultError';
  readonly code = 'E_CACHE_INJECTED_FAULT';
}

/** Per operation, a count. */
export type OperationCounts = Record<LeaseStoreOperation, number>;

/** One of `operations`, or all when undefined. */
type Operations = LeaseStoreOperation | readonly LeaseStoreOperation[] | undefined;

/** A call held by {@link FaultInjectingStore.pause}. */
interface HeldCall {
  operation: LeaseStoreOperation;
  release(): void;
}

const zeroCounts = (): OperationCounts => ({ getOrLease: 0, setIfLeased: 0, refresh: 0, invalidate: 0, pending: 0 });
const listOf = (operations: Operations): readonly LeaseStoreOperation[] =>
  operations === undefined ? LEASE_STORE_OPERATIONS : typeof operations === 'string' ? [operations] : operations;

/**
 * A {@link LeaseStore} that passes every call to `inner`, and on demand fails calls, slows them,
 * or holds them until the test releases them (a Redis that is down, slow or paused), as
 * bentocache's chaos cache does. Faults apply to calls made after they are set, per operation;
 * a failed or held call never reaches `inner`. It counts calls made and settled, so that a test
 * can wait for the code under test to reach a point instead of sleeping.
 */
export class FaultInjectingStore implements LeaseStore {
  /** The store the calls go to. */
  readonly inner: LeaseStore;
  /** Calls made, per operation (faulted ones included), counted when made. */
  readonly calls: OperationCounts = zeroCounts();
  /** Calls that returned or threw, per operation. */
  readonly settled: OperationCounts = zeroCounts();
  readonly #failing = new Map<LeaseStoreOperation, Error>();
  readonly #failNext = new Map<LeaseStoreOperation, { count: number; error: Error }>();
  readonly #delays = new Map<LeaseStoreOperation, number>();
  readonly #paused = new Set<LeaseStoreOperation>();
  readonly #held: HeldCall[] = [];
  readonly #watchers: { operation: LeaseStoreOperation; count: number; resolve(): void }[] = [];

  constructor(inner: LeaseStore) {
    this.inner = inner;
  }

  /** The inner store's {@link LeaseStore.peek}, without faults (an audit's read, not the read path's); nulls when it has none. */
  async peek(keys: readonly string[]): Promise<(Buffer | null)[]> {
    return this.inner.peek ? this.inner.peek(keys) : keys.map(() => null);
  }

  /** Every later call of `operations` (default all) throws `error` (default an {@link InjectedFaultError}) until {@link heal}. */
  fail(operations?: Operations, error?: Error): void {
    for (const operation of listOf(operations)) this.#failing.set(operation, error ?? injected(operation));
  }

  /** The next `count` calls of `operation` (default 1) throw `error` (default an {@link InjectedFaultError}); later ones go through. */
  failNext(operation: LeaseStoreOperation, count = 1, error?: Error): void {
    if (!(Number.isInteger(count) && count > 0)) throw new TypeError(`count must be a positive integer, got ${count}`);
    this.#failNext.set(operation, { count, error: error ?? injected(operation) });
  }

  /** Every later call of `operations` (default all) waits `ms` milliseconds before it goes on (a slow Redis), until {@link heal}. */
  delay(ms: number, operations?: Operations): void {
    if (!(Number.isFinite(ms) && ms >= 0)) throw new TypeError(`ms must be a non-negative number, got ${ms}`);
    for (const operation of listOf(operations)) this.#delays.set(operation, ms);
  }

  /** Holds every later call of `operations` (default all) before it reaches the store, until {@link resume} or {@link heal}. */
  pause(operations?: Operations): void {
    for (const operation of listOf(operations)) this.#paused.add(operation);
  }

  /** Stops holding `operations` (default all) and lets their held calls go on, in the order they were made. */
  resume(operations?: Operations): void {
    const resumed = new Set(listOf(operations));
    for (const operation of resumed) this.#paused.delete(operation);
    const released = this.#held.filter((call) => resumed.has(call.operation));
    this.#held.splice(0, this.#held.length, ...this.#held.filter((call) => !resumed.has(call.operation)));
    for (const call of released) call.release();
  }

  /** How many calls of `operation` (default any) are held now. */
  held(operation?: LeaseStoreOperation): number {
    return this.#held.filter((call) => operation === undefined || call.operation === operation).length;
  }

  /** Resolves once `count` calls of `operation` (default 1) are held at the same time. */
  whenHeld(operation: LeaseStoreOperation, count = 1): Promise<void> {
    if (this.held(operation) >= count) return Promise.resolve();
    return new Promise((resolve) => this.#watchers.push({ operation, count, resolve }));
  }

  /** Ends every fault: no failures, no delays, held calls let go. */
  heal(): void {
    this.#failing.clear();
    this.#failNext.clear();
    this.#delays.clear();
    this.resume();
  }

  getOrLease(requests: readonly LeaseRequest[], options: GetOrLeaseOptions): Promise<LeaseReply[]> {
    return this.#call('getOrLease', () => this.inner.getOrLease(requests, options));
  }

  setIfLeased(token: string, values: readonly VersionedValue[], trace?: CacheTrace): Promise<boolean[]> {
    return this.#call('setIfLeased', () => this.inner.setIfLeased(token, values, trace));
  }

  refresh(values: readonly VersionedValue[], etag: string): Promise<boolean[]> {
    return this.#call('refresh', () => this.inner.refresh(values, etag));
  }

  invalidate(keys: readonly string[], tags?: readonly string[]): Promise<void> {
    return this.#call('invalidate', () => this.inner.invalidate(keys, tags));
  }

  pending(keys: readonly string[], trace?: CacheTrace): Promise<PendingEntry[][]> {
    return this.#call('pending', () => this.inner.pending(keys, trace));
  }

  /** One call: held, delayed, failed as the faults say when it reaches each step, else passed on. */
  async #call<R>(operation: LeaseStoreOperation, pass: () => Promise<R>): Promise<R> {
    this.calls[operation] += 1;
    try {
      if (this.#paused.has(operation)) await this.#hold(operation);
      const ms = this.#delays.get(operation);
      if (ms !== undefined) await new Promise((resolve) => setTimeout(resolve, ms));
      const error = this.#failure(operation);
      if (error) throw error;
      return await pass();
    } finally {
      this.settled[operation] += 1;
    }
  }

  #hold(operation: LeaseStoreOperation): Promise<void> {
    return new Promise((release) => {
      this.#held.push({ operation, release });
      const count = this.held(operation);
      for (const watcher of [...this.#watchers]) {
        if (watcher.operation !== operation || count < watcher.count) continue;
        this.#watchers.splice(this.#watchers.indexOf(watcher), 1);
        watcher.resolve();
      }
    });
  }

  /** The error this call of `operation` throws, if any (a one-off failure is used up). */
  #failure(operation: LeaseStoreOperation): Error | undefined {
    const next = this.#failNext.get(operation);
    if (next) {
      next.count -= 1;
      if (next.count === 0) this.#failNext.delete(operation);
      return next.error;
    }
    return this.#failing.get(operation);
  }
}

function injected(operation: LeaseStoreOperation): InjectedFaultError {
  return new InjectedFaultError(`injected fault: ${operation} failed`);
}
