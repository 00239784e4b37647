import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Cache } from '../../src/index.js';
import { InMemorySource } from '../../src/testing/index.js';
import { createApolloExample } from '../../examples/apollo-server.js';
import { createYogaExample } from '../../examples/yoga-server.js';
import type { Book } from '../../examples/books.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';

// The README's examples on a real Redis: a repeat read is a hit (no source read), a mutation
// through the entity writer, and the read after it shows the new value.

let redis: TestRedis;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis.stop();
});

const BOOK = '{ book(id: "1") { title words } }';
const RENAME = 'mutation { renameBook(id: "1", title: "Dune Messiah") { title words } }';

/** Read, read again (a hit), rename, read: what each example must show; `run` answers a query's data. */
async function hitMutationNewValue(run: (query: string) => Promise<unknown>, db: InMemorySource<Book>, cache: Cache): Promise<void> {
  expect(await run(BOOK)).toEqual({ book: { title: 'Dune', words: 1 } });
  expect(db.loads).toBe(1);
  expect(await run(BOOK)).toEqual({ book: { title: 'Dune', words: 1 } });
  expect(db.loads).toBe(1);
  expect(await run(RENAME)).toEqual({ renameBook: { title: 'Dune Messiah', words: 2 } });
  expect(db.get('1')).toMatchObject({ title: 'Dune Messiah', version: 2 });
  expect(await run(BOOK)).toEqual({ book: { title: 'Dune Messiah', words: 2 } });
  // The repeat was a stored response. The mutation's answer computed `words` again (its tag was
  // invalidated); the read after it found the refreshed book and that value in Redis.
  expect(cache.stats.snapshot()).toEqual([
    { name: 'Book', hits: 1, misses: 1 },
    { name: 'Book.words', hits: 1, misses: 2 },
    { name: 'Response', hits: 1, misses: 2 },
  ]);
  expect(db.loads).toBe(1);
}

const library = (): InMemorySource<Book> => new InMemorySource<Book>({ '1': { id: '1', title: 'Dune', version: 1 } });

describe('the Apollo example', () => {
  it('answers a repeat from the cache, and the read after a mutation with the new value', async () => {
    const db = library();
    const client = redis.client.duplicate();
    const { server, context, cache } = createApolloExample(client, db);
    const run = async (query: string): Promise<unknown> => {
      const res = await server.executeOperation({ query }, { contextValue: await context() });
      if (res.body.kind !== 'single') throw new Error('not a single result');
      expect(res.body.singleResult.errors).toBeUndefined();
      return res.body.singleResult.data;
    };
    try {
      await hitMutationNewValue(run, db, cache);
    } finally {
      cache.close();
      await server.stop();
      client.disconnect();
    }
  });
});

describe('the Yoga example', () => {
  it('answers a repeat from the cache, and the read after a mutation with the new value', async () => {
    const db = library();
    const client = redis.client.duplicate();
    const { yoga, cache } = createYogaExample(client, db);
    const run = async (query: string): Promise<unknown> => {
      const res = await yoga.fetch('http://yoga/graphql', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query }),
      });
      const body = (await res.json()) as { data?: unknown; errors?: unknown };
      expect(body.errors).toBeUndefined();
      return body.data;
    };
    try {
      await hitMutationNewValue(run, db, cache);
    } finally {
      cache.close();
      client.disconnect();
    }
  });
});

describe('the README', () => {
  it('shows the examples as they are, the files these tests run', () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    for (const file of ['books.ts', 'apollo-server.ts', 'yoga-server.ts']) {
      expect(readme, file).toContain(`\`\`\`ts\n${readFileSync(new URL(`../../examples/${file}`, import.meta.url), 'utf8')}\`\`\``);
    }
  });
});
