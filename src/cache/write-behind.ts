import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { Cluster } from 'ioredis';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { Logger } from '../logger.js';
import { isKeyPart, type Keyspace } from './keys.js';
import type { KnownPending } from './known-pending.js';
import type { PendingEntry, RedisStore } from './redis-store.js';

/**
 * Write-behind: a mutation records its change in Redis and returns; a worker applies the
 * changes to MongoDB later, in batches, exactly once in effect.
 *
 * In Redis, one script call per change (atomic):
 *   - XADD to the stream `{wb}:writes`: `t` (type), `i` (id), `c` (the change as JSON);
 *   - HSET in the entity's hash `{Type:id}:wb`: stream entry id -> change. The hash has no
 *     expiry: it is the cached state MongoDB does not have yet.
 * Reads take the hash in the same round trip as the cached document (get-or-lease) and apply
 * its changes to the document, so a reader sees a change as soon as its mutation returned,
 * whether the document came from Redis or from MongoDB.
 *
 * In MongoDB, each document that can be written behind carries:
 *   - `wbSeq`: the last stream entry applied to it (stream ids are increasing, see
 *     {@link seqOf}); a change at or below it is already in the document. This is what makes a
 *     replay after a crash (write applied, not yet acknowledged) change nothing.
 *   - `wbAt.<field>`: when a synchronous write last set the field; an older queued change of
 *     that field is dropped (the later write wins), on reads and in the worker alike.
 *   - `wbDone`: ids of changes also written synchronously after an enqueue of unknown outcome
 *     (see {@link Change.u}); skipped likewise.
 * The worker updates a document only if what its folding depended on is unchanged: `wbSeq`,
 * `wbDone` holding none of the changes it took, and the `wbAt` fence of each field it sets (a
 * synchronous write of another field, say `stock`, commutes with the change and does not
 * hold it back). It sets `wbSeq` and increments `version` in the same update, reads back the
 * version MongoDB then has, and only then, in one script, acknowledges the entries, removes
 * them from the hash, and replaces any cached document older than that version with a version
 * floor, so the next read loads the new one with a TTL and no older write-through can be
 * stored after it.
 */

/** A change of one entity. */
export interface Change {
  /** Fields to set; where several queued changes set one field, the newest wins. */
  set?: Record<string, string | number | boolean | null>;
  /** Counters to add to; queued changes add up. */
  inc?: Record<string, number>;
  /** When the mutation ran (milliseconds since the epoch): compared with `wbAt` fences. */
  at: number;
  /**
   * A random id, recorded in the document's `wbDone` when the mutation had to write MongoDB
   * itself after an enqueue whose outcome it could not know (a timeout): if the enqueue did
   * happen, the queued copy is then skipped, not applied twice.
   */
  u?: string;
}

/** What write-behind reads and writes of a stored document besides its fields. */
export interface WriteBehindState {
  version: number;
  /** The {@link seqOf} of the last stream entry applied to the document. */
  wbSeq?: string | null;
  /** Per field, when a synchronous write last set it (milliseconds since the epoch). */
  wbAt?: Record<string, number | null | undefined> | null;
  /** The `u` of changes already written synchronously (see {@link Change.u}). */
  wbDone?: readonly string[] | null;
}

/** A queued change with the stream entry id that orders it. */
export interface QueuedChange {
  id: string;
  change: Change;
}

/** The stream entry id `<ms>-<n>` as a string that sorts like the id (fixed-width digits). */
export function seqOf(streamId: string): string {
  const [ms = '', n = ''] = streamId.split('-');
  if (!/^\d+$/.test(ms) || !/^\d+$/.test(n)) throw new TypeError(`not a stream entry id: ${JSON.stringify(streamId)}`);
  return `${ms.padStart(15, '0')}-${n.padStart(10, '0')}`;
}

/** Parses an encoded change; throws on anything else. */
export function decodeChange(raw: Buffer | string): Change {
  const value: unknown = JSON.parse(raw.toString());
  if (typeof value !== 'object' || value === null) throw new TypeError('write-behind change is not an object');
  const { set, inc, at, u } = value as Record<string, unknown>;
  if (typeof at !== 'number') throw new TypeError('write-behind change has no time');
  const change: Change = { at };
  if (typeof u === 'string') change.u = u;
  if (set !== undefined) {
    if (typeof set !== 'object' || set === null) throw new TypeError('write-behind change: bad set');
    change.set = set as Change['set'];
  }
  if (inc !== undefined) {
    if (typeof inc !== 'object' || inc === null || !Object.values(inc).every((n) => typeof n === 'number')) {
      throw new TypeError('write-behind change: bad inc');
    }
    change.inc = inc as Record<string, number>;
  }
  return change;
}

