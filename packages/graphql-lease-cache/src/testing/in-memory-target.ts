import { seqOf, type Change, type WriteBehindState } from '../write-behind/change.js';
import type { DirectWrite, DirectWriteResult, EntityWriteTarget, TargetOutcome, TargetUpdate } from '../write-behind/target.js';
import type { InMemorySource } from './in-memory-source.js';

/** A document an {@link InMemoryWriteTarget} can write: versioned, with its write-behind state, any other fields. */
export type WritableDocument = WriteBehindState & Record<string, unknown>;

/** Options of {@link InMemoryWriteTarget}. */
export interface InMemoryWriteTargetOptions<T extends WritableDocument = WritableDocument> {
  /** The documents written (reads through the cache see the writes there). */
  source: InMemorySource<T>;
  /** The fields a change may set and the counters it may add to; default any (nothing refused). */
  fields?: { set: readonly string[]; inc: readonly string[] };
}

/**
 * The write-behind worker's target over an {@link InMemorySource}, guarded as a database target
 * must be: an update applies only if the document still has the folding's `wbSeq`, none of its
 * changes in `wbDone`, and the `wbAt` fence of each field it sets (else `conflict`); it sets
 * `wbSeq` and increments `version` in the same write. Counts what it is asked and what it
 * writes, and fails the updates of chosen documents on demand. Also the entity writer's
 * synchronous write ({@link write}), so that `createEntityWriter` runs on it whole.
 */
export class InMemoryWriteTarget<T extends WritableDocument = WritableDocument> implements EntityWriteTarget<T> {
  /** Calls of {@link apply}. */
  applies = 0;
  /** The updates written (guard matched), in order. */
  readonly written: TargetUpdate[] = [];
  /** Per document id, the updates asked for it (written, conflicting or failed). */
  readonly attempts = new Map<string, number>();
  /** Calls of {@link write} that wrote a document. */
  directWrites = 0;
  readonly #source: InMemorySource<T>;
  readonly #fields: InMemoryWriteTargetOptions['fields'];
  readonly #failures = new Map<string, string>();
  /** Per document id, the ids of the queued changes its updates applied (the newest hundred). */
  readonly #applied = new Map<string, string[]>();

  constructor(options: InMemoryWriteTargetOptions<T>) {
    this.#source = options.source;
    this.#fields = options.fields;
  }

  /** Every later update of document `id` comes back `failed` with `error`, and every write of it throws it (a change the database refuses); null ends it. */
  failWith(id: string, error: string | null): void {
    if (error === null) this.#failures.delete(id);
    else this.#failures.set(id, error);
  }

  refuse(id: string, change: Change): string | null {
    if (!this.#fields) return null;
    const { set, inc } = this.#fields;
    const field = Object.keys(change.set ?? {}).find((name) => !set.includes(name));
    if (field !== undefined) return `field ${JSON.stringify(field)} cannot be written behind`;
    const counter = Object.keys(change.inc ?? {}).find((name) => !inc.includes(name));
    return counter === undefined ? null : `counter ${JSON.stringify(counter)} cannot be written behind`;
  }

  async load(ids: readonly string[]): Promise<Map<string, WriteBehindState>> {
    const states = new Map<string, WriteBehindState>();
    for (const id of ids) {
      const document = this.#source.get(id);
      if (document) states.set(id, stateOf(document));
    }
    return states;
  }

  async apply(updates: readonly TargetUpdate[]): Promise<TargetOutcome[]> {
    this.applies += 1;
    return updates.map((update) => {
      this.attempts.set(update.id, (this.attempts.get(update.id) ?? 0) + 1);
      const error = this.#failures.get(update.id);
      if (error !== undefined) return { kind: 'failed', error };
      const document = this.#source.get(update.id);
      if (!document || !guardHolds(document, update)) return { kind: 'conflict' };
      const next: WritableDocument = { ...document, ...update.set, wbSeq: update.seq, version: document.version + 1 };
      addCounters(next, update.inc);
      this.#source.put(update.id, next as T);
      this.#applied.set(update.id, [...(this.#applied.get(update.id) ?? []), ...update.guard.notDone].slice(-APPLIED_KEPT));
      this.written.push(update);
      return { kind: 'applied', version: next.version };
    });
  }

  /**
   * The synchronous write: sets `set`, adds `inc`, increments `version`, fences each field set
   * (`wbAt`, so that an older queued change of it is dropped) and records `doneId` in `wbDone`,
   * in one step; nothing when an update applied the queued change `doneId` already (the
   * document as it is); null when there is no document `id`. Throws the error of {@link failWith}.
   */
  async write(write: DirectWrite): Promise<DirectWriteResult<T> | null> {
    const error = this.#failures.get(write.id);
    if (error !== undefined) throw new Error(error);
    const before = this.#source.get(write.id);
    if (!before) return null;
    // Its queued copy already applied by the worker: nothing to write.
    const applied =
      (write.queued !== undefined && (before.wbSeq ?? '') >= seqOf(write.queued)) ||
      (write.doneId !== undefined && this.#applied.get(write.id)?.includes(write.doneId) === true);
    if (applied) return { after: before, ...(write.before ? { before } : {}) };
    const now = Date.now();
    const fences = Object.fromEntries(Object.keys(write.set).map((field) => [field, now]));
    const after: WritableDocument = { ...before, ...write.set, version: before.version + 1, wbAt: { ...before.wbAt, ...fences } };
    addCounters(after, write.inc);
    if (write.doneId !== undefined) after.wbDone = [...(before.wbDone ?? []), write.doneId];
    this.#source.put(write.id, after as T);
    this.directWrites += 1;
    return { after: this.#source.get(write.id), ...(write.before ? { before } : {}) };
  }
}

/** How many ids of applied queued changes are kept per document. */
const APPLIED_KEPT = 100;

/** Adds each counter of `inc` to `document` (a missing or non-numeric field counts as 0). */
function addCounters(document: WritableDocument, inc: Readonly<Record<string, number>>): void {
  for (const [field, n] of Object.entries(inc)) {
    const current = document[field];
    document[field] = (typeof current === 'number' ? current : 0) + n;
  }
}

function stateOf(document: WritableDocument): WriteBehindState {
  return { version: document.version, wbSeq: document.wbSeq ?? null, wbAt: document.wbAt ?? null, wbDone: document.wbDone ?? null };
}

/** The update's guard against the document as it is now (a missing `wbSeq` or fence is null). */
function guardHolds(document: WritableDocument, update: TargetUpdate): boolean {
  const { wbSeq, notDone, fences } = update.guard;
  if ((document.wbSeq ?? null) !== wbSeq) return false;
  if (notDone.some((id) => document.wbDone?.includes(id))) return false;
  return Object.entries(fences).every(([field, fence]) => (document.wbAt?.[field] ?? null) === fence);
}
