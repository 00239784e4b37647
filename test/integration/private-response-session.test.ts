import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ABSENT } from 'graphql-lease-cache';
import { hashToken } from '../../src/services/auth.service.js';
import { startPrivateRedis, type PrivateRedis } from '../helpers/redis.js';
import { startServerProcess, type ServerProcess } from '../helpers/server-process.js';
import { storedValue } from '../helpers/stored.js';
import { startTestApp, USER_PASSWORD, type TestApp } from '../helpers/test-app.js';
import { until } from '../helpers/wait.js';

// The second hostile review: `logout` returns while Redis is paused, and the server that ran it
// is killed. Its session tombstone was already on the wire and lands when Redis resumes; the
// invalidation of the stored responses, sent only after the tombstone's reply, never leaves.
// Another server must not keep serving the token's private response: a private response is
// served only to a session that is live now, checked on every hit.

// user1's own email and orders: PRIVATE, stored per session for 60 s.
const VIEWER = 'query { user(id: "5eed00000000000000000001") { id email orders { id } } }';

describe('a private response after its session ended elsewhere', () => {
  let redis: PrivateRedis;
  let reader: TestApp;
  let writer: ServerProcess | undefined;

  beforeAll(async () => {
    redis = await startPrivateRedis();
    reader = await startTestApp({ redisUrl: redis.url, seed: { users: 3, products: 2, reviews: 0, orders: 0 } });
    // The writer: another server process on the same database, Redis and key namespace.
    writer = await startServerProcess({
      NODE_ENV: 'test',
      MONGODB_URI: reader.config.mongodbUri ?? '',
      REDIS_URL: redis.url,
      CACHE_NAMESPACE: reader.config.cache.namespace,
      SEED_ON_START: 'false',
      WRITE_BEHIND_WORKER: 'false',
    });
  });
  afterAll(async () => {
    redis.resume();
    if (writer?.process.exitCode === null) writer.process.kill('SIGKILL');
    await reader.stop();
    await redis.stop();
  });

  it('is not served once the session is a tombstone, though the response invalidation was lost with the writer', async () => {
    const token = await reader.login('user1@example.com', USER_PASSWORD);
    const first = await reader.gql(VIEWER, {}, token);
    expect(first.body.data?.user).toMatchObject({ email: 'user1@example.com' });
    const repeat = await reader.gql(VIEWER, {}, token);
    expect(repeat.body.extensions?.cache?.response).toBe('HIT');

    // Redis paused; the writer's logout times out on the cache, deletes the session in MongoDB
    // and returns; then the writer dies before Redis is back.
    process.kill(redis.pid, 'SIGSTOP');
    const logout = await fetch(`${writer?.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query: 'mutation { logout }' }),
    });
    expect(((await logout.json()) as { data: { logout: boolean } }).data.logout).toBe(true);
    writer?.process.kill('SIGKILL');
    await until(() => writer?.process.exitCode !== null || writer.process.signalCode !== null, { what: 'the writer to die' });
    redis.resume();

    // What the review saw: the tombstone landed, the responses were not voided.
    const sessionKey = reader.app.cache.values('session').key(hashToken(token));
    await until(async () => (await storedValue(redis.client, sessionKey))?.value === ABSENT, { what: 'the tombstone to land' });
    expect((await redis.client.keys(`${reader.app.cache.keys.prefix}:{resp:*}:r:*`)).length).toBeGreaterThan(0);

    // The reader resolves the session on the hit: dead, so the request is anonymous.
    const after = await reader.gql(VIEWER, {}, token);
    expect(after.body.data?.user).toMatchObject({ id: '5eed00000000000000000001', email: null });
    expect(JSON.stringify(after.body)).not.toContain('user1@example.com');
  });
});
