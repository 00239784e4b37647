import { Cluster } from 'ioredis';
import type { CacheLogger } from '../logger.js';
import type { Keyspace, WriteQueueShard } from '../keys.js';
import type { RedisStore } from '../redis-store.js';
import { GROUP } from './leader.js';
import type { WriteBehindCommands } from './scripts/index.js';
import { settleStream, streamEntry, type EntrySource, type Settlement, type StreamEntry } from './stream.js';

/** How many pages of its own pending entries a stream's read looks through, past entries waiting for a retry. */
const MAX_PENDING_PAGES = 10;
/** The fewest entries asked of one stream per batch. */
const MIN_PER_STREAM = 50;
/** The longest pause between two reads of a stream found empty, in milliseconds. */
const MAX_IDLE_MS = 1_000;

/** Options of {@link ClusterStreams}. */
export interface ClusterStreamsOptions {
  store: RedisStore;
  client: Cluster & WriteBehindCommands;
  keys: Keyspace;
  consumer: string;
  logger: CacheLogger;
  /** How long this consumer's fence on a stream holds after its last read, in milliseconds (the leader lease's TTL). */
  fenceTtlMs: number;
  /** The worker's pause between batches, in milliseconds: the first pause before reading an empty stream again. */
  intervalMs: number;
  /** How long the version floor left by a flush holds, in milliseconds. */
  floorTtlMs: number;
  /** How often every master is scanned for slot streams missing from the registry, in milliseconds; default 300000 (a SCAN visits every key of a node). */
  scanMs?: number;
}

/** A slot stream the worker knows, and when to read it next. */
interface KnownStream {
  shard: WriteQueueShard;
  /** When it is read next (ms since the epoch). */
  dueAt: number;
  /** The pause after its last read found nothing, in milliseconds (0: it had entries). */
  idleMs: number;
  /** Its length at its last read (less what was settled since); undefined until read. */
  length: number | undefined;
}

/**
 * The worker's side of write-behind on a Cluster: one stream per slot that has had changes
 * (see {@link Keyspace.writeQueue}). It learns the streams from the registry producers add them
 * to (re-read when its size changes: one SCARD per batch) and from a SCAN of every master (at
 * start and every `scanMs`: a registration lost in a crash or a failover). It reads each stream
 * with its own consumer group, through its fence (scripts/read-fenced.ts), all streams at once
 * (the calls of one node share its connection: one pipelined round trip per node); a stream
 * found empty is read again after a pause that doubles up to a second. It settles each stream's
 * entries with one script in the stream's slot.
 */
export class ClusterStreams implements EntrySource {
  readonly #o: ClusterStreamsOptions & { scanMs: number };
  readonly #known = new Map<string, KnownStream>();
  #registrySize = -1;
  #scannedAt = Number.NEGATIVE_INFINITY;

  constructor(options: ClusterStreamsOptions) {
    this.#o = { ...options, scanMs: options.scanMs ?? 300_000 };
  }

