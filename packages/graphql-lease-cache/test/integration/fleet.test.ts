// The fleet protocol (src/fleet/): two caches on one private Redis are two members. What a
// member's L1 holds is modelled by a recording L1 (it keeps the dependencies it still holds).
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createCache, type Cache } from '../../src/create-cache.js';
import type { FleetL1 } from '../../src/fleet/fleet.js';
import { InMemoryIntentLog } from '../../src/fleet/intents.js';
import { SILENT_LOGGER } from '../../src/logger.js';
import { createRedisClient, type RedisClient } from '../../src/redis-client.js';
import { startRedis, startRedisCluster, type TestRedis, type TestRedisCluster } from '../helpers/redis.js';
import { until } from '../helpers/wait.js';
import { Redis } from 'ioredis';

/** An L1 that holds names: dropped by an invalidation naming them, emptied by a flush. */
class HeldNames implements FleetL1 {
  readonly held = new Set<string>();
  readonly flushes: string[] = [];
  invalidate(dependencies: readonly string[]): void {
    for (const name of dependencies) this.held.delete(name);
  }
  flush(reason: string): void {
    this.held.clear();
    this.flushes.push(reason);
  }
}

let redis: TestRedis;
const open: { cache: Cache; client: RedisClient }[] = [];
let namespace = 0;

beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis.stop();
});
afterEach(() => {
  redis.resume();
  for (const { cache, client } of open.splice(0)) {
    cache.close();
    client.disconnect();
  }
});

async function member(ns: string, l1: HeldNames, intents: InMemoryIntentLog, leaseMs = 600): Promise<Cache> {
  const client = createRedisClient({ url: redis.url, logger: SILENT_LOGGER });
  await client.connect();
  const cache = createCache({ redis: client, settings: { namespace: ns }, fleet: { intents, leaseMs, sweepEveryMs: 60_000, l1 } });
  open.push({ cache, client });
  await cache.fleet?.ready;
  return cache;
}

function nextNamespace(): string {
  namespace += 1;
  return `fleet${namespace}`;
}

describe('the fleet', () => {
  it('registers every member, and a write returns only after the other members dropped what it invalidated', async () => {
    const ns = nextNamespace();
    const intents = new InMemoryIntentLog();
    const [l1a, l1b] = [new HeldNames(), new HeldNames()];
    const a = await member(ns, l1a, intents);
    await member(ns, l1b, intents);
    await until(() => a.fleet!.servable(), { what: 'a registered' });
    const key = a.keys.entity('User', 'u1');
    l1b.held.add(key);
    await a.core.invalidate([key]);
    expect(l1b.held.has(key)).toBe(false);
  });

  it('a member whose subscription is killed empties its L1 and stops serving until it registers again', async () => {
    const ns = nextNamespace();
    const intents = new InMemoryIntentLog();
    const l1b = new HeldNames();
    await member(ns, new HeldNames(), intents);
    const b = await member(ns, l1b, intents);
    await until(() => b.fleet!.servable(), { what: 'b registered' });
    l1b.held.add('x');
    await redis.client.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
    await until(() => l1b.flushes.includes('subscriber'), { what: 'b flushed' });
    expect(l1b.held.size).toBe(0);
    await until(() => b.fleet!.servable(), { what: 'b registered again' });
  });

  it('a member that stops answering delays a write by at most its lease', async () => {
    const ns = nextNamespace();
    const intents = new InMemoryIntentLog();
    const a = await member(ns, new HeldNames(), intents);
    const b = await member(ns, new HeldNames(), intents);
    await until(() => a.fleet!.servable() && b.fleet!.servable(), { what: 'both registered' });
    b.fleet!.close(); // no more renewals, no acknowledgements, no leave: as if SIGSTOPped
    const started = Date.now();
    await a.core.invalidate([a.keys.entity('User', 'u2')]);
    expect(Date.now() - started).toBeLessThan(600 + 300 + 200);
  });

  it('an invalidation owed by a writer that died during a Redis pause is delivered by another member before it serves again', async () => {
    const ns = nextNamespace();
    const intents = new InMemoryIntentLog();
    const a = await member(ns, new HeldNames(), intents);
    const l1b = new HeldNames();
    const b = await member(ns, l1b, intents);
    await until(() => a.fleet!.servable() && b.fleet!.servable(), { what: 'both registered' });
    const key = a.keys.entity('User', 'u3');
    await redis.client.set(key, 'old');
    redis.pause();
    const write = a.core.invalidate([key]);
    await until(() => intents.size === 1, { what: 'the intent recorded' });
    expect(a.fleet!.servable()).toBe(false);
    await until(() => !b.fleet!.servable(), { what: 'b stops serving: its lease cannot be renewed' });
    await write; // returns after the fence, Redis still paused
    a.close(); // the writer dies, owing the invalidation
    redis.resume();
    await until(() => b.fleet!.servable(), { what: 'b serves again' });
    expect(await redis.client.get(key)).toBeNull();
    expect(intents.size).toBe(0);
  });
});