/** The effect of queued changes on a document: what to set and add, and the last entry applied. */
export interface Coalesced {
  set: Record<string, string | number | boolean | null>;
  inc: Record<string, number>;
  /** The {@link seqOf} of the newest change taken, or null when none is newer than `wbSeq`. */
  seq: string | null;
  /** The ids (`u`) of the changes taken: the write is void if any of them reaches `wbDone` first. */
  taken: string[];
}

/**
 * Folds the changes that `state` does not have yet (newer than `wbSeq`, not in `wbDone`), in
 * stream order: counters add up, the newest set of a field wins, and a set older than the
 * field's `wbAt` fence is dropped.
 */
export function coalesce(state: WriteBehindState, changes: readonly QueuedChange[]): Coalesced {
  const applied = state.wbSeq ?? '';
  const out: Coalesced = { set: {}, inc: {}, seq: null, taken: [] };
  const ordered = changes.map((c) => ({ seq: seqOf(c.id), change: c.change })).sort((a, b) => (a.seq < b.seq ? -1 : 1));
  const done = new Set(state.wbDone ?? []);
  for (const { seq, change } of ordered) {
    if (seq <= applied || (change.u !== undefined && done.has(change.u))) continue;
    out.seq = seq;
    if (change.u !== undefined) out.taken.push(change.u);
    for (const [field, n] of Object.entries(change.inc ?? {})) out.inc[field] = (out.inc[field] ?? 0) + n;
    for (const [field, value] of Object.entries(change.set ?? {})) {
      const fence = state.wbAt?.[field];
      if (typeof fence === 'number' && fence >= change.at) continue;
      out.set[field] = value;
    }
  }
  return out;
}

/** `doc` with the queued changes it does not have yet applied (a copy; `doc` is not changed). */
export function applyQueued<T extends WriteBehindState>(doc: T, pending: readonly PendingEntry[]): T {
  const changes: QueuedChange[] = [];
  for (const entry of pending) {
    try {
      changes.push({ id: entry.id, change: decodeChange(entry.change) });
    } catch {
      // Unreadable entries are the worker's to dead-letter; a read shows the document without them.
    }
  }
  return withChange(doc, coalesce(doc, changes));
}

/** `doc` with `set` applied and `inc` added (a copy). */
export function withChange<T>(doc: T, change: Pick<Change, 'set' | 'inc'>): T {
  const out: Record<string, unknown> = { ...doc, ...change.set };
  for (const [field, n] of Object.entries(change.inc ?? {})) {
    const current = out[field];
    out[field] = (typeof current === 'number' ? current : 0) + n;
  }
  return out as T;
}

// KEYS: stream, the entity's hash, its cached document. ARGV: type, id, change, the most
// changes an entity may have queued, the deadline (ms since the epoch).
// Reply: the stream entry id; false when the hash is full (the caller writes MongoDB itself,
//   which bounds what a read carries); an error 'LATE' past the deadline.
// The deadline is the caller's timeout: a call that ran late (Redis paused or stopped with the
// command already sent) has been given up on, and its change written to MongoDB by the caller;
// refusing it here keeps it from being applied twice (`wbDone` covers only the few calls that
// run just before their deadline). The cached document loses its expiry while the write is
// pending (a hot document stays cached); the flush gives it back (SETTLE).
const ENQUEUE = `
local now = redis.call('TIME')
if tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) > tonumber(ARGV[5]) then
  return redis.error_reply('LATE the caller gave up on this enqueue')
end
if redis.call('HLEN', KEYS[2]) >= tonumber(ARGV[4]) then return false end
local entry = redis.call('XADD', KEYS[1], '*', 't', ARGV[1], 'i', ARGV[2], 'c', ARGV[3])
redis.call('HSET', KEYS[2], entry, ARGV[3])
redis.call('PERSIST', KEYS[3])
return entry
`;

