import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CircuitBreaker } from '../../src/breaker.js';
import { createKeyspace } from '../../src/keys.js';
import type { LeaseReply, LeaseStore } from '../../src/lease-store.js';
import { CacheEvents } from '../../src/events.js';
import { CacheStats } from '../../src/stats.js';
import { createRedisClient, type RedisClient } from '../../src/redis-client.js';
import { RedisStore } from '../../src/redis-store.js';
import { SILENT_LOGGER } from '../../src/logger.js';
import { startRedis, startRedisCluster, type TestRedis, type TestRedisCluster } from '../helpers/redis.js';

// The contract of a LeaseStore (packages/graphql-lease-cache/src/lease-store.ts), the store the cache core depends on:
// what any implementation must do, run here against the Redis one on a single Redis and on a
// three-node Redis Cluster (where each entity's value, lease, tags and queued changes share the
// entity's slot, and a batch spans slots).

let single: TestRedis;
let cluster: TestRedisCluster;
const clients: RedisClient[] = [];
beforeAll(async () => {
  [single, cluster] = await Promise.all([startRedis(), startRedisCluster()]);
});
afterAll(async () => {
  for (const client of clients) client.disconnect();
  await Promise.all([single?.stop(), cluster?.stop()]);
});

const keys = createKeyspace({ namespace: 'contract', version: 1 });
const LEASE_MS = 2_000;
let run = 0;

async function connect(backend: 'single' | 'cluster'): Promise<{ store: LeaseStore; client: RedisClient }> {
  const logger = SILENT_LOGGER;
  const client =
    backend === 'single'
      ? createRedisClient({ url: single.url, logger })
      : createRedisClient({ url: '', clusterNodes: cluster.nodes, logger });
  await client.connect();
  clients.push(client);
  const store = new RedisStore({
    client,
    breaker: new CircuitBreaker(),
    events: new CacheEvents('test', new CacheStats()),
    leaseSuffix: keys.lease(''),
  });
  return { store, client };
}

/** A fresh entity id per test, so that tests never share keys. */
const fresh = (): string => `e${(run += 1)}-${Date.now().toString(36)}`;
const value = (key: string, version: number, text: string, tags?: readonly string[]) => ({
  key,
  version,
  payload: Buffer.from(text),
  ttlMs: 60_000,
  ...(tags ? { tags } : {}),
});
const hit = (reply: LeaseReply | undefined): { version: number; etag: string; payload: string } | null =>
  reply?.kind === 'hit' ? { version: reply.version, etag: reply.etag, payload: reply.payload.toString() } : null;

