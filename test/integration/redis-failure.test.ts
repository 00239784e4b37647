import { describe, expect, it } from 'vitest';
import { USER_PASSWORD } from '../helpers/test-app.js';
import { metricValue } from '../helpers/metrics.js';
import { usePrivateRedisApp } from '../helpers/private-redis-app.js';
import { until } from '../helpers/wait.js';

// The entity path under failure (response-cache.test.ts: the whole-response layer's BYPASS).
// The fixture lets a Redis left frozen (SIGSTOP) run again before it stops the app.
// FERRETDB_DOCUMENT_LOCK=process: one instance, whose writes need no Redis lock (with the
// default, a write on FerretDB while Redis is down is refused: two-instances.test.ts).
const { redis, t } = usePrivateRedisApp({
  env: {
    FERRETDB_DOCUMENT_LOCK: 'process',
    CACHE_RESPONSES: 'false',
    CACHE_BREAKER_THRESHOLD: '3',
    CACHE_BREAKER_OPEN_MS: '300',
    REDIS_COMMAND_TIMEOUT_MS: '100',
  },
});

const USER = '5eed00000000000000000009';
const query = `{ user(id: "${USER}") { id name } }`;
/** A metric of the server, summed over its labels, as its /metrics endpoint shows it. */
const metric = (name: string): Promise<number> => metricValue(`${t.url}/metrics`, name);

describe('a failing Redis never fails a request', () => {
  it('a hung Redis: queries are served from MongoDB, errors counted, the breaker opens; then it recovers', async () => {
    const token = await t.login('user9@example.com', USER_PASSWORD);
    expect((await t.gql(query)).body.data?.user.id).toBe(USER); // warm
    const errorsBefore = await metric('cache_errors_total');

    process.kill(redis.pid, 'SIGSTOP'); // commands now time out
    try {
      for (let i = 0; i < 6; i += 1) {
        const res = await t.gql(query, {}, token);
        expect(res.body.errors).toBeUndefined();
        expect(res.body.data?.user).toMatchObject({ id: USER });
      }
      expect(await metric('cache_errors_total')).toBeGreaterThan(errorsBefore);
      expect(await metric('cache_breaker_state')).toBe(2); // open: Redis is not even called
      const ready = await (await fetch(`${t.url}/readyz`)).json();
      expect(ready).toEqual({ status: 'degraded', mongodb: 'up', redis: 'down' });
    } finally {
      process.kill(redis.pid, 'SIGCONT');
    }
    await until(
      async () => {
        await t.gql(query);
        return (await metric('cache_breaker_state')) === 0;
      },
      { what: 'the breaker to close', timeoutMs: 10_000 },
    );
    const warm = await t.gql(query);
    expect(warm.body.extensions?.cache).toMatchObject({ hits: 1, mongoCommands: 0 });
  });

  it('an invalidation that could not reach Redis is not forgotten: its key bypasses the cache until delivered', async () => {
    const token = await t.login('user9@example.com', USER_PASSWORD);
    await t.gql(query); // the old name is cached
    const key = t.app.cache.keys.entity('User', USER);
    expect(await redis.client.exists(key)).toBe(1);

    process.kill(redis.pid, 'SIGSTOP');
    let updated;
    try {
      updated = await t.gql(`mutation { updateUser(id: "${USER}", input: { name: "Renamed while Redis hung" }) { name } }`, {}, token);
    } finally {
      process.kill(redis.pid, 'SIGCONT');
    }
    expect(updated.body.data?.updateUser.name).toBe('Renamed while Redis hung');
    expect(t.app.cache.core.pendingInvalidations).toBe(1);
    // Redis still holds the old name, but this server will not serve it.
    const read = await t.gql(query);
    expect(read.body.data?.user.name).toBe('Renamed while Redis hung');
    await until(() => t.app.cache.core.pendingInvalidations === 0, { what: 'delivery', timeoutMs: 10_000 });
    expect(await redis.client.exists(key)).toBe(0);
    expect((await t.gql(query)).body.data?.user.name).toBe('Renamed while Redis hung');
  });
});