// KEYS: stream, dead-letter stream, then per entity its cached key and its write-behind hash.
// ARGV: group, lease suffix, floor TTL (ms), then per entity: n, reason ('' once applied),
//   type, id, floor version (0: none; else the version MongoDB has had since the write), n
//   entry ids.
// Reply: the number of entries acknowledged.
const SETTLE = `
local group, suffix, floorTtl = ARGV[1], ARGV[2], tonumber(ARGV[3])
local a, settled = 4, 0
for e = 3, #KEYS, 2 do
  local key, pending = KEYS[e], KEYS[e + 1]
  local n, reason, type, id, floor = tonumber(ARGV[a]), ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], tonumber(ARGV[a + 4])
  for j = a + 5, a + 4 + n do
    local entry = ARGV[j]
    if reason ~= '' then
      local change = redis.call('HGET', pending, entry) or ''
      redis.call('XADD', KEYS[2], '*', 'entry', entry, 't', type, 'i', id, 'c', change, 'error', reason)
    end
    redis.call('HDEL', pending, entry)
    settled = settled + redis.call('XACK', KEYS[1], group, entry)
    redis.call('XDEL', KEYS[1], entry)
  end
  -- A cached document older than the floor was loaded before this write: drop it and void
  -- fills in flight. Leave a floor ("<version>|", read as a miss) so that a write-through of an
  -- older version, still on its way, cannot be stored after this.
  redis.call('DEL', key .. suffix)
  if floor > 0 then
    -- A value (or floor) of this version or newer was loaded after the write: it stays.
    local stored = tonumber(string.match(redis.call('GETRANGE', key, 0, 20), '^(%d+)|'))
    if not (stored and stored >= floor) then
      redis.call('SET', key, floor .. '|', 'PX', floorTtl)
    elseif redis.call('PTTL', key) == -1 then
      -- Kept (loaded after the write), but persisted by an enqueue: its expiry comes back.
      redis.call('PEXPIRE', key, floorTtl)
    end
  else
    redis.call('DEL', key)
  end
  a = a + 5 + n
end
return settled
`;

// 2: the lease is newly this consumer's (it must take over what others left pending); 1: renewed; 0: another's.
const LEAD = `
local holder = redis.call('GET', KEYS[1])
if not holder then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 2 end
if holder == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
return 0
`;

