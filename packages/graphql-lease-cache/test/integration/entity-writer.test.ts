import DataLoader from 'dataloader';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { SILENT_LOGGER, createCache, type Cache, type RedisClient } from '../../src/index.js';
import {
  WriteBehindQueue,
  WriteBehindWorker,
  createEntityWriter,
  type Change,
  type DirectWrite,
  type DirectWriteResult,
  type EntityWriteTarget,
  type EntityWriterOptions,
  type TargetOutcome,
  type TargetUpdate,
  type WriteBehindState,
} from '../../src/write-behind/index.js';
import { withChange } from '../../src/write-behind/change.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';

// The entity writer against a real Redis and an in-memory database: no MongoDB.

/** A document of the in-memory database, with the write-behind state it keeps. */
interface Doc extends WriteBehindState {
  id: string;
  version: number;
  name: string;
  views: number;
  stock: number;
  deletedAt?: number | null;
}

/** Fields a queued change may set (stock is read by queries: never written behind). */
const SETTABLE = new Set(['name']);

/** Your database, in memory: the worker's target, the writer's synchronous write, and the loads. */
class MemoryTarget implements EntityWriteTarget<Doc> {
  readonly docs = new Map<string, Doc>();
  reads = 0;
  writes = 0;
  /** The next synchronous write is applied and then throws, as a write whose answer never came. */
  loseNextAnswer = false;
  /** Per document, the ids of the queued changes the worker applied (what a synchronous write with that done id skips). */
  readonly applied = new Map<string, string[]>();

  refuse(id: string, change: Change): string | null {
    const bad = Object.keys(change.set ?? {}).find((field) => !SETTABLE.has(field));
    if (bad !== undefined) return `field ${bad} cannot be written behind`;
    return Object.keys(change.inc ?? {}).every((field) => field === 'views') ? null : 'only views count';
  }

