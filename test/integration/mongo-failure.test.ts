import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmbeddedMongo, type EmbeddedMongo } from '../../src/dev/embedded-mongo.js';
import { createLogger } from '../../src/logger.js';
import { errorCodes, startTestApp, type TestApp } from '../helpers/test-app.js';

let mongo: EmbeddedMongo;
let t: TestApp;
beforeAll(async () => {
  // A MongoDB-compatible server of this test's own, to stop mid-test.
  mongo = await startEmbeddedMongo({ logger: createLogger({ level: 'silent' }), prefer: 'ferretdb' });
  t = await startTestApp({ env: { MONGODB_URI: `${mongo.uri}/down`, MONGODB_TIMEOUT_MS: '1000' } });
});
afterAll(async () => {
  await t.stop().catch(() => undefined);
  await mongo.stop();
});

describe('MongoDB down', () => {
  it('answers with DATABASE_UNAVAILABLE (no 500, nothing cached), serves what Redis has, and /readyz says unavailable', async () => {
    const cached = '{ user(id: "5eed00000000000000000001") { id name } }';
    const warm = await t.gql(cached);
    expect(warm.body.data?.user.id).toBe('5eed00000000000000000001');
    await mongo.stop();

    const res = await t.gql('{ user(id: "5eed00000000000000000002") { id name } }');
    expect(res.status).toBe(200);
    expect(errorCodes(res)).toEqual(['DATABASE_UNAVAILABLE']);
    expect(JSON.stringify(res.body)).not.toMatch(/stacktrace|MongoServerSelectionError/);
    // nothing was written to the cache for the failed read
    expect(await t.app.redis?.exists(t.app.cache.keys.entity('User', '5eed00000000000000000002'))).toBe(0);

    // the warm entity is still served, from Redis
    expect((await t.gql(cached)).body.data).toEqual(warm.body.data);

    const ready = await fetch(`${t.url}/readyz`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toMatchObject({ status: 'unavailable', mongodb: 'down' });
  });
});
