import { Types, type Model, type UpdateQuery, type mongo } from 'mongoose';
import type { Cache } from 'graphql-lease-cache';
import {
  type Change,
  type DirectWrite,
  type DirectWriteResult,
  type EntityWriteTarget,
  type TargetOutcome,
  type TargetUpdate,
  type WriteBehindState,
  seqOf,
  WriteBehindWorker,
  type WriteBehindWorkerOptions,
  type WriteTarget,
} from 'graphql-lease-cache/write-behind';
import { ENTITY_POLICIES, ENTITY_TYPES, type EntityType } from '../caching/policies.js';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import { ONE_ROUND_TRIP } from '../loaders/batch.js';
import { ProductModel, UserModel } from '../models/index.js';
import { PRODUCT_BOOKKEEPING } from '../models/product.model.js';
import { WRITE_BEHIND_BOOKKEEPING } from '../models/write-behind.plugin.js';
import type { DocumentLock } from './document-lock.js';
import { isDuplicateKey, isMongoUnavailable, isOutcomeUnknown } from './mongo-errors.js';
import { fieldsOf, satisfies, updateByIdIf } from './update-by-id.js';

/** The entity types whose changes can be written behind (`@entity` in the schema, src/caching/policies.ts). */
export const WRITE_BEHIND_TYPES: readonly EntityType[] = ENTITY_TYPES;

/**
 * Where each type's changes go: its model, the prefix of its documents' locks (the services'
 * too), and what loads leave out of its documents (so a write answers what reads show).
 */
const STORES: Record<EntityType, { model: Model<unknown>; lockPrefix: string; hidden: Readonly<Record<string, 0>> }> = {
  User: { model: UserModel as unknown as Model<unknown>, lockPrefix: 'users', hidden: WRITE_BEHIND_BOOKKEEPING },
  Product: { model: ProductModel as unknown as Model<unknown>, lockPrefix: 'products', hidden: PRODUCT_BOOKKEEPING },
};

/** The name of the lock of document `id` of `type` (DocumentLock.run). */
export function lockOf(type: EntityType, id: string): string {
  return `${STORES[type].lockPrefix}:${id}`;
}

interface Stored extends WriteBehindState {
  _id: { toHexString(): string };
  deletedAt?: Date | null;
}

/** Up to this many documents, the worker reads their states on FerretDB one `{_id}` find each, not with one `$in` scan. */
const FERRETDB_READS_BY_ID = 16;

/** What a queued change may touch on documents of a model. */
export interface WritableFields {
  set: readonly string[];
  inc: readonly string[];
}

/**
 * MongoDB errors that may pass: the server unreachable, no primary, a step-down, a shutdown, an
 * interrupted operation, a time limit, a write concern not met. The batch is tried again whole,
 * without counting against any change. Any other error (a duplicate key, a failed validation, a
 * bad value or type, an error no one foresaw) counts against the change that caused it, which
 * is dead-lettered after its tries: an unknown error cannot stop the whole queue.
 */
const TRANSIENT_CODES = new Set([6, 7, 50, 64, 89, 91, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436]);
function isTransient(error: unknown): boolean {
  if (isMongoUnavailable(error)) return true;
  const e = error as { code?: unknown; errorLabels?: unknown; hasErrorLabel?: (label: string) => boolean } | null;
  if (typeof e?.hasErrorLabel === 'function' && (e.hasErrorLabel('RetryableWriteError') || e.hasErrorLabel('TransientTransactionError')))
    return true;
  return typeof e?.code === 'number' && TRANSIENT_CODES.has(e.code);
}
const isPermanent = (error: unknown): boolean => isDuplicateKey(error) || !isTransient(error);

const OBJECT_ID = /^[0-9a-f]{24}$/;

/**
 * The worker's MongoDB side for one model: one `find` for the batch's states, one `bulkWrite`
 * for its updates, each guarded by `version` and setting `wbSeq` in the same update. It uses
 * the driver's collection (mongoose's hooks would fence the worker's own writes); the values
 * were validated by the mutation that queued them.
 */
