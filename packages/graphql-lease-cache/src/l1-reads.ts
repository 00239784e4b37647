import { at } from './at.js';
import { ABSENT } from './codec.js';
import type { L1Cache } from './l1-cache.js';
import type { PendingEntry } from './lease-store.js';
import type { FetchSpec } from './fetch-spec.js';

/**
 * The read path's use of the L1 (l1-cache.ts): items served from it before the get-or-lease,
 * and the values a read brought from Redis or the source held in it. An item whose reads
 * slide its expiry (`touchTtlMs`: sessions) is never served from it nor held: each read must
 * touch Redis. A write-behind item is held with the snapshot of its queued changes, which a
 * hit hands back to be applied as a Redis hit's are.
 */
export class L1Reads {
  readonly #l1: L1Cache | undefined;

  constructor(l1: L1Cache | undefined) {
    this.#l1 = l1;
  }

  /** The generation to read before a Redis call whose values may be held (see L1Cache.set); 0 without an L1. */
  startedAt(): number {
    return this.#l1?.generation ?? 0;
  }

  /**
   * Serves the items of `indexes` held in L1 into `out` (their queued changes into `pending`)
   * and returns the indexes served and the others, in order.
   */
  serve<T>(
    spec: FetchSpec<T>,
    indexes: readonly number[],
    out: (T | null)[],
    pending: Map<number, PendingEntry[]>,
  ): { served: number[]; rest: readonly number[] } {
    const l1 = this.#l1;
    if (!l1 || spec.touchTtlMs !== undefined || indexes.length === 0) return { served: [], rest: indexes };
    if (!l1.servable) {
      // Asked once for the batch, and counted at once: the closed gate is the common case without a fleet.
      l1.missed(indexes.length);
      return { served: [], rest: indexes };
    }
    const served: number[] = [];
    const rest: number[] = [];
    for (const index of indexes) {
      const entry = l1.get(at(spec.keys, index, 'spec.keys'));
      if (!entry) {
        rest.push(index);
        continue;
      }
      out[index] = entry.value === ABSENT ? null : (entry.value as T);
      if (entry.pending && entry.pending.length > 0) pending.set(index, [...entry.pending]);
      served.push(index);
    }
    if (served.length > 0 && spec.trace) spec.trace.l1Hits = (spec.trace.l1Hits ?? 0) + served.length;
    return { served, rest };
  }

  /**
   * Holds the value of item `index` (`ABSENT` for none) read by a call sent at generation
   * `startedAt`, with its queued changes as that call saw them; refused (by the L1) when it raced
   * an invalidation. `ttlMs`: its remaining TTL when known, else the spec's TTL caps it.
   */
  hold<T>(
    spec: FetchSpec<T>,
    index: number,
    fill: { value: unknown; bytes: number; startedAt: number; pending: readonly PendingEntry[] | undefined; ttlMs?: number },
  ): void {
    const l1 = this.#l1;
    if (!l1 || spec.touchTtlMs !== undefined) return;
    const key = at(spec.keys, index, 'spec.keys');
    // A hit's remaining life is not known here: its TTL caps how long the L1 holds it.
    const ttlMs = fill.ttlMs ?? spec.ttlMs(fill.value === ABSENT ? null : (fill.value as T), index);
    l1.set(key, fill.value, {
      startedAt: fill.startedAt,
      bytes: fill.bytes,
      dependencies: spec.tags?.[index] ?? [],
      ...(ttlMs > 0 ? { ttlMs } : {}),
      ...(spec.pendingKeys ? { pending: fill.pending ?? [] } : {}),
    });
  }
}
