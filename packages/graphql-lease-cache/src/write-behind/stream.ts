import type { Keyspace } from '../keys.js';
import type { RedisStore } from '../redis-store.js';
import { decodeChange, type Change } from './change.js';
import { GROUP, type LeaderLease } from './leader.js';
import type { WriteBehindCommands } from './scripts/index.js';

/** How many pages of its own pending entries a batch looks through, past entries waiting for a retry. */
const MAX_PENDING_PAGES = 10;

/** An entry of the stream, as the worker reads it. */
export interface StreamEntry {
  id: string;
  type: string;
  entityId: string;
  change: Change | null;
}

/** Entries of one entity to settle: applied (`reason` '') or dead-lettered (`reason` says why). */
export interface Settlement {
  type: string;
  id: string;
  entries: string[];
  reason: string;
  /** The version the database has now, as a floor for the cached key; 0 for none. */
  floor: number;
}

/** A stream entry from its id and fields (`t`, `i`, `c`); an unreadable change is null (dead-lettered). */
export function streamEntry(id: string, fields: string[] | null): StreamEntry {
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
  return { id, type: map.get('t') ?? '', entityId: map.get('i') ?? '', change };
}

/** Options of {@link StreamReader}. */
export interface StreamReaderOptions {
  store: RedisStore;
  client: RedisStore['client'] & WriteBehindCommands;
  keys: Keyspace;
  consumer: string;
  lease: LeaderLease;
}

/** Reads the stream for the worker, through its consumer group, while it holds the lease. */
export class StreamReader {
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

  async #readGroup(count: number, from: string): Promise<StreamEntry[]> {
    const { store, client, keys, consumer, lease } = this.#options;
    const { leader, stream } = keys.writeQueue;
    const reply = await store.call('wb-read', () => client.glcRead(leader, stream, consumer, GROUP, count, from));
    if (reply === 0) {
      lease.lost(); // the lease passed to another worker since this batch began
      return [];
    }
    return (reply[0]?.[1] ?? []).map(([id, fields]) => streamEntry(id, fields));
  }
}
