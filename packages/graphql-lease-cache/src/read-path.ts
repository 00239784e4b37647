import type { CacheLogger } from './logger.js';
import type { CacheTrace } from './trace.js';
import { at } from './at.js';
import { decodedSizeEstimate, type Codec } from './codec.js';
import type { KnownPending } from './known-pending.js';
import type { L1Cache } from './l1-cache.js';
import { L1Reads } from './l1-reads.js';
import type { SortedReplies } from './hit-reads.js';
import type { LocalCopies, LocalCopy } from './local-copies.js';
import type { CacheEvents } from './events.js';
import type { LeaseReply, LeaseRequest, LeaseStore, PendingEntry, StaleValue } from './lease-store.js';
import { countLookups, nameOf, observePending, requestOf, type FetchSpec, type HitTally } from './fetch-spec.js';
import { newToken, reportFailure, sleep } from './core-helpers.js';
import type { PendingInvalidations } from './pending-invalidations.js';
import type { SourceLoads } from './source-loads.js';
import type { Fleet } from './fleet/fleet.js';
import type { Expiry } from './expiry.js';
import { HitReads } from './hit-reads.js';

/**
 * What the read path asks of the core it serves: its public calls, made as any caller's are
 * (an unreadable value is invalidated like any other, and write-behind changes read alike).
 */
export interface ReadHost {
  invalidate(keys: readonly string[]): Promise<void>;
  pendingChanges(keys: readonly string[], trace?: CacheTrace): Promise<PendingEntry[][]>;
}

/** Options of {@link ReadPath}. */
export interface ReadPathOptions {
  /** Null: no Redis; every fetch reads the source (and counts a miss). */
  store: LeaseStore | null;
  codec: Codec;
  events: CacheEvents;
  logger: CacheLogger;
  leaseTtlMs: number;
  leaseRetries: number;
  leaseWaitMs: number;
  tagTtlMs: number;
  knownPending: KnownPending | undefined;
  localCopies: LocalCopies | undefined;
  /** Values served with no round trip (see l1-reads.ts); undefined: none. */
  l1: L1Cache | undefined;
  /** The keys and tags that bypass the cache until their invalidation is delivered. */
  pending: PendingInvalidations;
  /** The source loads and fills, shared by readers of the same keys. */
  loads: SourceLoads;
  /** The fleet: the cache is read only while this member's lease holds. Default none. */
  fleet?: Fleet;
  /** Grace and early refresh (expiry.ts). */
  expiry: Expiry;
  host: ReadHost;
}

/**
 * The read side of the lease protocol (CacheCore.fetch): get-or-lease each key, serve the hits,
 * load and fill the leased, share a load of this process, and wait for other readers' leases.
 */
export class ReadPath {
  readonly #store: LeaseStore | null;
  readonly #hits: HitReads;
  readonly #events: CacheEvents;
  readonly #logger: CacheLogger;
  readonly #leaseTtlMs: number;
  readonly #leaseRetries: number;
  readonly #leaseWaitMs: number;
  readonly #tagTtlMs: number;
  readonly #knownPending: KnownPending | undefined;
  readonly #local: LocalCopies | undefined;
  readonly #pending: PendingInvalidations;
  readonly #loads: SourceLoads;
  readonly #host: ReadHost;
  readonly #fleet: Fleet | undefined;
  readonly #expiry: Expiry;
  /** Set once the fleet's first registration was tried: reads before wait for it. */
  #fleetStarted = false;
  readonly #l1: L1Reads;

  constructor(options: ReadPathOptions) {
    this.#store = options.store;
    this.#hits = new HitReads(options);
    this.#events = options.events;
    this.#logger = options.logger;
    this.#leaseTtlMs = options.leaseTtlMs;
    this.#leaseRetries = options.leaseRetries;
    this.#leaseWaitMs = options.leaseWaitMs;
    this.#tagTtlMs = options.tagTtlMs;
    this.#knownPending = options.knownPending;
    this.#local = options.localCopies;
    this.#pending = options.pending;
    this.#loads = options.loads;
    this.#host = options.host;
    this.#fleet = options.fleet;
    this.#expiry = options.expiry;
    this.#l1 = new L1Reads(options.l1);
  }