export function mongoWriteTarget(
  model: Model<unknown>,
  fields: WritableFields,
  lockPrefix: string,
  documentLock: DocumentLock,
): WriteTarget {
  const collection = model.collection;
  const settable = new Set(fields.set);
  const countable = new Set(fields.inc);
  const states = (ids: readonly string[]): Promise<Map<string, WriteBehindState>> => readStates(collection, documentLock, ids);
  return {
    refuse(id: string, change: Change): string | null {
      if (!OBJECT_ID.test(id)) return `not an ObjectId: ${JSON.stringify(id)}`;
      for (const [field, value] of Object.entries(change.set ?? {})) {
        if (!settable.has(field)) return `field ${JSON.stringify(field)} cannot be written behind`;
        if (value !== null && typeof value === 'object') return `field ${JSON.stringify(field)}: not a plain value`;
      }
      for (const [field, n] of Object.entries(change.inc ?? {})) {
        if (!countable.has(field) || !Number.isFinite(n)) return `counter ${JSON.stringify(field)} cannot be written behind`;
      }
      return null;
    },
    load: states,
    async apply(updates: readonly TargetUpdate[]): Promise<TargetOutcome[]> {
      const writeErrors = new Map<number, string>();
      let matched = -1;
      // FerretDB applies an update as read-modify-write: serialize with this process's writers.
      await documentLock.run(
        updates.map((u) => `${lockPrefix}:${u.id}`),
        async () => {
          const ops = guardedUpdates(updates, new Date());
          matched = documentLock.enabled
            ? await applyOneByOne(collection, ops, writeErrors)
            : await applyInBulk(collection, ops, writeErrors);
        },
      );
      // Read back: the stored wbSeq says which updates MongoDB has, and the version is the floor
      // the cache needs (a synchronous write between the load and the update has one of its own).
      const after =
        matched === 0 && writeErrors.size === updates.length ? new Map<string, WriteBehindState>() : await states(updates.map((u) => u.id));
      return updates.map((u, i): TargetOutcome => {
        const state = after.get(u.id);
        if (state && state.wbSeq === u.seq) return { kind: 'applied', version: state.version };
        const error = writeErrors.get(i);
        return error === undefined ? { kind: 'conflict' } : { kind: 'failed', error };
      });
    },
  };
}

/** A model's collection, as the driver gives it (no mongoose hooks). */
type Collection = Model<unknown>['collection'];

/** The write-behind states of the live documents among `ids`, by id (a deleted or missing one is absent). */
async function readStates(
  collection: Collection,
  documentLock: DocumentLock,
  ids: readonly string[],
): Promise<Map<string, WriteBehindState>> {
  const objectIds = ids.map((id) => new Types.ObjectId(id));
  const projection = { version: 1, wbSeq: 1, wbAt: 1, wbDone: 1, deletedAt: 1 };
  // FerretDB pushes down only an exact `{_id}` (an `$in` scans the collection): a small batch
  // is read one document at a time, by its index.
  const docs = (documentLock.enabled && ids.length <= FERRETDB_READS_BY_ID
    ? await Promise.all(objectIds.map((_id) => collection.findOne({ _id }, { projection })))
    : await collection
        .find({ _id: { $in: objectIds }, deletedAt: null }, { projection, batchSize: ONE_ROUND_TRIP })
        .toArray()) as unknown as (Stored | null)[];
  return new Map(docs.filter((doc): doc is Stored => doc !== null && !doc.deletedAt).map((doc) => [doc._id.toHexString(), doc]));
}

/**
 * Each update as an `updateOne` guarded by its `wbSeq`, `wbDone` and fences, setting `wbSeq` and
 * `updatedAt` (`now`) and recording the ids it applies in `wbApplied` (see {@link writeLive}).
 */
function guardedUpdates(updates: readonly TargetUpdate[], now: Date) {
  return updates.map((u) => ({
    updateOne: {
      filter: {
        _id: new Types.ObjectId(u.id),
        deletedAt: null,
        wbSeq: u.guard.wbSeq === null ? { $exists: false } : u.guard.wbSeq,
        ...(u.guard.notDone.length > 0 ? { wbDone: { $nin: u.guard.notDone } } : {}),
        // null matches a missing fence as well.
        ...Object.fromEntries(Object.entries(u.guard.fences).map(([field, fence]) => [`wbAt.${field}`, fence])),
      },
      update: {
        $set: { ...u.set, wbSeq: u.seq, updatedAt: now },
        $inc: { ...u.inc, version: 1 },
        ...(u.guard.notDone.length > 0 ? { $push: { wbApplied: { $each: u.guard.notDone, $slice: -WB_DONE_KEPT } } } : {}),
      } as mongo.UpdateFilter<mongo.Document>,
    },
  }));
}

/** The updates of one batch ({@link guardedUpdates}). */
type GuardedUpdates = ReturnType<typeof guardedUpdates>;

/**
 * FerretDB: each guarded update as a read by `_id`, the guard tested here, and an update by
 * `_id` (see update-by-id.ts); a bulk of guarded filters scanned the collection once per
 * update. Returns how many matched; a permanent error is recorded in `writeErrors` by index,
 * a transient one is thrown.
 */