describe('the fleet on a three-node Redis Cluster', () => {
  let cluster: TestRedisCluster;
  const members: { cache: Cache; client: RedisClient }[] = [];
  beforeAll(async () => {
    cluster = await startRedisCluster();
  }, 60_000);
  afterAll(async () => {
    for (const { cache, client } of members.splice(0)) {
      cache.close();
      client.disconnect();
    }
    await cluster.stop();
  });
  async function clusterMember(ns: string, l1: HeldNames, intents: InMemoryIntentLog): Promise<Cache> {
    const client = createRedisClient({ url: '', clusterNodes: cluster.nodes, logger: SILENT_LOGGER });
    await client.connect();
    const cache = createCache({ redis: client, settings: { namespace: ns }, fleet: { intents, leaseMs: 600, sweepEveryMs: 60_000, l1 } });
    members.push({ cache, client });
    await cache.fleet?.ready;
    return cache;
  }

  it('a write returns only after the other member dropped what it invalidated, entities and tags in other slots than the fleet', async () => {
    const intents = new InMemoryIntentLog();
    const [l1a, l1b] = [new HeldNames(), new HeldNames()];
    const a = await clusterMember('fleetc', l1a, intents);
    const b = await clusterMember('fleetc', l1b, intents);
    await until(() => a.fleet!.servable() && b.fleet!.servable(), { what: 'both registered' });
    const keys = ['u1', 'u2', 'u3'].map((id) => a.keys.entity('User', id));
    const tag = a.keys.tag('Product', 'p1', 'reviews');
    for (const name of [...keys, tag]) l1b.held.add(name);
    await a.core.invalidate(keys, [tag]);
    expect(l1b.held.size).toBe(0);
  });

  it('a member that stops answering delays a write by at most its lease, and is then taken for dead and its intents delivered', async () => {
    const intents = new InMemoryIntentLog();
    const a = await clusterMember('fleetd', new HeldNames(), intents);
    const b = await clusterMember('fleetd', new HeldNames(), intents);
    await until(() => a.fleet!.servable() && b.fleet!.servable(), { what: 'both registered' });
    const owed = a.keys.entity('User', 'owed');
    await intents.record({ owner: b.fleet!.member, keys: [owed], tags: [] });
    b.fleet!.close();
    const started = Date.now();
    await a.core.invalidate([a.keys.entity('User', 'u9')]);
    expect(Date.now() - started).toBeLessThan(600 + 300 + 200);
    await until(() => intents.size === 0, { what: "a to deliver b's intent" });
  });

  it("the fleet's slot moved to another node (resharding) between writes: the members follow it, and a write still waits for the other member", async () => {
    const intents = new InMemoryIntentLog();
    const [l1a, l1b] = [new HeldNames(), new HeldNames()];
    const a = await clusterMember('fleetm', l1a, intents);
    const b = await clusterMember('fleetm', l1b, intents);
    await until(() => a.fleet!.servable() && b.fleet!.servable(), { what: 'both registered' });
    await a.core.invalidate([a.keys.entity('User', 'before')]);
    const moved = await moveSlotOf('fleet', cluster.nodes);
    expect(moved.to).not.toBe(moved.from);
    // Every member renews and publishes on the node that now serves the slot (ioredis follows MOVED).
    const key = a.keys.entity('User', 'after');
    l1b.held.add(key);
    await a.core.invalidate([key]);
    expect(l1b.held.has(key)).toBe(false);
    await until(() => a.fleet!.servable() && b.fleet!.servable(), { what: 'both serving after the move' });
  });
});

/** Moves the slot of hash tag `tag` to another master, keys and all, as `redis-cli --cluster reshard` does. */
async function moveSlotOf(tag: string, nodes: readonly string[]): Promise<{ from: string; to: string }> {
  const clients = nodes.map((node) => {
    const [host = '127.0.0.1', port = '0'] = node.split(':');
    return new Redis(Number(port), host, { maxRetriesPerRequest: 1 });
  });
  try {
    const slot = Number(await clients[0]!.call('CLUSTER', 'KEYSLOT', tag));
    const ids = await Promise.all(clients.map(async (c) => String(await c.call('CLUSTER', 'MYID'))));
    const owner = await ownerOf(clients[0]!, slot);
    const from = ids.indexOf(owner);
    const to = (from + 1) % clients.length;
    const [source, target] = [clients[from]!, clients[to]!];
    await target.call('CLUSTER', 'SETSLOT', slot, 'IMPORTING', ids[from]!);
    await source.call('CLUSTER', 'SETSLOT', slot, 'MIGRATING', ids[to]!);
    const keys = (await source.call('CLUSTER', 'GETKEYSINSLOT', slot, 1000)) as string[];
    const [host = '127.0.0.1', port = '0'] = (nodes[to] ?? '').split(':');
    if (keys.length > 0) await source.call('MIGRATE', host, port, '', 0, 5000, 'KEYS', ...keys);
    for (const c of clients) await c.call('CLUSTER', 'SETSLOT', slot, 'NODE', ids[to]!);
    // The hash moved with the slot, and every node says the target serves it now.
    expect(await target.call('EXISTS', 'fleetm:{fleet}')).toBe(1);
    return { from: owner, to: await ownerOf(clients[from]!, slot) };
  } finally {
    for (const c of clients) c.disconnect();
  }
}

async function ownerOf(client: Redis, slot: number): Promise<string> {
  const ranges = (await client.call('CLUSTER', 'SLOTS')) as [number, number, [string, number, string]][];
  const range = ranges.find(([from, to]) => slot >= from && slot <= to);
  if (!range) throw new Error(`no owner of slot ${slot}`);
  return range[2][2];
}
