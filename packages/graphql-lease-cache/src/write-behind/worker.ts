import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { CacheLogger } from '../logger.js';
import { isKeyPart, type Keyspace } from '../keys.js';
import type { RedisStore } from '../redis-store.js';
import { coalesce, type WriteBehindState } from './change.js';
import { ClusterStreams, isCluster } from './cluster-streams.js';
import { LeaderLease } from './leader.js';
import type { CacheEvents } from '../events.js';
import { defineWorkerCommands, type WriteBehindCommands } from './scripts/index.js';
import type { TargetOutcome, TargetUpdate, WriteTarget } from './target.js';
import { StreamReader, type EntrySource, type Settlement, type StreamEntry } from './stream.js';
import type { BatchReport, SettledEntity, WriteBehindWorkerOptions } from './worker-options.js';

/** The first pause after a conflict, in milliseconds; doubled per consecutive conflict, up to `retryMs`. */
const CONFLICT_PAUSE_MS = 5;

/** The queued changes of one entity in a batch, and where they go. */
interface EntityBatch {
  /** The stream its entries were read from (on a Cluster, the entity's slot's). */
  stream: string;
  type: string;
  id: string;
  target: WriteTarget;
  entries: StreamEntry[];
}

/**
 * The consumer side: one leader at a time (a Redis lease, ./leader.ts) reads the stream with a
 * consumer group (on a Cluster, every slot's stream: ./cluster-streams.ts), coalesces per
 * entity, applies with one guarded batch write per type, and settles.
 *
 * Order per entity matters (a newer change applied before an older one would make the older
 * look applied), so: one leader, which reads only while it holds the lease (a script checks);
 * a new leader takes over every entry others left pending before it reads new ones; it reads
 * its own pending entries (failed ones) before new ones and only reads new ones when all
 * pending fit in the batch; and an entity whose update failed is retried with its oldest
 * change alone, so that a bad change cannot hold back the others once it is dead-lettered.
 * A worker that lost the lease while applying can still write what it read; the version
 * guard and `wbSeq` make that harmless (whoever writes second finds it applied).
 *
 * Every Redis call goes through the store (`RedisStore.call`), so the breaker and the Redis
 * events see the worker's calls as they see the requests'.
 */
export class WriteBehindWorker {
  readonly #store: RedisStore;
  readonly #client: RedisStore['client'] & WriteBehindCommands;
  readonly #keys: Keyspace;
  readonly #targets: Readonly<Record<string, WriteTarget>>;
  readonly #events: CacheEvents;
  readonly #logger: CacheLogger;
  readonly #lease: LeaderLease;
  readonly #source: EntrySource;
  readonly #batchSize: number;
  readonly #intervalMs: number;
  readonly #retryMs: number;
  readonly #maxTries: number;
  readonly #leaderTtlMs: number;
  readonly #floorTtlMs: number;
  readonly #afterWrite: (() => Promise<void>) | undefined;
  readonly #beforeWrite: (() => Promise<void>) | undefined;
  readonly #afterSettle: ((settled: readonly SettledEntity[]) => Promise<void>) | undefined;
  readonly #consumer = `${hostname()}-${process.pid}-${randomBytes(4).toString('hex')}`;
  /** Failed tries per entry id (in this process). */
  readonly #tries = new Map<string, number>();
  /** Entities (`type:id`) retried with their oldest change alone. */
  readonly #isolated = new Set<string>();
  /** Entities (`type:id`) whose failed change waits until then (ms) before its next try; the others flush meanwhile. */
  readonly #backoff = new Map<string, number>();
  /** Consecutive conflicts per entity (`type:id`), for the pause before reading it again. */
  readonly #conflicts = new Map<string, number>();
  #running = false;
  #loop: Promise<void> | undefined;
  #wake: (() => void) | undefined;

