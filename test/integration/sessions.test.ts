import { Types } from 'mongoose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashToken } from '../../src/services/auth.service.js';
import { SessionModel } from '../../src/models/index.js';
import { USER_PASSWORD, startTestApp, type TestApp } from '../helpers/test-app.js';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ env: { SESSION_TTL_SECONDS: '3600' } });
});
afterAll(() => t.stop());

const sessionKey = (token: string) => t.app.cache.values('session').key(hashToken(token));

describe('sessions in Redis on the cache core', () => {
  it('login caches the session with the session TTL, and expiresAt follows it', async () => {
    const res = await t.gql('mutation { login(email: "user1@example.com", password: "password123") { token expiresAt } }');
    const { token, expiresAt } = res.body.data?.login;
    const ttl = await t.app.redis?.pttl(sessionKey(token));
    expect(ttl).toBeGreaterThan(3_600_000 * 0.9 - 1_000);
    expect(ttl).toBeLessThanOrEqual(3_600_000 * 1.1);
    expect(Math.abs(new Date(expiresAt).getTime() - Date.now() - 3_600_000)).toBeLessThan(5_000);
  });

  it('an authenticated request costs no MongoDB command for the session and slides its expiry (EXPIRE)', async () => {
    const token = await t.login('user2@example.com', USER_PASSWORD);
    await t.gql('{ viewer { id } }', {}, token); // the user document is now cached too
    await t.app.redis?.pexpire(sessionKey(token), 10_000); // as if the session had been idle for most of its life
    const { result, commands } = await t.countMongoCommands(() => t.gql('{ viewer { id } }', {}, token));
    expect(result.body.data?.viewer).toEqual({ id: '5eed00000000000000000002' });
    expect(commands).toBe(0); // session and user both from Redis
    expect(await t.app.redis?.pttl(sessionKey(token))).toBeGreaterThan(3_590_000);
  });

  it('a session evicted from Redis is read back from MongoDB', async () => {
    const token = await t.login('user3@example.com', USER_PASSWORD);
    await t.app.redis?.del(sessionKey(token));
    const res = await t.gql('{ viewer { id } }', {}, token);
    expect(res.body.data?.viewer).toEqual({ id: '5eed00000000000000000003' });
    expect(await t.app.redis?.exists(sessionKey(token))).toBe(1);
  });

  it('logout deletes the session in MongoDB and leaves a tombstone in Redis; the token then identifies nobody', async () => {
    const token = await t.login('user4@example.com', USER_PASSWORD);
    await t.gql('{ viewer { id } }', {}, token);
    expect((await t.gql('mutation { logout }', {}, token)).body.data?.logout).toBe(true);
    // `<version>|<stamp>|<etag>|<payload>`: the highest version, no tags, the absent marker.
    expect(await t.app.redis?.get(sessionKey(token))).toMatch(new RegExp(`^${Number.MAX_SAFE_INTEGER}\\|\\|[\\w-]+\\|-$`));
    expect(await SessionModel.countDocuments({ tokenHash: hashToken(token) })).toBe(0);
    expect((await t.gql('{ viewer { id } }', {}, token)).body.data?.viewer).toBeNull();
  });

  it('a renewal that lands after logout (a late refresh) cannot bring the session back', async () => {
    const token = await t.login('user7@example.com', USER_PASSWORD);
    expect((await t.gql('mutation { logout }', {}, token)).body.data?.logout).toBe(true);
    const late = { userId: new Types.ObjectId('5eed00000000000000000007'), expiresAt: new Date(Date.now() + 3_600_000) };
    await t.app.cache.values('session').set(hashToken(token), late, late.expiresAt.getTime(), 3_600_000);
    expect((await t.gql('{ viewer { id } }', {}, token)).body.data?.viewer).toBeNull();
  });

  it('an expired session is nobody, even if Redis still has it', async () => {
    const token = await t.login('user5@example.com', USER_PASSWORD);
    await SessionModel.updateOne({ tokenHash: hashToken(token) }, { $set: { expiresAt: new Date(Date.now() - 1_000) } });
    await t.app.redis?.del(sessionKey(token));
    expect((await t.gql('{ viewer { id } }', {}, token)).body.data?.viewer).toBeNull();
  });

  it('no Redis key holds a raw token', async () => {
    const token = await t.login('user6@example.com', USER_PASSWORD);
    const keys = await t.app.redis?.keys(`${t.app.cache.keys.prefix}:*`);
    expect(keys?.some((k) => k.includes(token))).toBe(false);
  });
});
