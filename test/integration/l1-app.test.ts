import { beforeAll, describe, expect, it } from 'vitest';
import { ADMIN, type GqlResponse } from '../helpers/test-app.js';
import { startPrivateRedisApp, type PrivateRedisApp } from '../helpers/private-redis-app.js';
import { until } from '../helpers/wait.js';

// The in-process L1 (CACHE_L1=true, the server's default) on both paths: a warm repeat costs no
// Redis round trip and no MongoDB command, counted on the private Redis (INFO commandstats, the
// fleet's own renewals left out) and by the app's MongoDB command counter; a mutation is seen by
// the next read.

const CATALOG =
  '{ products(first: 20) { edges { node { id name priceCents reviewCount reviews(first: 2) { rating author { name } } } } } }';
const USERS = `{ users(ids: [${Array.from({ length: 50 }, (_, i) => `"5eed0000${(i + 1).toString(16).padStart(16, '0')}"`).join(', ')}]) { id name role } }`;
const RENAME = 'mutation($id: ID!, $name: String!) { updateProduct(id: $id, input: { name: $name }) { id name } }';
const cacheOf = (res: GqlResponse) => res.body.extensions?.cache as (Record<string, unknown> & { response?: string }) | undefined;

function suite(label: string, responses: boolean): void {
  describe(`with the L1, ${label}`, () => {
    let app: PrivateRedisApp;
    let admin: string;
    beforeAll(async () => {
      app = await startPrivateRedisApp({
        env: { CACHE_L1: 'true', CACHE_RESPONSES: String(responses), WRITE_BEHIND_WORKER: 'false' },
        seed: { users: 60, products: 30, reviews: 120, orders: 0 },
      });
      admin = await app.t.login(ADMIN.email, ADMIN.password);
      return () => app.stop();
    });

    for (const [name, query] of [
      ['the catalog', CATALOG],
      ['users(ids: 50)', USERS],
    ] as const) {
      it(`a warm repeat of ${name} costs no Redis round trip and no MongoDB command`, async () => {
        const { t, redis } = app;
        // Warm: until a repeat is served from process memory (the first fills Redis and the L1).
        await until(async () => (await t.gql(query)).body.extensions?.cache?.redisRoundTrips === 0, { what: 'an L1 hit' });
        const executed = await t.gql(query);
        await redis.resetStats();
        const { result: hit, commands } = await t.countMongoCommands(() => t.gql(query));
        expect(await redis.scriptCalls()).toBe(0);
        expect(commands).toBe(0);
        expect(hit.body.data).toEqual(executed.body.data);
        if (responses) expect(cacheOf(hit)?.response).toBe('HIT_L1');
        else expect(cacheOf(hit)).toMatchObject({ misses: 0, redisRoundTrips: 0, mongoCommands: 0 });
      });
    }

    it('a mutation is seen by the next read, then that read is held again', async () => {
      const { t } = app;
      const id = '5eed0001' + (3).toString(16).padStart(16, '0');
      const read = async () => (await t.gql<{ product: { name: string } }>('query($id: ID!) { product(id: $id) { name } }', { id })).body;
      await read();
      await read();
      const renamed = await t.gql(RENAME, { id, name: `renamed ${label}` }, admin);
      expect(renamed.body.errors).toBeUndefined();
      expect((await read()).data?.product.name).toBe(`renamed ${label}`);
      const again = await read();
      expect(again.data?.product.name).toBe(`renamed ${label}`);
      await until(async () => (await read()).extensions?.cache?.redisRoundTrips === 0, { what: 'the new name held in the L1' });
    });
  });
}

suite('response cache on', true);
suite('entity path (CACHE_RESPONSES=false)', false);
