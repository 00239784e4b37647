import { afterEach, describe, expect, it } from 'vitest';
import {
  ask,
  freeze,
  fleetWorld,
  fromCache,
  kill,
  terminate,
  PRODUCT,
  productId,
  readFor,
  UPDATE,
  type FleetWorld,
} from '../helpers/fleet.js';
import type { ServerProcess } from '../helpers/server-process.js';
import { until } from '../helpers/wait.js';

// Issue 23's first measurement, as a test: two server processes on one Redis; Redis paused; a
// write on A returns (its invalidation could not reach Redis, so it was recorded in MongoDB and
// A waited out the fleet's leases); A is killed before Redis resumes. The invalidation A owed
// must still reach B: no read on B may return the value A's write replaced. Reads that fail are
// not stale; they are counted apart.

const LEASE_MS = 1_500; // CACHE_FLEET_LEASE_MS's default
/** How long B is read after Redis resumes, ms. */
const READ_FOR_MS = 4_000;
// user1's own email and orders: PRIVATE, stored per session.
const VIEWER = 'query { user(id: "5eed00000000000000000001") { id email orders { id } } }';
const LOGOUT = 'mutation { logout }';
const LOGIN = 'mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }';

type ProductData = { product: { id: string; name: string; priceCents: number } | null };
type ViewerData = { user: { id: string; email: string | null } | null };

let world: FleetWorld | undefined;
afterEach(async () => {
  await world?.close();
  world = undefined;
});

/**
 * Starts A (the writer) and B (the reader) on `world`. A's writes take its in-process document
 * lock (FERRETDB_DOCUMENT_LOCK=process, A the only writer), as on MongoDB, where writes take no
 * lock in Redis: with the lock in Redis, FerretDB refuses a write while Redis is paused.
 */
async function twoInstances(env: Record<string, string>): Promise<[ServerProcess, ServerProcess]> {
  const current = world;
  if (!current) throw new Error('no world');
  const a = await current.start({ ...env, FERRETDB_DOCUMENT_LOCK: 'process' });
  const b = await current.start(env);
  return [a, b];
}

describe('a write during a Redis pause', () => {
  for (const [path, env, end] of [
    ['entity path', { CACHE_RESPONSES: 'false' }, 'SIGKILL'],
    ['response path', {}, 'SIGKILL'],
    // The measurement without the kill: the writer alive, its own retries delivering.
    ['response path', {}, null],
    // A graceful stop (a deploy) instead of a crash: the writer leaves the fleet as it stops.
    ['response path', {}, 'SIGTERM'],
  ] as const) {
    const title = end ? `the writer ended (${end}) before Redis resumes` : 'the writer alive';
    it(
      `on the ${path}, ${title}: no read on the other instance returns the old name, and it serves from the cache again`,
      { timeout: 120_000 },
      async () => {
        world = await fleetWorld({ products: 2 });
        const [a, b] = await twoInstances(env);
        const id = productId(1);
        const token = await world.adminToken(a);
        await ask(b, PRODUCT, { id });
        const warm = await ask<ProductData>(b, PRODUCT, { id });
        expect(fromCache(warm), JSON.stringify(warm.cache)).toBe(true);
        const oldName = warm.data?.product?.name ?? '';

        freeze(world.redis.pid, true);
        const write = await ask<{ updateProduct: { name: string } }>(
          a,
          UPDATE,
          { id, input: { name: 'renamed during the pause' } },
          { token },
        );
        if (end === 'SIGKILL') await kill(a);
        else if (end === 'SIGTERM') await terminate(a);
        freeze(world.redis.pid, false);
        console.log(
          `${path}, ${title}: updateProduct during the Redis pause returned in ${Math.round(write.ms)} ms (${write.error ?? 'ok'})`,
        );
        expect(write.error).toBeNull();
        // Its invalidation recorded, A waited out the leases (more than one, about two), never hanging.
        expect(write.ms).toBeGreaterThan(LEASE_MS);
        expect(write.ms).toBeLessThan(4 * LEASE_MS);

        const tally = await readFor(
          READ_FOR_MS,
          () => ask<ProductData>(b, PRODUCT, { id }),
          (r) => r.data?.product?.name === oldName,
        );
        console.log(
          `${path}, ${title}: after Redis resumed, ${tally.reads} reads on B, ${tally.stale.length} stale, ${tally.errors} errors, ${tally.cached} from the cache`,
        );
        expect(tally.stale.map((r) => ({ at: Math.round(r.sentAt), cache: r.cache }))).toEqual([]);
        // Recovered: B serves the new name from the cache again, and nothing is left owed.
        await until(
          async () => {
            const r = await ask<ProductData>(b, PRODUCT, { id });
            return r.data?.product?.name === 'renamed during the pause' && fromCache(r);
          },
          { what: 'B to serve the new name from the cache', timeoutMs: 15_000 },
        );
        await until(async () => (await world?.intents()) === 0, { what: 'cacheintents to be empty', timeoutMs: 15_000 });
      },
    );
  }
});

describe('a private response after logout on the writer killed during a Redis pause', () => {
  it('the other instance answers the token as logged out, never with the old private response', { timeout: 120_000 }, async () => {
    world = await fleetWorld({ products: 1, users: 2 });
    const [a, b] = await twoInstances({});
    const login = await ask<{ login: { token: string } }>(b, LOGIN, { e: 'user1@example.com', p: 'password123' });
    const token = login.data?.login.token ?? '';
    expect(token).not.toBe('');
    await ask(b, VIEWER, {}, { token });
    const warm = await ask<ViewerData>(b, VIEWER, {}, { token });
    expect(warm.data?.user?.email).toBe('user1@example.com');
    expect(['HIT', 'HIT_L1']).toContain(warm.cache?.response);

    freeze(world.redis.pid, true);
    const logout = await ask<{ logout: boolean }>(a, LOGOUT, {}, { token });
    await kill(a);
    freeze(world.redis.pid, false);
    console.log(`private: logout during the Redis pause returned in ${Math.round(logout.ms)} ms (${logout.error ?? 'ok'})`);
    expect(logout.data?.logout).toBe(true);
    expect(logout.ms).toBeGreaterThan(LEASE_MS);
    expect(logout.ms).toBeLessThan(4 * LEASE_MS);

    const tally = await readFor(
      READ_FOR_MS,
      () => ask<ViewerData>(b, VIEWER, {}, { token }),
      (r) => JSON.stringify(r.data).includes('user1@example.com'),
    );
    console.log(
      `private: after the writer's death, ${tally.reads} reads on B, ${tally.stale.length} not logged out, ${tally.errors} errors`,
    );
    expect(tally.stale.map((r) => ({ at: Math.round(r.sentAt), data: r.data, cache: r.cache }))).toEqual([]);
    expect(tally.reads - tally.errors).toBeGreaterThan(0);
    await until(async () => (await world?.intents()) === 0, { what: 'cacheintents to be empty', timeoutMs: 15_000 });
  });
});