describe.each(['single', 'cluster'] as const)('LeaseStore contract on %s Redis', (backend) => {
  let store: LeaseStore;
  let client: RedisClient;
  beforeAll(async () => {
    ({ store, client } = await connect(backend));
  });
  const read = (key: string, token: string, extra: { tags?: string[]; etag?: string; pendingKey?: string } = {}) =>
    store.getOrLease([{ key, ...extra }], { token, leaseTtlMs: LEASE_MS });

  it('a miss leases the key to the first reader; the next reader is told who holds it', async () => {
    const key = keys.entity('User', fresh());
    expect(await read(key, 'A')).toEqual([{ kind: 'lease' }]);
    expect(await read(key, 'B')).toEqual([{ kind: 'busy', token: 'A' }]);
  });

  it('the holder fills; then every reader hits the value, named by the holder’s token', async () => {
    const key = keys.entity('User', fresh());
    await read(key, 'A');
    expect(await store.setIfLeased('A', [value(key, 3, 'v3')])).toEqual([true]);
    expect(hit((await read(key, 'B'))[0])).toEqual({ version: 3, etag: 'A', payload: 'v3' });
  });

  it('a reader that holds the current copy is told "same", not sent the value again', async () => {
    const key = keys.entity('User', fresh());
    await read(key, 'A');
    await store.setIfLeased('A', [value(key, 1, 'v1')]);
    expect(await read(key, 'B', { etag: 'A' })).toEqual([{ kind: 'same' }]);
    expect(hit((await read(key, 'B', { etag: 'stale-etag' }))[0])?.payload).toBe('v1');
  });

  it('a fill without the lease stores nothing', async () => {
    const key = keys.entity('User', fresh());
    await read(key, 'A');
    expect(await store.setIfLeased('B', [value(key, 1, 'not leased')])).toEqual([false]);
    expect(await read(key, 'C')).toEqual([{ kind: 'busy', token: 'A' }]);
  });

  it('refresh stores through and voids the leases taken before it: the older fill is refused', async () => {
    const key = keys.entity('User', fresh());
    await read(key, 'A');
    expect(await store.refresh([value(key, 2, 'v2')], 'R')).toEqual([true]);
    expect(await store.setIfLeased('A', [value(key, 1, 'v1 read before the write')])).toEqual([false]);
    expect(hit((await read(key, 'B'))[0])).toEqual({ version: 2, etag: 'R', payload: 'v2' });
  });

  it('no older version replaces a newer one', async () => {
    const key = keys.entity('User', fresh());
    await store.refresh([value(key, 5, 'v5')], 'R5');
    expect(await store.refresh([value(key, 4, 'v4')], 'R4')).toEqual([false]);
    expect(hit((await read(key, 'A'))[0])).toEqual({ version: 5, etag: 'R5', payload: 'v5' });
    expect(await store.refresh([value(key, 5, 'v5, again')], 'R5b')).toEqual([true]); // the same version may be rewritten
  });

  it('a tag invalidated while a reader computes voids its fill; one invalidated after voids the value', async () => {
    const id = fresh();
    const key = keys.field('User', id, 'reviewCount', 'a');
    const tags = [keys.tag('User', id, 'reviews')];
    await read(key, 'A', { tags });
    await store.invalidate([], tags);
    expect(await store.setIfLeased('A', [value(key, 0, 'computed before the write', tags)])).toEqual([false]);
    expect(await read(key, 'B', { tags })).toEqual([{ kind: 'lease' }]);
    expect(await store.setIfLeased('B', [value(key, 0, 'computed after', tags)])).toEqual([true]);
    expect(hit((await read(key, 'C', { tags }))[0])?.payload).toBe('computed after');
    await store.invalidate([], tags);
    expect(await read(key, 'D', { tags })).toEqual([{ kind: 'lease' }]);
  });

  it('invalidate deletes the value and its lease', async () => {
    const key = keys.entity('User', fresh());
    await store.refresh([value(key, 1, 'v1')], 'R');
    await store.invalidate([key]);
    expect(await read(key, 'A')).toEqual([{ kind: 'lease' }]);
    await store.invalidate([key]);
    expect(await read(key, 'B')).toEqual([{ kind: 'lease' }]); // A's lease went with it
  });

  it('queued changes come with the value in the same snapshot, and alone from pending()', async () => {
    const id = fresh();
    const key = keys.entity('User', id);
    const pendingKey = keys.pending('User', id);
    expect(await store.pending([pendingKey])).toEqual([[]]);
    await client.hset(pendingKey, '1-0', '{"set":{"name":"queued"}}');
    await store.refresh([value(key, 1, 'v1')], 'R');
    const [reply] = await read(key, 'A', { pendingKey });
    expect(hit(reply)?.payload).toBe('v1');
    expect(reply?.pending?.map((p) => [p.id, p.change.toString()])).toEqual([['1-0', '{"set":{"name":"queued"}}']]);
    expect((await store.pending([pendingKey]))[0]?.map((p) => p.id)).toEqual(['1-0']);
  });

  it('a batch spanning many entities (many slots on a cluster) answers each key in order', async () => {
    const ids = Array.from({ length: 24 }, fresh);
    const batch = ids.map((id) => keys.entity('User', id));
    await store.refresh(
      batch.filter((_, i) => i % 2 === 0).map((key, i) => value(key, 1, `even ${i}`)),
      'R',
    );
    const replies = await store.getOrLease(
      batch.map((key) => ({ key })),
      { token: 'T', leaseTtlMs: LEASE_MS },
    );
    expect(replies.map((r) => r.kind)).toEqual(batch.map((_, i) => (i % 2 === 0 ? 'hit' : 'lease')));
    expect(replies.filter((r) => r.kind === 'hit').map((r) => hit(r)?.payload)).toEqual(Array.from({ length: 12 }, (_, i) => `even ${i}`));
    const filled = await store.setIfLeased(
      'T',
      batch.filter((_, i) => i % 2 === 1).map((key) => value(key, 1, 'odd')),
    );
    expect(filled).toEqual(Array.from({ length: 12 }, () => true));
  });
});