async function applyOneByOne(collection: Collection, ops: GuardedUpdates, writeErrors: Map<number, string>): Promise<number> {
  let matched = 0;
  for (const [i, op] of ops.entries()) {
    const { _id, ...guard } = op.updateOne.filter;
    try {
      const current = await collection.findOne({ _id }, { projection: fieldsOf(guard) });
      if (current && satisfies(guard, current)) matched += (await collection.updateOne({ _id }, op.updateOne.update)).matchedCount;
    } catch (error) {
      if (!isPermanent(error)) throw error;
      writeErrors.set(i, error instanceof Error ? error.message : String(error));
    }
  }
  return matched;
}

/**
 * MongoDB: the updates in one unordered `bulkWrite`. Returns how many matched (-1 when the
 * bulk failed and its permanent errors were recorded in `writeErrors` by index); a transient
 * error is thrown, so that the batch is tried again whole.
 */
async function applyInBulk(collection: Collection, ops: GuardedUpdates, writeErrors: Map<number, string>): Promise<number> {
  try {
    return (await collection.bulkWrite(ops, { ordered: false })).matchedCount;
  } catch (error) {
    const errors = (error as { writeErrors?: unknown }).writeErrors;
    if (Array.isArray(errors) && errors.length > 0) {
      for (const e of errors as { index?: number; code?: number; errmsg?: string; err?: { index?: number; errmsg?: string } }[]) {
        // A per-document error that may pass fails the batch: it is tried again whole.
        if (!isPermanent(e)) throw error;
        writeErrors.set(e.index ?? e.err?.index ?? -1, e.errmsg ?? e.err?.errmsg ?? 'write error');
      }
    } else if (isPermanent(error)) {
      // The whole command failed for one document (FerretDB reports a unique violation
      // in an update so): one update at a time tells which.
      for (const [i, op] of ops.entries()) {
        await collection.updateOne(op.updateOne.filter, op.updateOne.update).catch((e: unknown) => {
          if (!isPermanent(e)) throw e;
          writeErrors.set(i, e instanceof Error ? e.message : String(e));
        });
      }
    } else {
      throw error; // unreachable, a step-down, a timeout: the batch is tried again
    }
    return -1;
  }
}

/** The targets of {@link WRITE_BEHIND_TYPES}: what each may write is its `writeBehind` in {@link ENTITY_POLICIES}. */
export function mongoWriteTargets(documentLock: DocumentLock): Record<string, WriteTarget> {
  return Object.fromEntries(
    WRITE_BEHIND_TYPES.map((type) => [
      type,
      mongoWriteTarget(STORES[type].model, ENTITY_POLICIES[type].writeBehind, STORES[type].lockPrefix, documentLock),
    ]),
  );
}

/**
 * Type `type` in MongoDB for the entity writer (createEntityWriter): the worker's target, and the
 * synchronous write, a conditional update of one live document (the caller holds its lock).
 */
export function mongoEntityTarget<T>(type: EntityType, documentLock: DocumentLock): EntityWriteTarget<T> {
  const { model, lockPrefix, hidden } = STORES[type];
  return {
    ...mongoWriteTarget(model, ENTITY_POLICIES[type].writeBehind, lockPrefix, documentLock),
    isOutcomeUnknown,
    write: (write) => writeLive(model as unknown as Model<T>, documentLock, write, hidden),
  };
}

/** How many change ids a document keeps in `wbDone`, and in `wbApplied` (the newest). */
export const WB_DONE_KEPT = 100;

/**
 * The `$push` that records `doneId` in a document's `wbDone` (DirectWrite.doneId); empty when
 * none. Only the newest {@link WB_DONE_KEPT} ids are kept: enough for any queued copy still
 * waiting, unless that many uncertain enqueues of one document happen while it waits.
 */
export function markDone(doneId: string | undefined): { $push?: { wbDone: { $each: string[]; $slice: number } } } {
  return doneId === undefined ? {} : { $push: { wbDone: { $each: [doneId], $slice: -WB_DONE_KEPT } } };
}

/**
 * {@link mongoEntityTarget}'s write: the document after it (and before it when asked), without
 * `hidden`. A write with a done id whose queued copy the worker applied first (the id is in
 * `wbApplied`: the caller stalled past its enqueue's timeout while another instance's worker
 * flushed it) writes nothing and answers the document as it is: the change is in it already.
 */