  async load(ids: readonly string[]): Promise<Map<string, WriteBehindState>> {
    return new Map(ids.flatMap((id) => this.#live(id)).map((doc) => [doc.id, { ...doc }]));
  }

  async apply(updates: readonly TargetUpdate[]): Promise<TargetOutcome[]> {
    return updates.map((u): TargetOutcome => {
      const [doc] = this.#live(u.id);
      const fenced = Object.entries(u.guard.fences).some(([field, fence]) => (doc?.wbAt?.[field] ?? null) !== fence);
      if (!doc || (doc.wbSeq ?? null) !== u.guard.wbSeq || u.guard.notDone.some((d) => doc.wbDone?.includes(d)) || fenced)
        return { kind: 'conflict' };
      this.writes += 1;
      this.docs.set(u.id, { ...withChange(doc, u), wbSeq: u.seq, version: doc.version + 1 });
      this.applied.set(u.id, [...(this.applied.get(u.id) ?? []), ...u.guard.notDone]);
      return { kind: 'applied', version: doc.version + 1 };
    });
  }

  async write(write: DirectWrite): Promise<DirectWriteResult<Doc> | null> {
    const [doc] = this.#live(write.id);
    if (!doc) return null;
    if (write.doneId !== undefined && this.applied.get(write.id)?.includes(write.doneId)) {
      return { after: { ...doc }, ...(write.before ? { before: doc } : {}) };
    }
    this.writes += 1;
    const fences = Object.fromEntries(Object.keys(write.set).map((field) => [field, Date.now()]));
    const after: Doc = { ...withChange(doc, write), version: doc.version + 1, wbAt: { ...doc.wbAt, ...fences } };
    if (write.doneId !== undefined) after.wbDone = [...(doc.wbDone ?? []), write.doneId];
    this.docs.set(write.id, after);
    if (this.loseNextAnswer) {
      this.loseNextAnswer = false;
      throw new Error('the database did not answer');
    }
    return { after: { ...after }, ...(write.before ? { before: doc } : {}) };
  }

  /** What the entity cache loads on a miss. */
  async read(ids: readonly string[]): Promise<(Doc | null)[]> {
    this.reads += 1;
    return ids.map((id) => this.#live(id)[0] ?? null).map((doc) => doc && { ...doc });
  }

  #live(id: string): Doc[] {
    const doc = this.docs.get(id);
    return doc && !doc.deletedAt ? [doc] : [];
  }
}

/** An enqueue that reaches Redis and then times out on the caller's side. */
class LateQueue extends WriteBehindQueue {
  override async enqueue(type: string, id: string, change: Change): Promise<string | null> {
    await super.enqueue(type, id, change);
    throw new Error('Command timed out');
  }
}

let redis: TestRedis;
let client: RedisClient;
let cache: Cache;
let target: MemoryTarget;
let namespace = 0;

beforeAll(async () => {
  redis = await startRedis();
  client = redis.client.duplicate();
});
afterAll(async () => {
  client.disconnect();
  await redis.stop();
});
beforeEach(() => {
  cache?.close();
  // A client per cache: each cache listens for its client's reconnects.
  client.disconnect();
  client = redis.client.duplicate();
  namespace += 1;
  cache = createCache({ redis: client, settings: { namespace: `writer${namespace}`, localEntries: 0 }, writeBehindTypes: ['Doc'] });
  target = new MemoryTarget();
  target.docs.set('1', { id: '1', version: 1, name: 'first', views: 10, stock: 3 });
});

/** A request: its own loader, through the cache, of the in-memory database. */
const request = () => ({
  loader: new DataLoader<string, Doc | null>((ids) => cache.entity<Doc>('Doc').getMany(ids, (missed) => target.read(missed))),
});
type Request = ReturnType<typeof request>;

function writer(options: Partial<EntityWriterOptions<Doc, Request>> = {}) {
  return createEntityWriter<Doc, Request>({
    cache,
    type: 'Doc',
    target,
    policy: 'write-behind',
    holdMs: 1_000,
    loader: (scope) => scope.loader,
    isLive: (doc) => !doc.deletedAt,
    ...options,
  });
}

function worker(): WriteBehindWorker {
  if (!cache.store) throw new Error('no Redis store');
  return new WriteBehindWorker({ store: cache.store, keys: cache.keys, targets: { Doc: target }, logger: SILENT_LOGGER });
}

describe('createEntityWriter, write-behind', () => {
  it('queues the change: the update returns it, the next request reads it, the database has it after the worker', async () => {
    const scope = request();
    expect(await writer().update(scope, '1', { set: { name: 'queued' }, inc: { views: 2 } })).toMatchObject({ name: 'queued', views: 12 });
    expect(target.writes).toBe(0);
    expect(await scope.loader.load('1')).toMatchObject({ name: 'queued', views: 12 }); // primed
    expect(await request().loader.load('1')).toMatchObject({ name: 'queued', views: 12 });
    expect(await worker().runOnce()).toMatchObject({ read: 1, flushed: 1 });
    expect(target.docs.get('1')).toMatchObject({ name: 'queued', views: 12, version: 2 });
    expect(await request().loader.load('1')).toMatchObject({ name: 'queued', views: 12 });
  });

  it('writes synchronously a change the target would not take behind, then invalidates (the default fallback)', async () => {
    await request().loader.load('1'); // cached
    const readsBefore = target.reads;
    expect(await writer().update(request(), '1', { set: { stock: 0 } })).toMatchObject({ stock: 0, version: 2 });
    expect(target.writes).toBe(1);
    expect(await request().loader.load('1')).toMatchObject({ stock: 0 });
    expect(target.reads).toBe(readsBefore + 1); // invalidated: the next read loaded it
  });

  it('writes synchronously when the queue is unavailable (no Redis) and still succeeds', async () => {
    const offline = createCache({ redis: null, writeBehindTypes: ['Doc'] });
    const loader = new DataLoader<string, Doc | null>((ids) => offline.entity<Doc>('Doc').getMany(ids, (missed) => target.read(missed)));
    const updated = await writer({ cache: offline }).update({ loader }, '1', { inc: { views: 1 } });
    expect(updated).toMatchObject({ views: 11, version: 2 });
    expect(target.docs.get('1')?.wbDone).toBeUndefined(); // nothing was sent: no done id needed
    offline.close();
  });

  it('an enqueue of unknown outcome is written synchronously with its done id: the queued copy counts once', async () => {
    const late = new LateQueue({ store: cache.store, keys: cache.keys, events: cache.events });
    const updated = await writer({ cache: { entity: cache.entity, writeBehind: late } }).update(request(), '1', { inc: { views: 1 } });
    expect(updated).toMatchObject({ views: 11 });
    const done = target.docs.get('1')?.wbDone ?? [];
    expect(done).toHaveLength(1);
    expect(await client.hlen(cache.keys.pending('Doc', '1'))).toBe(1); // the copy Redis took
    expect(await request().loader.load('1')).toMatchObject({ views: 11 }); // reads skip it
    const writes = target.writes;
    expect(await worker().runOnce()).toMatchObject({ read: 1, flushed: 1 });
    expect(target.writes).toBe(writes); // the worker skipped it too
    expect(target.docs.get('1')).toMatchObject({ views: 11 });
    expect(await client.hlen(cache.keys.pending('Doc', '1'))).toBe(0);
  });

  it('an enqueue of unknown outcome whose queued copy the worker applied first is not written again', async () => {
    // The caller stalled (SIGSTOP, a long GC pause) once its enqueue was sent: Redis ran it,
    // another instance's worker applied it, and the caller's timeout fired when it ran again.
    class AppliedFirstQueue extends WriteBehindQueue {
      override async enqueue(type: string, id: string, change: Change): Promise<string | null> {
        await super.enqueue(type, id, change);
        expect(await worker().runOnce()).toMatchObject({ read: 1, flushed: 1 });
        throw new Error('Command timed out');
      }
    }
    const late = new AppliedFirstQueue({ store: cache.store, keys: cache.keys, events: cache.events });
    const updated = await writer({ cache: { entity: cache.entity, writeBehind: late } }).update(request(), '1', { inc: { views: 1 } });
    expect(updated).toMatchObject({ views: 11 });
    expect(target.docs.get('1')).toMatchObject({ views: 11, version: 2 }); // the worker's write only
    expect(await request().loader.load('1')).toMatchObject({ views: 11 });
  });

  it('returns null for a document that is not live, and writes and queues nothing', async () => {
    target.docs.set('2', { id: '2', version: 1, name: 'gone', views: 0, stock: 0, deletedAt: 1 });
    expect(await writer().update(request(), '2', { set: { name: 'x' } })).toBeNull();
    expect(await writer({ policy: 'refresh' }).update(request(), '3', { set: { name: 'x' } })).toBeNull();
    expect(target.writes).toBe(0);
    expect(await client.xlen(cache.keys.writeQueue.stream)).toBe(0);
  });

  it('runs beforeQueue with the current document, and its error refuses the update', async () => {
    const refuse = async (current: Doc): Promise<void> => {
      if (current.name === 'first') throw new Error('taken');
    };
    await expect(writer().update(request(), '1', { set: { name: 'x' } }, { beforeQueue: refuse })).rejects.toThrow('taken');
    expect(await client.xlen(cache.keys.writeQueue.stream)).toBe(0);
  });
});

describe('createEntityWriter, synchronous policies', () => {
  it('refresh stores the new document: the next request reads it from Redis', async () => {
    await request().loader.load('1');
    const readsBefore = target.reads;
    expect(await writer({ policy: 'refresh' }).update(request(), '1', { set: { name: 'refreshed' } })).toMatchObject({ name: 'refreshed' });
    expect(await request().loader.load('1')).toMatchObject({ name: 'refreshed', version: 2 });
    expect(target.reads).toBe(readsBefore);
  });

  it('invalidate drops the cached document: the next request loads it', async () => {
    await request().loader.load('1');
    const readsBefore = target.reads;
    await writer({ policy: 'invalidate' }).update(request(), '1', { set: { name: 'invalidated' } });
    expect(await request().loader.load('1')).toMatchObject({ name: 'invalidated' });
    expect(target.reads).toBe(readsBefore + 1);
  });

  it('a synchronous write shows the changes still queued (what reads will show)', async () => {
    await writer().update(request(), '1', { inc: { views: 5 } }); // queued
    expect(await writer({ policy: 'refresh' }).update(request(), '1', { set: { name: 'now' } })).toMatchObject({ name: 'now', views: 15 });
    expect(target.docs.get('1')).toMatchObject({ views: 10 });
  });

  it('holds the lock hook around the write, and passes the pre-image to alsoInvalidate', async () => {
    const locked: string[] = [];
    const seen: { before: string | null; after: string | null }[] = [];
    const updated = await writer({
      policy: 'refresh',
      lock: async (id, write) => {
        locked.push(id);
        return write();
      },
    }).update(
      request(),
      '1',
      { set: { name: 'moved' } },
      { alsoInvalidate: async ({ before, after }) => seen.push({ before: before?.name ?? null, after: after?.name ?? null }) },
    );
    expect(updated).toMatchObject({ name: 'moved' });
    expect(locked).toEqual(['1']);
    expect(seen).toEqual([{ before: 'first', after: 'moved' }]);
  });

  it('after a write of unknown outcome, rethrows, and the cached document is not served: a read shows the write that landed', async () => {
    await request().loader.load('1'); // cached: name first
    target.loseNextAnswer = true;
    const held: (number | undefined)[] = [];
    const update = writer({ policy: 'refresh' }).update(
      request(),
      '1',
      { set: { name: 'landed' } },
      { alsoInvalidate: async ({ after, holdMs }) => held.push(after === null ? holdMs : -1) },
    );
    await expect(update).rejects.toThrow('did not answer');
    expect(held).toEqual([1_000]);
    expect(await request().loader.load('1')).toMatchObject({ name: 'landed' });
  });
});
