import type { Change, WriteBehindState } from '../write-behind/change.js';
import type { TargetOutcome, TargetUpdate, WriteTarget } from '../write-behind/target.js';
import type { InMemorySource } from './in-memory-source.js';

/** A document an {@link InMemoryWriteTarget} can write: versioned, with its write-behind state, any other fields. */
export type WritableDocument = WriteBehindState & Record<string, unknown>;

/** Options of {@link InMemoryWriteTarget}. */
export interface InMemoryWriteTargetOptions {
  /** The documents written (reads through the cache see the writes there). */
  source: InMemorySource<WritableDocument>;
  /** The fields a change may set and the counters it may add to; default any (nothing refused). */
  fields?: { set: readonly string[]; inc: readonly string[] };
}

/**
 * The write-behind worker's target over an {@link InMemorySource}, guarded as a database target
 * must be: an update applies only if the document still has the folding's `wbSeq`, none of its
 * changes in `wbDone`, and the `wbAt` fence of each field it sets (else `conflict`); it sets
 * `wbSeq` and increments `version` in the same write. Counts what it is asked and what it
 * writes, and fails the updates of chosen documents on demand.
 */
export class InMemoryWriteTarget implements WriteTarget {
  /** Calls of {@link apply}. */
  applies = 0;
  /** The updates written (guard matched), in order. */
  readonly written: TargetUpdate[] = [];
  /** Per document id, the updates asked for it (written, conflicting or failed). */
  readonly attempts = new Map<string, number>();
  readonly #source: InMemorySource<WritableDocument>;
  readonly #fields: InMemoryWriteTargetOptions['fields'];
  readonly #failures = new Map<string, string>();

  constructor(options: InMemoryWriteTargetOptions) {
    this.#source = options.source;
    this.#fields = options.fields;
  }

  /** Every later update of document `id` comes back `failed` with `error` (a change the database refuses); null ends it. */
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
      for (const [field, n] of Object.entries(update.inc)) {
        const current = next[field];
        next[field] = (typeof current === 'number' ? current : 0) + n;
      }
      this.#source.put(update.id, next);
      this.written.push(update);
      return { kind: 'applied', version: next.version };
    });
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