async function writeLive<T>(
  model: Model<T>,
  documentLock: DocumentLock,
  write: DirectWrite,
  hidden: Readonly<Record<string, 0>>,
): Promise<DirectWriteResult<T> | null> {
  const update = {
    $set: write.set,
    ...(Object.keys(write.inc).length > 0 ? { $inc: write.inc } : {}),
    ...markDone(write.doneId),
  } as UpdateQuery<T>;
  // Also queued under a known entry id (its replicas did not acknowledge it): exact, by `wbSeq`.
  if (write.queued !== undefined) return writeUnlessApplied(model, documentLock, { ...write, queued: write.queued }, update, hidden);
  const live = { deletedAt: null, ...(write.doneId === undefined ? {} : { wbApplied: { $ne: write.doneId } }) };
  const returnDocument = write.before ? 'before' : 'after';
  const written = await updateByIdIf(documentLock, model, write.id, live, update, { returnDocument });
  if (!written) {
    if (write.doneId === undefined) return null;
    // By `_id` alone (FerretDB uses its index for nothing else); a deleted document is not live.
    const current = await model.findById(write.id, hidden).lean<T & { deletedAt?: unknown }>().exec();
    if (!current || current.deletedAt) return null;
    return { after: current, ...(write.before ? { before: current } : {}) };
  }
  if (!write.before) return { after: without(written, hidden) };
  const after = await model.findById(write.id, hidden).lean<T>().exec();
  return { before: without(written, hidden), after };
}

/**
 * {@link writeLive} of a change also queued as `write.queued` (its replicas did not acknowledge
 * it): the worker may apply the queued copy first, so the update is conditional on the `wbSeq`
 * read just before it, and changes nothing once `wbSeq` has reached the entry (the document as
 * it is is the result). A `wbSeq` that moved meanwhile (the worker applied something) is read again.
 */
async function writeUnlessApplied<T>(
  model: Model<T>,
  documentLock: DocumentLock,
  write: DirectWrite & { queued: string },
  update: UpdateQuery<T>,
  hidden: Readonly<Record<string, 0>>,
): Promise<DirectWriteResult<T> | null> {
  const entry = seqOf(write.queued);
  for (let attempt = 0; attempt < 10; attempt += 1) {
    const current = await model.findOne({ _id: write.id, deletedAt: null }, hidden).lean<T & { wbSeq?: string | null }>().exec();
    if (!current) return null;
    if ((current.wbSeq ?? '') >= entry) return { after: without(current, hidden), ...(write.before ? { before: current } : {}) };
    const conditions = { deletedAt: null, wbSeq: current.wbSeq ?? null };
    const after = await updateByIdIf(documentLock, model, write.id, conditions, update);
    if (after) return { after: without(after, hidden), ...(write.before ? { before: current } : {}) };
  }
  throw new Error(`write-behind: the document ${write.id} kept changing under a synchronous write`);
}

/** `doc` without the fields of `hidden` (a copy when it has any). */
function without<T>(doc: T, hidden: Readonly<Record<string, 0>>): T {
  const fields = Object.keys(hidden).filter((field) => Object.hasOwn(doc as object, field));
  if (fields.length === 0) return doc;
  const copy = { ...doc } as Record<string, unknown>;
  for (const field of fields) delete copy[field];
  return copy as T;
}

/** Options of {@link startWriteBehindWorker}. */
export interface StartWorkerOptions {
  cache: Cache;
  documentLock: DocumentLock;
  logger: Logger;
  settings: Config['writeBehind'];
  /** Test hook, see {@link WriteBehindWorkerOptions.afterWrite}. */
  afterWrite?: WriteBehindWorkerOptions['afterWrite'];
}

/** Starts the worker that applies queued changes to MongoDB (in the server process, or `npm run worker`). */
export function startWriteBehindWorker(options: StartWorkerOptions): WriteBehindWorker {
  const { cache, settings } = options;
  if (!cache.store || !cache.writeBehind.available) throw new Error('write-behind needs a standalone Redis');
  const worker = new WriteBehindWorker({
    store: cache.store,
    keys: cache.keys,
    targets: mongoWriteTargets(options.documentLock),
    logger: options.logger,
    batchSize: settings.batchSize,
    intervalMs: settings.intervalMs,
    retryMs: settings.retryMs,
    maxTries: settings.maxTries,
    leaderTtlMs: settings.leaderTtlMs,
    afterWrite: options.afterWrite,
    afterSettle: responsesAfterSettle(cache),
  });
  worker.start();
  return worker;
}

/**
 * Voids the whole responses that show what a settled batch changed: for applied changes the
 * `updatedAt` the flush set (what they changed otherwise, reads showed since the enqueue); for
 * dead-lettered ones, the fields they named, which reads no longer apply.
 */
export function responsesAfterSettle(cache: Cache): NonNullable<WriteBehindWorkerOptions['afterSettle']> {
  return (settled) =>
    cache.core.invalidateResponses(settled.flatMap((s) => cache.responseDependencies(s.type, s.id, s.applied ? ['updatedAt'] : s.fields)));
}
