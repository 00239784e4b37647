import type { PendingEntry } from '../redis-store.js';

// Write-behind's changes and their folding: pure functions of a document's write-behind state
// and the changes queued for it (see ./index.ts for the protocol).

/** A change of one entity. */
export interface Change {
  /** Fields to set; where several queued changes set one field, the newest wins. */
  set?: Record<string, string | number | boolean | null>;
  /** Counters to add to; queued changes add up. */
  inc?: Record<string, number>;
  /** When the mutation ran (milliseconds since the epoch): compared with `wbAt` fences. */
  at: number;
  /**
   * A random id, recorded in the document's `wbDone` when the mutation had to write the database
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
