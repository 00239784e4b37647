import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EntityCache } from '../../src/entity-cache.js';
import { createKeyspace } from '../../src/keys.js';
import { SILENT_LOGGER } from '../../src/logger.js';
import { InMemorySource, InMemoryWriteTarget, type WritableDocument } from '../../src/testing/index.js';
import { WriteBehindQueue, WriteBehindWorker } from '../../src/write-behind/index.js';
import { createTestCore, type TestCore } from '../helpers/cache.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';

// Reads of a type written behind (EntityCache with writeBehind) on a real Redis: a queued change
// shows at once, whether the document comes from the cache or from the source, and exactly once
// after the worker applied it (the cached copy from before is replaced by a version floor, which
// a late write-through of an older version cannot pass).

let redis: TestRedis;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
});

let run = 0;
const opened: TestCore[] = [];
afterEach(() => {
  for (const core of opened.splice(0)) core.close();
});

describe('a read of a type written behind', () => {
  it('shows a queued change from the cache and from the source, and once after the worker applied it', async () => {
    const t = await createTestCore({ redisUrl: redis.url, keys: createKeyspace({ namespace: `wbr${(run += 1)}`, version: 1 }) });
    opened.push(t);
    const source = new InMemorySource<WritableDocument>({ p1: { version: 1, views: 10 } });
    const products = new EntityCache<WritableDocument>({
      core: t.core,
      keys: t.keys,
      type: 'Product',
      ttlMs: 60_000,
      negativeTtlMs: 60_000,
      writeBehind: true,
      idOf: () => 'p1',
    });
    const views = async (): Promise<unknown> => (await products.getMany(['p1'], source.load))[0]?.views;
    const queue = new WriteBehindQueue({ store: t.redis, keys: t.keys, events: t.events });
    expect(await views()).toBe(10); // cached, version 1
    await queue.enqueue('Product', 'p1', { inc: { views: 1 }, at: Date.now() });
    expect(await views()).toBe(11); // the cached copy with the queued change
    expect(source.loads).toBe(1);
    await products.invalidate(['p1']);
    expect(await views()).toBe(11); // the source's document with the queued change
    expect(source.loads).toBe(2);
    const worker = new WriteBehindWorker({
      store: t.redis,
      keys: t.keys,
      targets: { Product: new InMemoryWriteTarget({ source }) },
      logger: SILENT_LOGGER,
    });
    expect(await worker.runOnce()).toMatchObject({ flushed: 1 });
    await worker.stop();
    expect(source.get('p1')).toMatchObject({ version: 2, views: 11 });
    // A write-through of version 1 still on its way (read before the flush) lands after it: refused.
    await products.refresh([{ version: 1, views: 10 }]);
    expect(await views()).toBe(11); // not 12: the change is in the document, and no longer queued
    expect(await views()).toBe(11);
    expect(source.loads).toBe(3); // the copy of version 1 was replaced by a floor: version 2 loaded once
  });
});
