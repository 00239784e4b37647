import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SessionModel } from '../../src/models/index.js';
import { hashToken } from '../../src/services/auth.service.js';
import { USER_PASSWORD, startTestApp, type TestApp } from '../helpers/test-app.js';

// REQUEST_TRACE=writes: a traced request's trace holds its own MongoDB commands only, while
// concurrent untraced requests run and the storage is enabled and disabled around it.

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ env: { REQUEST_TRACE: 'writes' }, seed: { users: 12, products: 30, reviews: 60, orders: 0 } });
});
afterAll(() => t.stop());

const product = (i: number): string => `5eed0001${i.toString(16).padStart(16, '0')}`;

describe('REQUEST_TRACE=writes: traces are not shared', () => {
  it('each updateUser counts exactly its own MongoDB commands while untraced reads and renewals run', async () => {
    const writers = await Promise.all(Array.from({ length: 4 }, (_, i) => t.login(`user${i + 1}@example.com`, USER_PASSWORD)));
    const readers = await Promise.all(Array.from({ length: 6 }, (_, i) => t.login(`user${i + 5}@example.com`, USER_PASSWORD)));
    const ids = await Promise.all(
      writers.map(async (token) => (await t.gql('{ viewer { id } }', {}, token)).body.data!.viewer.id as string),
    );
    const update = (i: number, n: number) =>
      t.gql<{ updateUser: { name: string } }>(
        `mutation { updateUser(id: "${ids[i]}", input: { name: "w${i}-${n}" }) { name } }`,
        {},
        writers[i],
      );
    // Baseline, alone: warm viewer, one findOneAndUpdate.
    const alone = await update(0, 0);
    const baseline = alone.body.extensions?.cache?.mongoCommands;
    expect(typeof baseline).toBe('number');
    const age = async () => {
      for (const token of readers) {
        await SessionModel.updateOne({ tokenHash: hashToken(token) }, { $set: { expiresAt: new Date(Date.now() + 60_000) } });
        await t.app.cache.core.invalidate([t.app.cache.values('session').key(hashToken(token))]);
      }
    };
    const counts: number[] = [];
    for (let round = 1; round <= 5; round++) {
      await age();
      // Cold reads (misses go to MongoDB) and renewals, untraced, around traced mutations.
      for (let i = 0; i < 30; i++) await t.app.cache.entity('Product').invalidate([product(i)]);
      const reads = readers.flatMap((token, r) =>
        Array.from({ length: 3 }, (_, k) =>
          fetch(
            `${t.url}/graphql?query=${encodeURIComponent(`{ viewer { id } product(id: "${product((r * 3 + k + round) % 30)}") { name reviews { rating } } }`)}`,
            {
              headers: { 'apollo-require-preflight': 'true', authorization: `Bearer ${token}` },
            },
          ).then((r) => r.json()),
        ),
      );
      const writes = [1, 2, 3].map((i) => update(i, round));
      const results = await Promise.all(writes);
      await Promise.all(reads);
      for (const res of results) {
        expect(res.body.errors).toBeUndefined();
        counts.push(res.body.extensions?.cache?.mongoCommands ?? -1);
      }
    }
    expect(counts.every((c) => c === baseline)).toBe(true);
  });
});
