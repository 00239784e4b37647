import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ABSENT } from '../../src/codec.js';
import { createKeyspace } from '../../src/keys.js';
import { InMemorySource } from '../../src/testing/index.js';
import { createTestCore, type TestCore, type User } from '../helpers/cache.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';

// EntityCache.peek: what an audit reads (the stored documents, decoded) without leasing,
// filling or counting, against a real Redis.

let redis: TestRedis;
let core: TestCore;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
});
afterEach(() => core?.close());

describe('EntityCache.peek', () => {
  it('answers the stored document and version, a cached absence, and null for an uncached id, filling nothing', async () => {
    core = await createTestCore({ redisUrl: redis.url, keys: createKeyspace({ namespace: 'peek1' }) });
    const source = new InMemorySource<User>({ u1: { id: 'u1', name: 'Ada', version: 3 } });
    await core.users.getMany(['u1', 'gone'], source.load);
    const loadsBefore = source.loads;

    const peeked = await core.users.peek(['u1', 'gone', 'never']);

    expect(peeked).toEqual([{ version: 3, value: { id: 'u1', name: 'Ada', version: 3 } }, { version: 0, value: ABSENT }, null]);
    expect(await core.client.exists(core.keys.entity('User', 'never'), core.keys.lease(core.keys.entity('User', 'never')))).toBe(0);
    expect(source.loads).toBe(loadsBefore);
  });

  it('says which ids wait for an undelivered invalidation', async () => {
    core = await createTestCore({ redisUrl: redis.url, keys: createKeyspace({ namespace: 'peek2' }) });
    core.store.fail('invalidate');
    await core.users.invalidate(['u1']);

    expect([core.users.invalidationPending('u1'), core.users.invalidationPending('u2')]).toEqual([true, false]);
  });
});
