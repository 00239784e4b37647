import diagnostics from 'node:diagnostics_channel';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CACHE_CHANNELS, type LookupEvent } from '../../src/index.js';
import { BookDb, createBooksServer } from '../../examples/books-server.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';

let redis: TestRedis;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis.stop();
});

describe('the README example: the cache in another Apollo server', () => {
  it('serves a repeat from Redis, and the read after a mutation from the database', async () => {
    const db = new BookDb();
    db.books.set('1', { id: '1', title: 'Dune', version: 1 });
    const client = redis.client.duplicate();
    const { server, context, cache } = createBooksServer(client, db);
    const lookups: LookupEvent[] = [];
    const listen = (message: unknown): void => {
      if ((message as LookupEvent).cache === cache.events.id) lookups.push(message as LookupEvent);
    };
    diagnostics.subscribe(CACHE_CHANNELS.lookup, listen);
    const title = async (): Promise<unknown> => {
      const res = await server.executeOperation({ query: '{ book(id: "1") { title } }' }, { contextValue: await context() });
      return res.body.kind === 'single' ? res.body.singleResult.data?.book : res.body;
    };
    try {
      expect(await title()).toEqual({ title: 'Dune' });
      expect(await title()).toEqual({ title: 'Dune' });
      expect(db.reads).toBe(1);
      await server.executeOperation(
        { query: 'mutation { renameBook(id: "1", title: "Dune Messiah") { title } }' },
        { contextValue: await context() },
      );
      expect(await title()).toEqual({ title: 'Dune Messiah' });
      expect(db.reads).toBe(2);
      expect(lookups.map((e) => [e.name, e.hits, e.misses])).toEqual([
        ['Book', 0, 1],
        ['Book', 1, 0],
        ['Book', 0, 1],
      ]);
      expect(cache.stats.snapshot()).toEqual([{ name: 'Book', hits: 1, misses: 2 }]);
    } finally {
      diagnostics.unsubscribe(CACHE_CHANNELS.lookup, listen);
      cache.close();
      await server.stop();
      client.disconnect();
    }
  });
});
