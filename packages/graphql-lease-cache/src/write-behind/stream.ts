import { isKeyPart, type Keyspace } from '../keys.js';
import type { RedisStore } from '../redis-store.js';
import { decodeChange, type Change } from './change.js';
import { GROUP, type LeaderLease } from './leader.js';
import type { WriteBehindCommands } from './scripts/index.js';

/** How many pages of its own pending entries a batch looks through, past entries waiting for a retry. */
const MAX_PENDING_PAGES = 10;

/** An entry of the stream, as the worker reads it. */
export interface StreamEntry {
  /** The stream it was read from (on a Cluster, its slot's). */
  stream: string;
  id: string;
  type: string;
  entityId: string;
  change: Change | null;
}

/** Entries of one entity to settle: applied (`reason` '') or dead-lettered (`reason` says why). */
export interface Settlement {
  /** The stream the entries were read from. */
  stream: string;
  type: string;
  id: string;
  entries: string[];
  reason: string;
  /** The version the database has now, as a floor for the cached key; 0 for none. */
  floor: number;
}

/** A stream entry from its id and fields (`t`, `i`, `c`); an unreadable change is null (dead-lettered). */
export function streamEntry(stream: string, id: string, fields: string[] | null): StreamEntry {
  const map = new Map<string, string>();
  for (let i = 0; fields && i + 1 < fields.length; i += 2) {
    const [name, value] = [fields[i], fields[i + 1]];
    if (name !== undefined && value !== undefined) map.set(name, value);
  }
  let change: Change | null = null;
  try {
    change = decodeChange(map.get('c') ?? '');
  } catch {
    change = null;
  }
  return { stream, id, type: map.get('t') ?? '', entityId: map.get('i') ?? '', change };
}

/** Options of {@link StreamReader}. */
export interface StreamReaderOptions {
  store: RedisStore;
  client: RedisStore['client'] & WriteBehindCommands;
  keys: Keyspace;
  consumer: string;
  lease: LeaderLease;
  /** How long the version floor left by a flush holds, in milliseconds. */
  floorTtlMs: number;
}

/** What the worker reads its entries through: one stream on one Redis, a stream per slot on a Cluster. */
export interface EntrySource {
  /** The next entries to apply, at most about `count`; see {@link StreamReader.read}. */
  read(count: number, waiting: (entry: StreamEntry) => boolean): Promise<StreamEntry[]>;
  /** Acknowledges what a batch applied or dead-lettered (one SETTLE per stream). */
  settle(items: readonly Settlement[]): Promise<void>;
  /** Changes queued and not yet acknowledged. */
  depth(): Promise<number>;
  /** Lets go of what this consumer holds besides the leader lease (a Cluster's fences). */
  resign(): Promise<void>;
}

/** Reads the stream for the worker (one Redis), through its consumer group, while it holds the lease. */
export class StreamReader implements EntrySource {
  readonly #options: StreamReaderOptions;

  constructor(options: StreamReaderOptions) {
    this.#options = options;
  }

  /**
   * This consumer's pending entries first (oldest first), then new ones once all pending were
   * seen, at most `count`. Entries for which `waiting` is true (their entity waits for a retry)
   * are passed over: they stay pending, and so do their entity's later ones, so that they do
   * not fill the batch and hold back the others.
   */
  async read(count: number, waiting: (entry: StreamEntry) => boolean): Promise<StreamEntry[]> {
    const out: StreamEntry[] = [];
    let from = '0';
    for (let page = 0; page < MAX_PENDING_PAGES; page += 1) {
      const entries = await this.#readGroup(count, from);
      out.push(...entries.filter((entry) => !waiting(entry)));
      if (entries.length < count) {
        // Every pending entry seen: new ones may follow them.
        if (out.length < count) out.push(...(await this.#readGroup(count - out.length, '>')));
        return out;
      }
      if (out.length >= count) return out;
      from = entries.at(-1)?.id ?? from;
    }
    return out;
  }

  settle(items: readonly Settlement[]): Promise<void> {
    const { store, client, keys, floorTtlMs } = this.#options;
    return settleStream({ store, client, keys, queue: keys.writeQueue, floorTtlMs }, items, () => true);
  }

  depth(): Promise<number> {
    const { store, client, keys } = this.#options;
    return store.call('wb-depth', () => client.xlen(keys.writeQueue.stream));
  }

  resign(): Promise<void> {
    return Promise.resolve(); // the leader lease is all it holds
  }

  async #readGroup(count: number, from: string): Promise<StreamEntry[]> {
    const { store, client, keys, consumer, lease } = this.#options;
    const { leader, stream } = keys.writeQueue;
    const reply = await store.call('wb-read', () => client.glcRead(leader, stream, consumer, GROUP, count, from));
    if (reply === 0) {
      lease.lost(); // the lease passed to another worker since this batch began
      return [];
    }
    return (reply[0]?.[1] ?? []).map(([id, fields]) => streamEntry(stream, id, fields));
  }
}

/** What {@link settleStream} runs with. */
export interface SettleContext {
  store: RedisStore;
  client: RedisStore['client'] & WriteBehindCommands;
  keys: Keyspace;
  /** The stream's keys: itself, its dead letters, its placeholder (all in one slot). */
  queue: { stream: string; dead: string; unnamed: string };
  floorTtlMs: number;
}

/**
 * One SETTLE of entries read from one stream. An entry too broken to name its entity (or, on a
 * Cluster, naming one outside the stream's slot: `inSlot` false) is still acknowledged, under the
 * stream's placeholder key.
 */
export async function settleStream(
  context: SettleContext,
  items: readonly Settlement[],
  inSlot: (type: string, id: string) => boolean,
): Promise<void> {
  if (items.length === 0) return;
  const { store, client, keys, queue, floorTtlMs } = context;
  const names = [queue.stream, queue.dead];
  const args: (string | number)[] = [GROUP, keys.lease(''), floorTtlMs];
  for (const item of items) {
    const named = isKeyPart(item.type) && isKeyPart(item.id) && inSlot(item.type, item.id);
    names.push(named ? keys.entity(item.type, item.id) : queue.unnamed, named ? keys.pending(item.type, item.id) : queue.unnamed);
    args.push(item.entries.length, item.reason, item.type, item.id, item.floor, ...item.entries);
  }
  await store.call('settle', () => client.glcSettle(names.length, ...names, ...args));
}
