/**
 * A database of versioned documents in a Map, for tests of code that reads through the cache:
 * `load(ids)` is a batch function with DataLoader's contract (one value per id, in order, null
 * where there is none), and every call of it is counted. Documents are copied in and out, as
 * a database's are, so that a test's later change never shows in a value already read.
 */
export class InMemorySource<T extends { version: number }> {
  /** Calls of {@link load}. */
  loads = 0;
  /** The ids of each call of {@link load}, in order. */
  readonly loaded: string[][] = [];
  /**
   * Awaited by each {@link load} after it read its documents and before it returns them: a test
   * holds a load there (it then returns what it read, even if the documents change meanwhile).
   * Default none.
   */
  onLoad: ((ids: readonly string[]) => Promise<void> | void) | undefined;
  readonly #documents = new Map<string, T>();

  constructor(documents: Readonly<Record<string, T>> = {}) {
    for (const [id, document] of Object.entries(documents)) this.put(id, document);
  }

  /** The documents of `ids` (one per id, in order; null where none), counted; see {@link onLoad}. */
  readonly load = async (ids: readonly string[]): Promise<(T | null)[]> => {
    this.loads += 1;
    this.loaded.push([...ids]);
    const documents = ids.map((id) => this.get(id));
    await this.onLoad?.(ids);
    return documents;
  };

  /** A copy of document `id`, or null; not counted as a load. */
  get(id: string): T | null {
    const document = this.#documents.get(id);
    return document === undefined ? null : structuredClone(document);
  }

  /** Stores a copy of `document` as `id`, as it is (its version included). */
  put(id: string, document: T): void {
    this.#documents.set(id, structuredClone(document));
  }

  /** Sets `changes` on document `id` and increments its version; returns the new document. Throws when there is none. */
  update(id: string, changes: Partial<Omit<T, 'version'>>): T {
    const current = this.get(id);
    if (!current) throw new RangeError(`no document ${JSON.stringify(id)} to update`);
    const next = { ...current, ...changes, version: current.version + 1 };
    this.put(id, next);
    return structuredClone(next);
  }

  /** Deletes document `id` (true when there was one). */
  delete(id: string): boolean {
    return this.#documents.delete(id);
  }

  /** The ids of the stored documents. */
  ids(): string[] {
    return [...this.#documents.keys()];
  }
}