  /** The streams due now, each read for about `count / streams` entries (at least {@link MIN_PER_STREAM}). */
  async read(count: number, waiting: (entry: StreamEntry) => boolean): Promise<StreamEntry[]> {
    await this.#discover();
    const now = Date.now();
    const due = [...this.#known.values()].filter((known) => known.dueAt <= now);
    if (due.length === 0) return [];
    const each = Math.max(MIN_PER_STREAM, Math.ceil(count / due.length));
    return (await Promise.all(due.map((known) => this.#readStream(known, each, waiting)))).flat();
  }

  /** One SETTLE per stream, in its slot, all at once. */
  async settle(items: readonly Settlement[]): Promise<void> {
    const byStream = new Map<string, Settlement[]>();
    for (const item of items) byStream.set(item.stream, [...(byStream.get(item.stream) ?? []), item]);
    const { store, client, keys, floorTtlMs } = this.#o;
    await Promise.all(
      [...byStream].map(async ([stream, settled]) => {
        const known = this.#known.get(stream);
        if (!known) throw new Error(`write-behind: settling entries of an unknown stream ${stream}`);
        const slotOf = (type: string, id: string): boolean => keys.writeQueue.ofEntity(type, id).stream === stream;
        await settleStream({ store, client, keys, queue: known.shard, floorTtlMs }, settled, slotOf);
        if (known.length !== undefined) known.length = Math.max(0, known.length - settled.reduce((n, s) => n + s.entries.length, 0));
      }),
    );
  }

  /** The queued entries of every known stream, as of their last read (streams not read yet are asked). */
  async depth(): Promise<number> {
    await this.#discover();
    const { store, client } = this.#o;
    const unread = [...this.#known.values()].filter((known) => known.length === undefined);
    await Promise.all(
      unread.map(async (known) => {
        known.length = await store.call('wb-depth', () => client.xlen(known.shard.stream));
      }),
    );
    let depth = 0;
    for (const known of this.#known.values()) depth += known.length ?? 0;
    return depth;
  }

  /** Releases this consumer's fences, so that the next leader reads at once (best effort: they expire). */
  async resign(): Promise<void> {
    const { store, client, consumer } = this.#o;
    await Promise.all(
      [...this.#known.values()].map((known) =>
        store.call('wb-resign', () => client.glcResign(known.shard.fence, consumer)).catch(() => undefined),
      ),
    );
  }

  /** This consumer's pending entries of one stream, then new ones (see StreamReader.read, one Redis). */
  async #readStream(known: KnownStream, count: number, waiting: (entry: StreamEntry) => boolean): Promise<StreamEntry[]> {
    const { store, client, consumer, fenceTtlMs, intervalMs } = this.#o;
    const { fence, stream } = known.shard;
    const out: StreamEntry[] = [];
    let from = '0';
    let seen = 0;
    for (let page = 0; page < MAX_PENDING_PAGES; page += 1) {
      const at = from;
      const reply = await store.call('wb-read', () => client.glcReadFenced(fence, stream, consumer, GROUP, count, at, fenceTtlMs, '1'));
      if (reply === 0) {
        // Another consumer's fence (a leader before this one): read it once that fence expires.
        known.dueAt = Date.now() + intervalMs;
        return out;
      }
      const [pending, fresh, length] = reply;
      known.length = length;
      const entries = [...pending, ...fresh].map(([id, fields]) => streamEntry(stream, id, fields));
      seen += entries.length;
      out.push(...entries.filter((entry) => !waiting(entry)));
      if (pending.length < count || out.length >= count) break;
      from = pending.at(-1)?.[0] ?? from;
    }
    known.idleMs = seen > 0 ? 0 : Math.min(MAX_IDLE_MS, Math.max(intervalMs, known.idleMs * 2));
    known.dueAt = Date.now() + known.idleMs;
    return out;
  }

  /** Learns new streams from the registry (when its size changed) and, every `scanMs`, from a SCAN of the masters. */
  async #discover(): Promise<void> {
    const { store, client, keys } = this.#o;
    const registry = keys.writeQueue.registry;
    const size = await store.call('wb-registry', () => client.scard(registry));
    if (size !== this.#registrySize) {
      for (const stream of await store.call('wb-registry', () => client.smembers(registry))) this.#know(stream);
      this.#registrySize = size;
    }
    if (Date.now() - this.#scannedAt >= this.#o.scanMs) {
      this.#scannedAt = Date.now();
      await this.#scan();
    }
  }

  /** SCANs every master for slot streams, and registers those the registry lacks. */
  async #scan(): Promise<void> {
    const { store, client, keys, logger } = this.#o;
    const found: string[] = [];
    await Promise.all(
      client.nodes('master').map(async (node) => {
        try {
          let cursor = '0';
          do {
            const from = cursor;
            const [next, names] = await store.call('wb-scan', () =>
              node.scan(from, 'MATCH', keys.writeQueue.streamPattern, 'COUNT', 1000, 'TYPE', 'stream'),
            );
            cursor = next;
            found.push(...names);
          } while (cursor !== '0');
        } catch (error) {
          logger.warn({ err: error, node: `${node.options.host}:${node.options.port}` }, 'write-behind: could not scan a node for streams');
        }
      }),
    );
    const missing = found.filter((stream) => this.#know(stream));
    if (missing.length > 0) {
      logger.info({ streams: missing.length }, 'write-behind: streams found by SCAN, not in the registry');
      await store.call('wb-register', () => client.sadd(keys.writeQueue.registry, ...missing)).catch(() => undefined);
    }
  }

  /** Adds `stream` to the known streams, due now; true when it was not known (and is a slot stream of this namespace). */
  #know(stream: string): boolean {
    if (this.#known.has(stream)) return false;
    const shard = this.#o.keys.writeQueue.ofStream(stream);
    if (!shard) return false;
    this.#known.set(stream, { shard, dueAt: 0, idleMs: 0, length: undefined });
    return true;
  }
}

/** True when `client` is a Cluster client. */
export function isCluster(client: RedisStore['client']): client is Cluster {
  return client instanceof Cluster;
}