  constructor(options: WriteBehindWorkerOptions) {
    this.#store = options.store;
    this.#client = defineWorkerCommands(options.store.client);
    this.#keys = options.keys;
    this.#targets = options.targets;
    this.#events = options.store.events;
    this.#logger = options.logger.child({ component: 'write-behind' });
    this.#batchSize = options.batchSize ?? 500;
    this.#intervalMs = options.intervalMs ?? 100;
    this.#retryMs = options.retryMs ?? 1_000;
    this.#maxTries = options.maxTries ?? 5;
    this.#leaderTtlMs = options.leaderTtlMs ?? 10_000;
    this.#floorTtlMs = options.floorTtlMs ?? 60_000;
    this.#afterWrite = options.afterWrite;
    this.#beforeWrite = options.beforeWrite;
    this.#afterSettle = options.afterSettle;
    this.#lease = new LeaderLease({
      store: this.#store,
      client: this.#client,
      keys: this.#keys,
      consumer: this.#consumer,
      ttlMs: this.#leaderTtlMs,
      logger: this.#logger,
      // On a Cluster each stream's fence takes over what other consumers left (scripts/read-fenced.ts).
      takeOver: !isCluster(this.#client),
    });
    const common = { store: this.#store, keys: this.#keys, consumer: this.#consumer, floorTtlMs: this.#floorTtlMs };
    const client = this.#client;
    this.#source = isCluster(client)
      ? new ClusterStreams({ ...common, client, logger: this.#logger, fenceTtlMs: this.#leaderTtlMs, intervalMs: this.#intervalMs })
      : new StreamReader({ ...common, client, lease: this.#lease });
  }

  /** This worker's consumer name in the group. */
  get consumer(): string {
    return this.#consumer;
  }

  /** Starts the loop (in the background). */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#loop = this.#run();
  }

  /**
   * Stops the loop. With `drainMs`, the leader first applies what is queued, for at most that
   * long (SIGTERM); what is left stays queued for the next leader.
   */
  async stop(options: { drainMs?: number } = {}): Promise<void> {
    this.#running = false;
    this.#wake?.();
    await this.#loop;
    this.#loop = undefined;
    if (options.drainMs && (await this.#lease.acquire().catch(() => false))) await this.#drain(options.drainMs);
    if (this.#lease.held) await this.#source.resign();
    await this.#lease.resign();
  }

  /** Changes queued and not yet acknowledged (the stream holds only those). */
  async depth(): Promise<number> {
    const depth = await this.#source.depth();
    this.#events.depth(depth);
    return depth;
  }

  /**
   * One batch, if this worker is (or becomes) the leader: read, apply, settle. Exposed for
   * tests and the drain; the loop calls it.
   */
  async runOnce(): Promise<BatchReport> {
    const report: BatchReport = { read: 0, flushed: 0, failed: 0, dead: 0, conflicts: 0 };
    if (!(await this.#lease.acquire())) return report;
    const entries = await this.#read();
    report.read = entries.length;
    if (entries.length === 0) return report;
    const started = performance.now();
    const settle: Settlement[] = [];
    const batches = this.#due(this.#byEntity(entries, settle));
    const byTarget = new Map<WriteTarget, EntityBatch[]>();
    for (const batch of batches) byTarget.set(batch.target, [...(byTarget.get(batch.target) ?? []), batch]);
    let wrote = false;
    for (const [target, items] of byTarget) wrote = (await this.#apply(target, items, settle, report)) || wrote;
    if (wrote && this.#afterWrite) await this.#afterWrite();
    await this.#source.settle(settle);
    await this.#announce(entries, settle);
    this.#count(settle, report);
    this.#events.flush(performance.now() - started);
    await this.depth();
    return report;
  }

  /** The entries grouped by entity; entries no target takes are dead-lettered at once (into `settle`). */
  #byEntity(entries: readonly StreamEntry[], settle: Settlement[]): Map<string, EntityBatch> {
    const batches = new Map<string, EntityBatch>();
    for (const entry of entries) {
      const target = this.#targets[entry.type];
      const refused = !entry.change
        ? 'unreadable change'
        : !target
          ? `no target for type ${JSON.stringify(entry.type)}`
          : target.refuse(entry.entityId, entry.change);
      if (refused !== null || !target) {
        settle.push({
          stream: entry.stream,
          type: entry.type,
          id: entry.entityId,
          entries: [entry.id],
          reason: refused ?? 'refused',
          floor: 0,
        });
        continue;
      }
      const key = `${entry.type}:${entry.entityId}`;
      const batch = batches.get(key) ?? { stream: entry.stream, type: entry.type, id: entry.entityId, target, entries: [] };
      batch.entries.push(entry);
      batches.set(key, batch);
    }
    return batches;
  }

  /** The entities due now: a failed change waiting for its next try holds back its entity's later changes (they stay pending, in order), not the others. */
  #due(batches: Map<string, EntityBatch>): EntityBatch[] {
    const now = Date.now();
    const due: EntityBatch[] = [];
    for (const [key, batch] of batches) {
      if ((this.#backoff.get(key) ?? 0) > now) continue;
      this.#backoff.delete(key);
      // Entries arrive in stream order; after a failure, the oldest change alone (the culprit is
      // found; the others wait behind it, still pending).
      if (this.#isolated.has(key)) batch.entries = batch.entries.slice(0, 1);
      due.push(batch);
    }
    return due;
  }

  /** Folds and applies one target's entities with one guarded batch write; true when it wrote. */
  async #apply(target: WriteTarget, items: readonly EntityBatch[], settle: Settlement[], report: BatchReport): Promise<boolean> {
    const states = await target.load(items.map((i) => i.id));
    const updates: { update: TargetUpdate; item: EntityBatch }[] = [];
    for (const item of items) {
      const state = states.get(item.id);
      const update = state ? this.#fold(item, state, settle) : null;
      if (!state) settle.push({ ...settlementOf(item), reason: 'no live document with this id', floor: 0 });
      if (update) updates.push({ item, update });
    }
    if (updates.length === 0) return false;
    if (this.#beforeWrite) await this.#beforeWrite();
    const outcomes = await target.apply(updates.map((u) => u.update));
    if (outcomes.length !== updates.length) {
      throw new Error(`write target for ${items[0]?.type ?? '?'} returned ${outcomes.length} outcomes for ${updates.length} updates`);
    }
    updates.forEach(({ item }, i) => this.#outcome(item, outcomes[i] as TargetOutcome, settle, report));
    return true;
  }

  /**
   * The guarded update of one entity's changes, or null when there is nothing to write (already
   * in the database, a replay, or overridden by later synchronous writes: then settled as applied).
   */
  #fold(item: EntityBatch, state: WriteBehindState, settle: Settlement[]): TargetUpdate | null {
    const folded = coalesce(
      state,
      item.entries.flatMap((e) => (e.change ? [{ id: e.id, change: e.change }] : [])),
    );
    if (folded.seq === null || (Object.keys(folded.set).length === 0 && Object.keys(folded.inc).length === 0)) {
      settle.push({ ...settlementOf(item), reason: '', floor: state.version });
      return null;
    }
    // Guarded by exactly what the folding read, and no more: only the changes it took can void
    // it (an id it skipped is in wbDone already, and would make the guard never match), and a
    // synchronous write of a field it does not set cannot starve it.
    const fences = Object.fromEntries(Object.keys(folded.set).map((field) => [field, state.wbAt?.[field] ?? null]));
    return {
      id: item.id,
      guard: { wbSeq: state.wbSeq ?? null, notDone: folded.taken, fences },
      set: folded.set,
      inc: folded.inc,
      seq: folded.seq,
    };
  }

  /** What one entity's update came to: settled as applied, paused after a conflict, or counted as a failure. */
  #outcome(item: EntityBatch, outcome: TargetOutcome, settle: Settlement[], report: BatchReport): void {
    const { entries: ids } = settlementOf(item);
    const key = `${item.type}:${item.id}`;
    if (outcome.kind === 'applied') {
      this.#events.writeBehind('write', item.type);
      this.#isolated.delete(key);
      this.#conflicts.delete(key);
      for (const id of ids) this.#tries.delete(id);
      // The version read back after the write, not the one before plus one: a synchronous write
      // in between (which the guard allows) has a version of its own, and a document cached at
      // that version lacks this change.
      settle.push({ ...settlementOf(item), reason: '', floor: outcome.version });
    } else if (outcome.kind === 'conflict') {
      // Read again after a short, growing pause (a retry at once would hammer the database while the
      // guard cannot match); never dead-lettered: a conflict is not the change's fault.
      report.conflicts += ids.length;
      const n = (this.#conflicts.get(key) ?? 0) + 1;
      this.#conflicts.set(key, n);
      this.#backoff.set(key, Date.now() + Math.min(this.#retryMs, CONFLICT_PAUSE_MS * 2 ** Math.min(n - 1, 10)));
    } else {
      this.#failed(item, outcome.error, settle, report);
    }
  }

  #failed(item: EntityBatch, error: string, settle: Settlement[], report: BatchReport): void {
    const { stream, type, id, entries } = settlementOf(item);
    const key = `${type}:${id}`;
    this.#events.writeBehind('retry', type);
    const [head] = entries;
    if (entries.length > 1 || head === undefined) {
      // Several changes failed together: find the culprit by trying the oldest alone.
      this.#isolated.add(key);
      report.failed += entries.length;
      return;
    }
    const tries = (this.#tries.get(head) ?? 0) + 1;
    this.#tries.set(head, tries);
    if (tries >= this.#maxTries) {
      this.#tries.delete(head);
      this.#isolated.delete(key);
      settle.push({ stream, type, id, entries, reason: `${error} (after ${tries} tries)`, floor: 0 });
    } else {
      this.#isolated.add(key);
      this.#backoff.set(key, Date.now() + this.#retryMs);
      report.failed += 1;
      this.#logger.warn({ type, id, entry: head, tries, err: error }, 'write-behind change failed; retrying');
    }
  }

  /** Tells `afterSettle` which entities were settled, and the fields their changes named. */
  async #announce(entries: readonly StreamEntry[], settle: readonly Settlement[]): Promise<void> {
    if (!this.#afterSettle) return;
    const fieldsOf = new Map(
      entries.map((e) => [e.id, e.change ? [...Object.keys(e.change.set ?? {}), ...Object.keys(e.change.inc ?? {})] : []]),
    );
    const settled = settle
      .filter((s) => isKeyPart(s.type) && isKeyPart(s.id))
      .map((s) => ({
        type: s.type,
        id: s.id,
        applied: s.reason === '',
        fields: [...new Set(s.entries.flatMap((entry) => fieldsOf.get(entry) ?? []))],
      }));
    if (settled.length > 0) await this.#afterSettle(settled);
  }

  /** Counts what was settled in the report, the metrics and the log. */
  #count(settle: readonly Settlement[], report: BatchReport): void {
    for (const s of settle) {
      if (s.reason === '') {
        report.flushed += s.entries.length;
        this.#events.writeBehind('flushed', s.type, s.entries.length);
      } else {
        report.dead += s.entries.length;
        this.#events.writeBehind('dead-letter', s.type, s.entries.length);
        this.#logger.error({ type: s.type, id: s.id, entries: s.entries, reason: s.reason }, 'write-behind change dead-lettered');
      }
    }
  }

  /** Applies what is queued for at most `ms` (the leader, stopping). */
  async #drain(ms: number): Promise<void> {
    const deadline = Date.now() + ms;
    try {
      while (Date.now() < deadline && (await this.depth()) > 0) {
        const report = await this.runOnce();
        // No progress (changes waiting for their retry, versions moving): do not spin.
        if (report.flushed + report.dead === 0) await sleep(Math.min(this.#intervalMs, Math.max(0, deadline - Date.now())));
      }
      const left = await this.depth();
      if (left > 0) this.#logger.warn({ left }, 'stopping with queued changes; the next worker applies them');
      else this.#logger.info('write-behind queue drained');
    } catch (error) {
      this.#logger.warn({ err: error }, 'could not drain the write-behind queue; the next worker applies it');
    }
  }

  async #run(): Promise<void> {
    while (this.#running) {
      let pause = this.#intervalMs;
      try {
        const report = await this.runOnce();
        const progress = report.flushed + report.dead > 0;
        if (!this.#lease.held) pause = this.#leaderTtlMs / 3;
        else if (report.conflicts > 0) pause = Math.min(this.#intervalMs, CONFLICT_PAUSE_MS);
        else if (report.read >= this.#batchSize && progress) pause = 0;
      } catch (error) {
        this.#logger.warn({ err: error }, 'write-behind batch failed; retrying');
        pause = this.#retryMs;
      }
      if (this.#running && pause > 0) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, pause);
          this.#wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.#wake = undefined;
      }
    }
  }

  /** The next entries to apply; those of entities waiting for a retry are passed over (see {@link StreamReader.read}). */
  async #read(): Promise<StreamEntry[]> {
    const now = Date.now();
    return this.#source.read(this.#batchSize, (entry) => (this.#backoff.get(`${entry.type}:${entry.entityId}`) ?? 0) > now);
  }
}

/** The type, id and entry ids of an entity's batch, for a {@link Settlement}. */
function settlementOf(item: EntityBatch): Pick<Settlement, 'stream' | 'type' | 'id' | 'entries'> {
  return { stream: item.stream, type: item.type, id: item.id, entries: item.entries.map((e) => e.id) };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