// Reads for the group only while holding the lease, so that a worker that lost it (paused
// past its lease) cannot take entries a newer leader should have.
const READ = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('XREADGROUP', 'GROUP', ARGV[2], ARGV[1], 'COUNT', ARGV[3], 'STREAMS', KEYS[2], ARGV[4]) or {}
`;

const RESIGN = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

interface WriteBehindCommands {
  /** Key count fixed at definition: (stream, hash, entity key, type, id, change, max pending, deadline); null when refused. */
  gfcEnqueue(...args: string[]): Promise<string | null>;
  gfcSettle(numKeys: number, ...args: (string | number)[]): Promise<number>;
  /** (leader key, consumer, ttl ms). */
  gfcLead(...args: (string | number)[]): Promise<number>;
  /** (leader key, stream, consumer, group, count, from id). */
  gfcRead(...args: (string | number)[]): Promise<[string, [string, string[] | null][]][] | 0>;
  /** (leader key, consumer). */
  gfcResign(...args: string[]): Promise<number>;
}

/** The write-behind metrics (queue depth, flush latency, retries, dead letters). */
export interface WriteBehindMetrics {
  enqueued: Counter<'type'>;
  /** Mutations that wrote MongoDB synchronously because the queue was unavailable. */
  fallbacks: Counter<'type'>;
  flushed: Counter<'type'>;
  /** Documents updated in MongoDB (one per entity per batch, whatever the number of changes). */
  writes: Counter<'type'>;
  retries: Counter<'type'>;
  deadLetters: Counter<'type'>;
  flushDuration: Histogram;
  queueDepth: Gauge;
}

/** Registers the write-behind metrics on `registry`. */
export function createWriteBehindMetrics(registry: Registry): WriteBehindMetrics {
  const registers = [registry];
  const counter = (name: string, help: string) => new Counter<'type'>({ name, help, labelNames: ['type'], registers });
  return {
    enqueued: counter('write_behind_enqueued_total', 'Changes queued for MongoDB, by entity type.'),
    fallbacks: counter('write_behind_fallbacks_total', 'Write-behind mutations written to MongoDB synchronously (queue unavailable).'),
    flushed: counter('write_behind_flushed_total', 'Queued changes applied to MongoDB and acknowledged.'),
    writes: counter('write_behind_mongo_writes_total', 'Document updates the worker sent to MongoDB.'),
    retries: counter('write_behind_retries_total', 'Failed attempts to apply a change (it is tried again).'),
    deadLetters: counter('write_behind_dead_letters_total', 'Changes moved to the dead-letter stream.'),
    flushDuration: new Histogram({
      name: 'write_behind_flush_duration_seconds',
      help: 'Time to apply and acknowledge one batch of queued changes.',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    }),
    queueDepth: new Gauge({ name: 'write_behind_queue_depth', help: 'Changes queued and not yet acknowledged.', registers }),
  };
}

/** Options of {@link WriteBehindQueue}. */
export interface WriteBehindQueueOptions {
  /** Null (no Redis) or a Cluster: the queue is unavailable and callers write synchronously. */
  store: RedisStore | null;
  keys: Keyspace;
  metrics: WriteBehindMetrics;
  /** The most changes one entity may have queued; default 1000 (see {@link WriteBehindQueue.enqueue}). */
  maxPendingPerEntity?: number;
  /**
   * How long after the call Redis may still apply an enqueue, in milliseconds: the caller's
   * timeout, after which it writes MongoDB itself. Default 250 (the Redis command timeout).
   */
  enqueueDeadlineMs?: number;
  /** Told of every change queued, for reads while Redis cannot be asked. */
  knownPending?: KnownPending;
  /**
   * Awaited after each change queued, with the entity and the change: what reads show of the
   * entity changed (they apply the queue), so the whole responses that show it must go. Never throws.
   */
  afterEnqueue?: (type: string, id: string, change: Change) => Promise<void>;
}

/** The producer side: queues a change, or says it cannot (then the caller writes MongoDB itself). */
export class WriteBehindQueue {
  readonly #store: RedisStore | null;
  readonly #keys: Keyspace;
  readonly #metrics: WriteBehindMetrics;
  readonly #maxPending: number;
  readonly #deadlineMs: number;
  readonly #afterEnqueue: ((type: string, id: string, change: Change) => Promise<void>) | undefined;
  readonly #knownPending: KnownPending | undefined;

  constructor(options: WriteBehindQueueOptions) {
    // The change and its stream entry are written by one script, so they must share a node:
    // on a Cluster they cannot (the stream has one slot, entities have theirs).
    this.#store = options.store && !(options.store.client instanceof Cluster) ? options.store : null;
    if (this.#store) this.#store.client.defineCommand('gfcEnqueue', { numberOfKeys: 3, lua: ENQUEUE });
    this.#keys = options.keys;
    this.#metrics = options.metrics;
    this.#maxPending = options.maxPendingPerEntity ?? 1_000;
    this.#deadlineMs = options.enqueueDeadlineMs ?? 250;
    this.#knownPending = options.knownPending;
    this.#afterEnqueue = options.afterEnqueue;
  }

  /** False without Redis or on a Cluster: write-behind mutations then write synchronously. */
  get available(): boolean {
    return this.#store !== null;
  }

  /** The metrics (for the services' fallback counts). */
  get metrics(): WriteBehindMetrics {
    return this.#metrics;
  }

  /**
   * Queues `change` of entity `type:id` and returns its stream entry id, or null when the
   * entity already has `maxPendingPerEntity` changes queued (the worker has fallen behind; its
   * reads would grow without bound). Throws when Redis does not answer (unreachable, breaker
   * open) or the queue is unavailable. Either way the caller then writes MongoDB itself.
   */
  async enqueue(type: string, id: string, change: Change): Promise<string | null> {
    const store = this.#store;
    if (!store) throw new Error('write-behind is unavailable (no Redis, or a Redis Cluster)');
    const client = store.client as typeof store.client & Pick<WriteBehindCommands, 'gfcEnqueue'>;
    const encoded = JSON.stringify(change);
    const hash = this.#keys.pending(type, id);
    const entry = await store.call('enqueue', () =>
      client.gfcEnqueue(
        this.#keys.writeQueue.stream,
        hash,
        this.#keys.entity(type, id),
        type,
        id,
        encoded,
        String(this.#maxPending),
        String(Date.now() + this.#deadlineMs),
      ),
    );
    if (entry !== null) {
      this.#metrics.enqueued.inc({ type });
      this.#knownPending?.queued(hash, { id: entry, change: Buffer.from(encoded) });
      await this.#afterEnqueue?.(type, id, change);
    }
    return entry;
  }
}

/**
 * An update the worker asks a {@link WriteTarget} to make, only if the document is still as the
 * folding saw it: the same `wbSeq` (null: none yet), none of `notDone` in `wbDone`, and for
 * each field in `set` the same `wbAt` fence (null: none). Other changes to the document (a
 * synchronous write of another field) do not matter: the update commutes with them.
 */
export interface TargetUpdate {
  id: string;
  guard: { wbSeq: string | null; notDone: string[]; fences: Record<string, number | null> };
  set: Record<string, string | number | boolean | null>;
  inc: Record<string, number>;
  /** The new `wbSeq`. */
  seq: string;
}

/**
 * What became of one {@link TargetUpdate}. `failed` is for errors that trying again cannot fix
 * (the target refused this change); errors that can pass (the database unreachable, a primary
 * stepping down) are thrown, and the whole batch is tried again without counting a try.
 */
export type TargetOutcome =
  /** Applied; the document had `version` just after (a later write may have raised it). */
  { kind: 'applied'; version: number } | { kind: 'conflict' } | { kind: 'failed'; error: string };

/** Where one entity type's queued changes go (MongoDB, for this application). */
export interface WriteTarget {
  /** Why the target would never take this change of this entity (an unknown field, a bad id), or null. */
  refuse(id: string, change: Change): string | null;
  /** The write-behind state of the documents that exist and are live; absent ids are missing or deleted. */
  load(ids: readonly string[]): Promise<Map<string, WriteBehindState>>;
  /** Applies the updates (one batch write), each under its guard. */
  apply(updates: readonly TargetUpdate[]): Promise<TargetOutcome[]>;
}

/** Options of {@link WriteBehindWorker}. */
export interface WriteBehindWorkerOptions {
  store: RedisStore;
  keys: Keyspace;
  targets: Readonly<Record<string, WriteTarget>>;
  metrics: WriteBehindMetrics;
  logger: Logger;
  /** Most changes read per batch; default 500. */
  batchSize?: number;
  /** Pause between batches when the queue is drained, in milliseconds; default 100 (changes coalesce meanwhile). */
  intervalMs?: number;
  /** Pause before trying a failed change again (its entity's other changes wait; other entities do not), in milliseconds; default 1000. */
  retryMs?: number;
  /** Failed attempts after which a change goes to the dead-letter stream; default 5. */
  maxTries?: number;
  /** The leader lease (one worker applies at a time), in milliseconds; default 10000. */
  leaderTtlMs?: number;
  /** How long the version floor left by a flush holds, in milliseconds; default 60000. */
  floorTtlMs?: number;
  /** Called after MongoDB took a batch and before it is acknowledged (tests use it to crash there). */
  afterWrite?: () => Promise<void>;
  /** Called after the batch's documents were loaded and before they are written (tests race writes there). */
  beforeWrite?: () => Promise<void>;
  /**
   * Awaited after each batch is settled, with the entities it settled: applied (MongoDB has the
   * changes now, and what it set besides, such as `updatedAt`, shows from the next read) or
   * dead-lettered (reads no longer apply the changes), with the fields the changes named. What
   * reads show of those entities changed, so the whole responses that show it must go.
   */
  afterSettle?: (settled: readonly SettledEntity[]) => Promise<void>;
}

/** An entity whose queued changes a batch settled (see {@link WriteBehindWorkerOptions.afterSettle}). */
export interface SettledEntity {
  type: string;
  id: string;
  /** True when MongoDB has the changes; false when they were dead-lettered. */
  applied: boolean;
  /** The fields the settled changes set or added to. */
  fields: string[];
}

interface StreamEntry {
  id: string;
  type: string;
  entityId: string;
  change: Change | null;
}

/** Entries of one entity to settle: applied (`reason` '') or dead-lettered (`reason` says why). */
interface Settlement {
  type: string;
  id: string;
  entries: string[];
  reason: string;
  /** The version MongoDB has now, as a floor for the cached key; 0 for none. */
  floor: number;
}

/** The result of one {@link WriteBehindWorker.runOnce}. */
export interface BatchReport {
  /** Entries read. */
  read: number;
  /** Entries acknowledged as applied (or found already applied). */
  flushed: number;
  /** Entries that failed and stay queued. */
  failed: number;
  /** Entries moved to the dead-letter stream. */
  dead: number;
  /** Entities whose version moved while the batch ran (read again next batch). */
  conflicts: number;
}

const GROUP = 'writers';
/** The first pause after a conflict, in milliseconds; doubled per consecutive conflict, up to `retryMs`. */
const CONFLICT_PAUSE_MS = 5;
/** How many pages of its own pending entries a batch looks through, past entries waiting for a retry. */
const MAX_PENDING_PAGES = 10;

/**
 * The consumer side: one leader at a time (a Redis lease) reads the stream with a consumer
 * group, coalesces per entity, applies with one guarded batch write per type, and settles.
 *
 * Order per entity matters (a newer change applied before an older one would make the older
 * look applied), so: one leader, which reads only while it holds the lease (a script checks);
 * a new leader takes over every entry others left pending before it reads new ones; it reads
 * its own pending entries (failed ones) before new ones and only reads new ones when all
 * pending fit in the batch; and an entity whose update failed is retried with its oldest
 * change alone, so that a bad change cannot hold back the others once it is dead-lettered.
 * A worker that lost the lease while applying can still write what it read; the version
 * guard and `wbSeq` make that harmless (whoever writes second finds it applied).
 */
export class WriteBehindWorker {
  readonly #store: RedisStore;
  readonly #client: RedisStore['client'] & WriteBehindCommands;
  readonly #keys: Keyspace;
  readonly #targets: Readonly<Record<string, WriteTarget>>;
  readonly #metrics: WriteBehindMetrics;
  readonly #logger: Logger;
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
  #leader = false;
  /** This consumer took over what others left pending since it last won the lease. */
  #tookOver = false;
  #running = false;
  #loop: Promise<void> | undefined;
  #wake: (() => void) | undefined;

  constructor(options: WriteBehindWorkerOptions) {
    if (options.store.client instanceof Cluster) throw new Error('write-behind needs a standalone Redis (not a Cluster)');
    this.#store = options.store;
    this.#client = options.store.client as RedisStore['client'] & WriteBehindCommands;
    this.#client.defineCommand('gfcSettle', { lua: SETTLE });
    this.#client.defineCommand('gfcLead', { numberOfKeys: 1, lua: LEAD });
    this.#client.defineCommand('gfcResign', { numberOfKeys: 1, lua: RESIGN });
    this.#client.defineCommand('gfcRead', { numberOfKeys: 2, lua: READ });
    this.#keys = options.keys;
    this.#targets = options.targets;
    this.#metrics = options.metrics;
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
    if (options.drainMs && (await this.#lead().catch(() => false))) {
      const deadline = Date.now() + options.drainMs;
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
    if (this.#leader) {
      await this.#client.gfcResign(this.#keys.writeQueue.leader, this.#consumer).catch(() => 0);
      this.#leader = false;
    }
  }

  /** Changes queued and not yet acknowledged (the stream holds only those). */
  async depth(): Promise<number> {
    const depth = await this.#client.xlen(this.#keys.writeQueue.stream);
    this.#metrics.queueDepth.set(depth);
    return depth;
  }

  /**
   * One batch, if this worker is (or becomes) the leader: read, apply, settle. Exposed for
   * tests and the drain; the loop calls it.
   */
  async runOnce(): Promise<BatchReport> {
    const report: BatchReport = { read: 0, flushed: 0, failed: 0, dead: 0, conflicts: 0 };
    if (!(await this.#lead())) return report;
    const entries = await this.#read();
    report.read = entries.length;
    if (entries.length === 0) return report;
    const stopTimer = this.#metrics.flushDuration.startTimer();

    const settle: Settlement[] = [];
    const groups = new Map<string, { type: string; id: string; target: WriteTarget; entries: StreamEntry[] }>();
    for (const entry of entries) {
      const target = this.#targets[entry.type];
      const refused = !entry.change
        ? 'unreadable change'
        : !target
          ? `no target for type ${JSON.stringify(entry.type)}`
          : target.refuse(entry.entityId, entry.change);
      if (refused !== null || !target) {
        settle.push({ type: entry.type, id: entry.entityId, entries: [entry.id], reason: refused ?? 'refused', floor: 0 });
        continue;
      }
      const key = `${entry.type}:${entry.entityId}`;
      const group = groups.get(key) ?? { type: entry.type, id: entry.entityId, target, entries: [] };
      group.entries.push(entry);
      groups.set(key, group);
    }
    const now = Date.now();
    for (const [key, group] of groups) {
      // A failed change waiting for its next try holds back its entity's later changes (they
      // stay pending, in order), not the other entities.
      if ((this.#backoff.get(key) ?? 0) > now) {
        groups.delete(key);
        continue;
      }
      this.#backoff.delete(key);
      // Entries arrive in stream order; after a failure, the oldest change alone (the culprit is
      // found; the others wait behind it, still pending).
      if (this.#isolated.has(key)) group.entries = group.entries.slice(0, 1);
    }

    const byTarget = new Map<WriteTarget, { type: string; id: string; entries: StreamEntry[] }[]>();
    for (const group of groups.values()) byTarget.set(group.target, [...(byTarget.get(group.target) ?? []), group]);

    let wrote = false;
    for (const [target, items] of byTarget) {
      const states = await target.load(items.map((i) => i.id));
      const updates: { update: TargetUpdate; item: (typeof items)[number] }[] = [];
      for (const item of items) {
        const ids = item.entries.map((e) => e.id);
        const state = states.get(item.id);
        if (!state) {
          settle.push({ type: item.type, id: item.id, entries: ids, reason: 'no live document with this id', floor: 0 });
          continue;
        }
        const folded = coalesce(
          state,
          item.entries.flatMap((e) => (e.change ? [{ id: e.id, change: e.change }] : [])),
        );
        if (folded.seq === null || (Object.keys(folded.set).length === 0 && Object.keys(folded.inc).length === 0)) {
          // Already in MongoDB (a replay), or overridden by later synchronous writes.
          settle.push({ type: item.type, id: item.id, entries: ids, reason: '', floor: state.version });
          continue;
        }
        // Guarded by exactly what the folding read, and no more: only the changes it took can
        // void it (an id it skipped is in wbDone already, and would make the guard never match),
        // and a synchronous write of a field it does not set cannot starve it.
        const fences = Object.fromEntries(Object.keys(folded.set).map((field) => [field, state.wbAt?.[field] ?? null]));
        updates.push({
          item,
          update: {
            id: item.id,
            guard: { wbSeq: state.wbSeq ?? null, notDone: folded.taken, fences },
            set: folded.set,
            inc: folded.inc,
            seq: folded.seq,
          },
        });
      }
      if (updates.length === 0) continue;
      if (this.#beforeWrite) await this.#beforeWrite();
      const outcomes = await target.apply(updates.map((u) => u.update));
      wrote = true;
      if (outcomes.length !== updates.length) {
        throw new Error(`write target for ${items[0]?.type ?? '?'} returned ${outcomes.length} outcomes for ${updates.length} updates`);
      }
      updates.forEach(({ item }, i) => {
        const outcome = outcomes[i] as TargetOutcome;
        const ids = item.entries.map((e) => e.id);
        const key = `${item.type}:${item.id}`;
        if (outcome.kind === 'applied') {
          this.#metrics.writes.inc({ type: item.type });
          this.#isolated.delete(key);
          this.#conflicts.delete(key);
          for (const id of ids) this.#tries.delete(id);
          // The version read back after the write, not the one before plus one: a synchronous
          // write in between (which the guard allows) has a version of its own, and a document
          // cached at that version lacks this change.
          settle.push({ type: item.type, id: item.id, entries: ids, reason: '', floor: outcome.version });
        } else if (outcome.kind === 'conflict') {
          // Read again after a short, growing pause (a retry at once would hammer MongoDB while
          // the guard cannot match); never dead-lettered: a conflict is not the change's fault.
          report.conflicts += ids.length;
          const n = (this.#conflicts.get(key) ?? 0) + 1;
          this.#conflicts.set(key, n);
          this.#backoff.set(key, Date.now() + Math.min(this.#retryMs, CONFLICT_PAUSE_MS * 2 ** Math.min(n - 1, 10)));
        } else {
          this.#failed(item.type, item.id, ids, outcome.error, settle, report);
        }
      });
    }
    if (wrote && this.#afterWrite) await this.#afterWrite();
    await this.#settle(settle);
    if (this.#afterSettle) {
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
    for (const s of settle) {
      if (s.reason === '') {
        report.flushed += s.entries.length;
        this.#metrics.flushed.inc({ type: s.type }, s.entries.length);
      } else {
        report.dead += s.entries.length;
        this.#metrics.deadLetters.inc({ type: s.type }, s.entries.length);
        this.#logger.error({ type: s.type, id: s.id, entries: s.entries, reason: s.reason }, 'write-behind change dead-lettered');
      }
    }
    stopTimer();
    await this.depth();
    return report;
  }

  #failed(type: string, id: string, entries: string[], error: string, settle: Settlement[], report: BatchReport): void {
    const key = `${type}:${id}`;
    const head = entries[0] ?? '';
    this.#metrics.retries.inc({ type });
    if (entries.length > 1) {
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
      settle.push({ type, id, entries, reason: `${error} (after ${tries} tries)`, floor: 0 });
    } else {
      this.#isolated.add(key);
      this.#backoff.set(key, Date.now() + this.#retryMs);
      report.failed += 1;
      this.#logger.warn({ type, id, entry: head, tries, err: error }, 'write-behind change failed; retrying');
    }
  }

  async #run(): Promise<void> {
    while (this.#running) {
      let pause = this.#intervalMs;
      try {
        const report = await this.runOnce();
        const progress = report.flushed + report.dead > 0;
        if (!this.#leader) pause = this.#leaderTtlMs / 3;
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

  /** Takes or renews the leader lease; a new leader takes over the entries others left pending. */
  async #lead(): Promise<boolean> {
    try {
      const reply = await this.#client.gfcLead(this.#keys.writeQueue.leader, this.#consumer, this.#leaderTtlMs);
      if (reply === 2 || reply === 0) this.#tookOver = false;
      // Also after a take-over that failed half-way: until it succeeds, nothing is read.
      if (reply > 0 && !this.#tookOver) {
        await this.#ensureGroup();
        await this.#claimAll();
        this.#tookOver = true;
        this.#logger.info({ consumer: this.#consumer }, 'write-behind worker is the leader');
      }
      this.#leader = reply > 0;
    } catch (error) {
      this.#leader = false;
      throw error;
    }
    return this.#leader;
  }

  async #ensureGroup(): Promise<void> {
    try {
      await this.#client.xgroup('CREATE', this.#keys.writeQueue.stream, GROUP, '0', 'MKSTREAM');
    } catch (error) {
      if (!String(error).includes('BUSYGROUP')) throw error;
    }
  }

  /** Moves every pending entry of other consumers to this one (they are not the leader any more). */
  async #claimAll(): Promise<void> {
    let cursor = '0-0';
    do {
      const reply = (await this.#client.xautoclaim(
        this.#keys.writeQueue.stream,
        GROUP,
        this.#consumer,
        0,
        cursor,
        'COUNT',
        1000,
        'JUSTID',
      )) as [string, string[]];
      cursor = reply[0];
    } while (cursor !== '0-0');
  }

  /**
   * This consumer's pending entries first (oldest first), then new ones once all pending were
   * seen. Entries of entities waiting for a retry are passed over (they stay pending, and so do
   * their entity's later ones), so that they do not fill the batch and hold back the others.
   */
  async #read(): Promise<StreamEntry[]> {
    const now = Date.now();
    const waiting = (entry: StreamEntry) => (this.#backoff.get(`${entry.type}:${entry.entityId}`) ?? 0) > now;
    const out: StreamEntry[] = [];
    let from = '0';
    for (let page = 0; page < MAX_PENDING_PAGES; page += 1) {
      const entries = await this.#readGroup(this.#batchSize, from);
      out.push(...entries.filter((entry) => !waiting(entry)));
      if (entries.length < this.#batchSize) {
        // Every pending entry seen: new ones may follow them.
        if (out.length < this.#batchSize) out.push(...(await this.#readGroup(this.#batchSize - out.length, '>')));
        return out;
      }
      if (out.length >= this.#batchSize) return out;
      from = entries.at(-1)?.id ?? from;
    }
    return out;
  }

  async #readGroup(count: number, from: string): Promise<StreamEntry[]> {
    const { leader, stream } = this.#keys.writeQueue;
    const reply = await this.#client.gfcRead(leader, stream, this.#consumer, GROUP, count, from);
    if (reply === 0) {
      this.#leader = false; // the lease passed to another worker since this batch began
      return [];
    }
    const rows = reply[0]?.[1] ?? [];
    return rows.map(([id, fields]) => {
      const map = new Map<string, string>();
      for (let i = 0; fields && i + 1 < fields.length; i += 2) map.set(fields[i] ?? '', fields[i + 1] ?? '');
      let change: Change | null = null;
      try {
        change = decodeChange(map.get('c') ?? '');
      } catch {
        change = null;
      }
      return { id, type: map.get('t') ?? '', entityId: map.get('i') ?? '', change };
    });
  }

  async #settle(items: readonly Settlement[]): Promise<void> {
    if (items.length === 0) return;
    const { stream, dead, unnamed } = this.#keys.writeQueue;
    const keys = [stream, dead];
    const args: (string | number)[] = [GROUP, this.#keys.lease(''), this.#floorTtlMs];
    for (const item of items) {
      // An entry too broken to name its entity is still acknowledged (under a placeholder key).
      const named = isKeyPart(item.type) && isKeyPart(item.id);
      keys.push(named ? this.#keys.entity(item.type, item.id) : unnamed, named ? this.#keys.pending(item.type, item.id) : unnamed);
      args.push(item.entries.length, item.reason, item.type, item.id, item.floor, ...item.entries);
    }
    await this.#store.call('settle', () => this.#client.gfcSettle(keys.length, ...keys, ...args));
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
