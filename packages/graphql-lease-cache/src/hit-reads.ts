import type { CacheLogger } from './logger.js';
import { at } from './at.js';
import { ABSENT, decodedSizeEstimate, type Codec } from './codec.js';
import type { CacheEvents } from './events.js';
import type { LocalCopies, LocalCopy } from './local-copies.js';
import { nameOf, tallyRead, type FetchSpec, type HitTally } from './fetch-spec.js';
import { reportFailure } from './core-helpers.js';
import type { StaleValue } from './lease-store.js';

/** The replies of one get-or-lease, sorted by what each item needs next (see {@link ReadPath}'s #sortReplies). */
export interface SortedReplies {
  /** Served from the cache (a hit, or "same" as this process's copy). */
  hits: number[];
  /** Leased to this reader: load and fill. */
  leased: number[];
  /** Another reader's lease, not of this process: wait for its fill. */
  busy: number[];
  /** A value that does not decode: invalidated, and read from the source. */
  unreadable: number[];
  /** Another reader's lease of this process: its load, shared. */
  joins: Promise<void>[];
  /** Hits whose lease this reader took to refresh them early: reloaded in the background. */
  refreshing: number[];
  /** The expired values the misses carried (served if the source cannot answer). */
  stale: Map<number, StaleValue>;
  tally: HitTally;
}

/** The read path's decoding of hits (read-path.ts): values Redis sent, and copies it answered "same" for. */
export class HitReads {
  readonly #codec: Codec;
  readonly #local: LocalCopies | undefined;
  readonly #events: CacheEvents;
  readonly #logger: CacheLogger;

  constructor(options: { codec: Codec; localCopies: LocalCopies | undefined; events: CacheEvents; logger: CacheLogger }) {
    this.#codec = options.codec;
    this.#local = options.localCopies;
    this.#events = options.events;
    this.#logger = options.logger;
  }

  /** Serves `out[index]` from this process's copy, which Redis answered is still the stored value; returns the copy. */
  same<T>(spec: FetchSpec<T>, index: number, copy: LocalCopy | undefined, out: (T | null)[], tally: HitTally): LocalCopy {
    if (!copy) throw new Error(`the cache answered "same" for ${at(spec.keys, index, 'spec.keys')}, whose etag was not sent`);
    out[index] = copy.value === ABSENT ? null : (copy.value as T);
    if (copy.value === ABSENT) tallyRead(tally, nameOf(spec, index), 0, true);
    return copy;
  }

  /** Decodes a hit into `out[index]` and returns the decoded value (`ABSENT` for none); null (counted as a decode error) when it is unreadable. */
  hit<T>(
    spec: FetchSpec<T>,
    index: number,
    reply: { payload: Buffer; etag: string },
    out: (T | null)[],
    tally: HitTally,
  ): { value: unknown } | null {
    const { payload, etag } = reply;
    try {
      const value = this.#codec.decode(payload);
      this.#local?.set(at(spec.keys, index, 'spec.keys'), etag, value, decodedSizeEstimate(payload));
      tallyRead(tally, nameOf(spec, index), payload.length, value === ABSENT);
      out[index] = value === ABSENT ? null : (value as T);
      return { value };
    } catch (error) {
      reportFailure(this.#events, this.#logger, 'decode', error);
      return null;
    }
  }

  /** Reports a batch's bytes read: once per name, not once per value. */
  count(tally: HitTally): void {
    for (const [name, { bytes, absent }] of tally) this.#events.read(name, bytes, absent);
  }
}