  /** See CacheCore.fetch. */
  async fetch<T>(spec: FetchSpec<T>): Promise<(T | null)[]> {
    const out = new Array<T | null>(spec.keys.length).fill(null);
    const dependencies = spec.trace?.dependencies;
    if (dependencies) {
      spec.keys.forEach((key, index) => {
        dependencies.add(key);
        for (const tag of spec.tags?.[index] ?? []) dependencies.add(tag);
      });
    }
    if (this.#fleet && !this.#fleetStarted) {
      await this.#fleet.ready;
      this.#fleetStarted = true;
    }
    // Without a lease, nothing is read from the cache: an invalidation may be owed that this
    // member would not know of (see fleet/).
    const usable = this.#store !== null && (this.#fleet?.servable() ?? true);
    const bypass: number[] = [];
    const candidates: number[] = [];
    spec.keys.forEach((key, index) => (!usable || this.#pending.bypasses(key, spec.tags?.[index]) ? bypass : candidates).push(index));
    const work: Promise<void>[] = [];
    const pending = new Map<number, PendingEntry[]>();
    if (bypass.length) {
      // Not looked up in Redis at all (no Redis, or a pending invalidation): misses.
      countLookups(this.#events, spec, [], bypass);
      this.#expiry.sourceWaits(spec, bypass);
      work.push(this.#loadWithPending(spec, bypass, out, pending));
    }
    // Served from this process's L1 with no round trip, when it may serve (counted as hits).
    const { served, rest } = this.#l1.serve(spec, candidates, out, pending);
    if (served.length) countLookups(this.#events, spec, served, []);
    if (rest.length) work.push(this.#fetchCandidates(spec, rest, out, pending));
    await Promise.all(work);
    if (spec.applyPending) {
      for (const [index, entries] of pending) {
        const value = out[index];
        if (value !== null && value !== undefined && entries.length > 0) out[index] = spec.applyPending(value, entries);
      }
    }
    return out;
  }

  /** Looks the items up in Redis in one get-or-lease, then serves each as its reply says. */
  async #fetchCandidates<T>(
    spec: FetchSpec<T>,
    indexes: readonly number[],
    out: (T | null)[],
    pending: Map<number, PendingEntry[]>,
  ): Promise<void> {
    const store = this.#store;
    if (!store) return;
    const token = newToken();
    let replies: LeaseReply[];
    const askedAt = Date.now();
    // Read before the call is sent: a value it brings that an invalidation since has voided is not held in L1.
    const startedAt = this.#l1.startedAt();
    // The copies whose etags are sent: held here, so that a "same" finds its copy even if the
    // copy is dropped from LocalCopies while the call is out.
    const copies: (LocalCopy | undefined)[] = [];
    try {
      replies = await store.getOrLease(this.#requestsWithEtags(spec, indexes, copies), {
        token,
        leaseTtlMs: this.#leaseTtlMs,
        touchTtlMs: spec.touchTtlMs,
        tagTtlMs: this.#tagTtlMs,
        trace: spec.trace,
      });
    } catch (error) {
      // Served from the source, with the queued write-behind changes all the same.
      this.#failed('get', error);
      countLookups(this.#events, spec, [], indexes);
      await this.#loadWithPending(spec, indexes, out, pending);
      return;
    }
    observePending(this.#knownPending, spec, indexes, replies, askedAt);

    const sorted = this.#sortReplies(spec, indexes, replies, { copies, startedAt }, out, pending);
    const { hits, unreadable, stale } = sorted;
    this.#hits.count(sorted.tally);
    const hitSet = new Set(hits);
    const misses = hits.length === indexes.length ? [] : indexes.filter((index) => !hitSet.has(index));
    countLookups(this.#events, spec, hits, misses);
    if (sorted.refreshing.length) this.#refreshEarly(spec, sorted.refreshing, token, { startedAt, pending });
    const { toLoad, toWait, served } = this.#servedWhileDown(spec, sorted, out, { token, startedAt, pending });
    this.#expiry.sourceWaits(spec, served.size ? misses.filter((index) => !served.has(index)) : misses);

    const work: Promise<void>[] = [...sorted.joins];
    if (toLoad.length)
      work.push(this.#expiry.orStale(spec, toLoad, out, stale, this.#loadAndFill(spec, toLoad, token, out, { startedAt, pending })));
    if (unreadable.length) {
      // Overwrite garbage only through the protocol: invalidate, then a later read refills it.
      work.push(this.#host.invalidate(unreadable.map((index) => at(spec.keys, index, 'spec.keys'))));
      work.push(this.#loads.loadInto(spec, unreadable, out));
    }
    if (toWait.length) work.push(this.#waitForBusy(spec, toWait, out, { pending, stale }));
    await Promise.all(work);
  }

  /**
   * While the source is known down, serves the expired values of leased and busy items at once (their
   * loads would wait for its timeout); the leased are reloaded in the background, to find it back.
   */
  #servedWhileDown<T>(
    spec: FetchSpec<T>,
    sorted: SortedReplies,
    out: (T | null)[],
    sent: { token: string; startedAt: number; pending: ReadonlyMap<number, PendingEntry[]> },
  ): { toLoad: number[]; toWait: number[]; served: ReadonlySet<number> } {
    const { leased, busy, stale } = sorted;
    const served = this.#expiry.serveWhileDown(spec, [...leased, ...busy], out, stale);
    if (served.size === 0) return { toLoad: leased, toWait: busy, served };
    const [probes, toLoad] = [leased.filter((index) => served.has(index)), leased.filter((index) => !served.has(index))];
    this.#refreshEarly(spec, probes, sent.token, sent, 'probe');
    return { toLoad, toWait: busy.filter((index) => !served.has(index)), served };
  }

  /**
   * Reloads and fills, in the background under `token` (their lease), items served as they are:
   * hits near the end of their TTL (`early`), or expired values served while the source is down (`probe`).
   */
  #refreshEarly<T>(
    spec: FetchSpec<T>,
    indexes: readonly number[],
    token: string,
    sent: { startedAt: number; pending: ReadonlyMap<number, PendingEntry[]> },
    why: 'early' | 'probe' = 'early',
  ): void {
    if (indexes.length === 0) return;
    // No request's: it may outlive the one that started it.
    const { trace: _trace, ...untraced } = spec;
    const discarded = new Array<T | null>(spec.keys.length).fill(null);
    this.#expiry.background(untraced, indexes, () => this.#loadAndFill(untraced, indexes, token, discarded, sent), why);
  }

  /** The get-or-lease requests of `indexes`, each with the etag of this process's copy, if any (kept in `copies`, same position). */
  #requestsWithEtags<T>(spec: FetchSpec<T>, indexes: readonly number[], copies: (LocalCopy | undefined)[]): LeaseRequest[] {
    return indexes.map((index, i) => {
      const request = requestOf(spec, index, this.#expiry.policy);
      const copy = this.#local?.get(request.key);
      copies[i] = copy;
      if (copy) request.etag = copy.etag;
      return request;
    });
  }

  /**
   * Serves the hits of a get-or-lease into `out` and sorts the other items by what they need
   * next; records each reply's write-behind changes in `pending`.
   */
  #sortReplies<T>(
    spec: FetchSpec<T>,
    indexes: readonly number[],
    replies: readonly LeaseReply[],
    sent: { copies: readonly (LocalCopy | undefined)[]; startedAt: number },
    out: (T | null)[],
    pending: Map<number, PendingEntry[]>,
  ): SortedReplies {
    const { copies, startedAt } = sent;
    const sorted: SortedReplies = {
      hits: [],
      leased: [],
      busy: [],
      unreadable: [],
      joins: [],
      refreshing: [],
      stale: new Map(),
      tally: new Map(),
    };
    replies.forEach((reply, i) => {
      const index = at(indexes, i, 'get-or-lease: the index of a reply');
      if (reply.pending) pending.set(index, reply.pending);
      if (reply.kind === 'same') {
        const copy = this.#hits.same(spec, index, copies[i], out, sorted.tally);
        this.#l1.hold(spec, index, { value: copy.value, bytes: copy.bytes, startedAt, pending: reply.pending });
        sorted.hits.push(index);
        if (reply.refresh) sorted.refreshing.push(index);
      } else if (reply.kind === 'hit') {
        const read = this.#hits.hit(spec, index, reply, out, sorted.tally);
        if (read)
          this.#l1.hold(spec, index, { value: read.value, bytes: decodedSizeEstimate(reply.payload), startedAt, pending: reply.pending });
        (read ? sorted.hits : sorted.unreadable).push(index);
        if (read && reply.refresh) sorted.refreshing.push(index);
      } else if (reply.kind === 'lease') {
        if (reply.stale) sorted.stale.set(index, reply.stale);
        sorted.leased.push(index);
      } else {
        if (reply.stale) sorted.stale.set(index, reply.stale);
        // Another reader is filling it. In this process? Then share its load (single flight).
        // (Not while the source is known down and it carried an expired value: served at once.)
        const flight = this.#loads.inFlight(at(spec.keys, index, 'spec.keys'));
        if (flight && flight.token === reply.token && !(reply.stale && this.#expiry.sourceRecentlyDown())) {
          const joined = flight.value.then((value) => {
            out[index] = value as T | null;
          });
          sorted.joins.push(this.#expiry.orStale(spec, [index], out, sorted.stale, joined));
        } else {
          sorted.busy.push(index);
        }
      }
    });
    return sorted;
  }

  /** Loads and fills the leased items; each one filled is held in L1 too (read at generation `sent.startedAt`). */
  #loadAndFill<T>(
    spec: FetchSpec<T>,
    indexes: readonly number[],
    token: string,
    out: (T | null)[],
    sent: { startedAt: number; pending: ReadonlyMap<number, PendingEntry[]> },
  ): Promise<void> {
    return this.#loads.loadAndFill(spec, indexes, token, out, (index, value, bytes, ttlMs) =>
      this.#l1.hold(spec, index, { value, bytes, ttlMs, startedAt: sent.startedAt, pending: sent.pending.get(index) }),
    );
  }

  /** Waits for other readers' leases with doubling pauses, retrying the cache; then loads without filling. */
  async #waitForBusy<T>(
    spec: FetchSpec<T>,
    indexes: readonly number[],
    out: (T | null)[],
    known: { pending: Map<number, PendingEntry[]>; stale: Map<number, StaleValue> },
  ): Promise<void> {
    const { pending, stale } = known;
    const store = this.#store;
    let waiting = [...indexes];
    for (let attempt = 0; store && waiting.length > 0 && attempt < this.#leaseRetries; attempt += 1) {
      for (const index of waiting) this.#events.lease(nameOf(spec, index), 'wait');
      await sleep(this.#leaseWaitMs * 2 ** attempt);
      let replies: LeaseReply[];
      const token = newToken();
      const askedAt = Date.now();
      const startedAt = this.#l1.startedAt();
      try {
        replies = await store.getOrLease(
          waiting.map((index) => requestOf(spec, index, this.#expiry.policy)),
          { token, leaseTtlMs: this.#leaseTtlMs, tagTtlMs: this.#tagTtlMs, trace: spec.trace },
        );
      } catch (error) {
        this.#failed('get', error);
        break;
      }
      observePending(this.#knownPending, spec, waiting, replies, askedAt);
      const stillBusy: number[] = [];
      const leased: number[] = [];
      const refreshing: number[] = [];
      const tally: HitTally = new Map();
      replies.forEach((reply, i) => {
        const index = at(waiting, i, 'get-or-lease: the index of a reply');
        // The newest snapshot of the changes goes with the newest read.
        if (reply.pending) pending.set(index, reply.pending);
        else pending.delete(index);
        if (reply.kind === 'hit') {
          const read = this.#hits.hit(spec, index, reply, out, tally);
          if (read)
            this.#l1.hold(spec, index, { value: read.value, bytes: decodedSizeEstimate(reply.payload), startedAt, pending: reply.pending });
          else stillBusy.push(index);
          if (read && reply.refresh) refreshing.push(index);
        } else {
          if (reply.kind !== 'same' && reply.stale) stale.set(index, reply.stale);
          (reply.kind === 'lease' ? leased : stillBusy).push(index);
        }
      });
      this.#hits.count(tally);
      if (refreshing.length) this.#refreshEarly(spec, refreshing, token, { startedAt, pending });
      if (leased.length)
        await this.#expiry.orStale(spec, leased, out, stale, this.#loadAndFill(spec, leased, token, out, { startedAt, pending }));
      waiting = stillBusy;
    }
    if (waiting.length) {
      for (const index of waiting) this.#events.lease(nameOf(spec, index), 'timeout');
      await this.#expiry.orStale(spec, waiting, out, stale, this.#loads.loadInto(spec, waiting, out));
    }
  }

  /**
   * Reads items from the source without filling them, with their queued write-behind changes
   * read first (from Redis, else as this process knows them): a flush in between then shows in
   * the document, and its `wbSeq` skips what it applied, so nothing is lost or counted twice.
   */
  async #loadWithPending<T>(
    spec: FetchSpec<T>,
    indexes: readonly number[],
    out: (T | null)[],
    pending: Map<number, PendingEntry[]>,
  ): Promise<void> {
    const pendingKeys = spec.pendingKeys;
    if (this.#store && pendingKeys) {
      const found = await this.#host.pendingChanges(
        indexes.map((index) => at(pendingKeys, index, 'spec.pendingKeys')),
        spec.trace,
      );
      found.forEach((entries, i) => {
        if (entries.length > 0) pending.set(at(indexes, i, 'pendingChanges: the index of a reply'), entries);
      });
    }
    await this.#loads.loadInto(spec, indexes, out);
  }

  #failed(op: string, error: unknown): void {
    reportFailure(this.#events, this.#logger, op, error);
  }
}
