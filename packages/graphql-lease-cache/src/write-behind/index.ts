// Write-behind, by concern:
//   change.ts    the changes and their folding (pure)
//   scripts/     the Lua scripts, one module each, with their KEYS, ARGV and reply
//   queue.ts     the producer: a mutation queues its change
//   worker.ts    the consumer: reads, folds, applies to the target, settles
//   leader.ts    the worker's leader lease and its take-over of pending entries
//   target.ts    what the worker and the writer ask of your database (WriteTarget, EntityWriteTarget)
//   writer.ts    the whole cached update of an entity type (createEntityWriter)

/**
 * Write-behind: a mutation records its change in Redis and returns; a worker applies the
 * changes to your database later, in batches, exactly once in effect. The entity writer
 * (createEntityWriter) runs a whole update: queued, or written synchronously when the change
 * cannot be queued, with the cache kept exact either way.
 *
 * In Redis, one script call per change (atomic):
 *   - XADD to the stream `{wb}:writes`: `t` (type), `i` (id), `c` (the change as JSON);
 *   - HSET in the entity's hash `{Type:id}:wb`: stream entry id -> change. The hash has no
 *     expiry: it is the cached state the database does not have yet.
 * Reads take the hash in the same round trip as the cached document (get-or-lease) and apply
 * its changes to the document, so a reader sees a change as soon as its mutation returned,
 * whether the document came from Redis or from the database.
 *
 * In the database, each document that can be written behind carries:
 *   - `wbSeq`: the last stream entry applied to it (stream ids are increasing, see
 *     {@link seqOf}); a change at or below it is already in the document. This is what makes a
 *     replay after a crash (write applied, not yet acknowledged) change nothing.
 *   - `wbAt.<field>`: when a synchronous write last set the field; an older queued change of
 *     that field is dropped (the later write wins), on reads and in the worker alike.
 *   - `wbDone`: ids of changes also written synchronously after an enqueue of unknown outcome
 *     (see {@link Change.u}); skipped likewise.
 *   - the ids of the newest changes the worker applied (recorded by its updates), so that a
 *     synchronous write after an enqueue of unknown outcome whose copy the worker applied first
 *     (the caller stalled past its timeout) writes nothing (see DirectWrite.doneId).
 * The worker updates a document only if what its folding depended on is unchanged: `wbSeq`,
 * `wbDone` holding none of the changes it took, and the `wbAt` fence of each field it sets (a
 * synchronous write of another field, say `stock`, commutes with the change and does not
 * hold it back). It sets `wbSeq` and increments `version` in the same update, reads back the
 * version the database then has, and only then, in one script, acknowledges the entries, removes
 * them from the hash, and replaces any cached document older than that version with a version
 * floor, so the next read loads the new one with a TTL and no older write-through can be
 * stored after it.
 */
export { seqOf, type Change, type Coalesced, type QueuedChange, type WriteBehindState } from './change.js';
export { WriteBehindQueue, type WriteBehindQueueOptions } from './queue.js';
export type { DirectWrite, DirectWriteResult, EntityWriteTarget, TargetOutcome, TargetUpdate, WriteTarget } from './target.js';
export { WriteBehindWorker } from './worker.js';
export type { BatchReport, SettledEntity, WriteBehindWorkerOptions } from './worker-options.js';
export {
  EntityWriter,
  createEntityWriter,
  type EntityChange,
  type EntityWriterOptions,
  type UpdateOptions,
  type WritePolicy,
} from './writer.js';
