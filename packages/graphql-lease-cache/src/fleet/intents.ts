/** An invalidation a member owes and could not deliver: recorded where it survives the member. */
export interface Intent {
  /** The log's id of the record. */
  id: string;
  /** The member that owed it. */
  owner: string;
  keys: readonly string[];
  tags: readonly string[];
  /** When it was recorded, ms since the epoch. */
  recordedAt: number;
}

/**
 * Where the invalidations a member could not deliver are recorded, so that any member can deliver
 * them once Redis answers, even after the owner died (the app keeps them in MongoDB, which a write
 * that could not reach Redis has just reached). Each method rejects on failure.
 */
export interface IntentLog {
  /** Records an intent; resolves to its id. */
  record(intent: Omit<Intent, 'id' | 'recordedAt'>): Promise<string>;
  /** Removes delivered intents (an id already removed is no error). */
  clear(ids: readonly string[]): Promise<void>;
  /** The intents of these owners, and (with `recordedBeforeMs`) every intent recorded before then, ms since the epoch. */
  list(filter: { owners?: readonly string[]; recordedBeforeMs?: number }): Promise<Intent[]>;
}

/**
 * An IntentLog in this process's memory: for tests and single-process use. It does not survive
 * the process, so it gives none of the durability a shared log gives.
 */
export class InMemoryIntentLog implements IntentLog {
  readonly #intents = new Map<string, Intent>();
  #next = 0;

  /** How many intents are recorded. */
  get size(): number {
    return this.#intents.size;
  }

  record(intent: Omit<Intent, 'id' | 'recordedAt'>): Promise<string> {
    this.#next += 1;
    const id = String(this.#next);
    this.#intents.set(id, { ...intent, id, recordedAt: Date.now() });
    return Promise.resolve(id);
  }

  clear(ids: readonly string[]): Promise<void> {
    for (const id of ids) this.#intents.delete(id);
    return Promise.resolve();
  }

  list(filter: { owners?: readonly string[]; recordedBeforeMs?: number }): Promise<Intent[]> {
    const owners = new Set(filter.owners ?? []);
    const before = filter.recordedBeforeMs ?? -Infinity;
    return Promise.resolve([...this.#intents.values()].filter((i) => owners.has(i.owner) || i.recordedAt < before));
  }
}
