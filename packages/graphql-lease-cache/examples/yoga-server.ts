// graphql-lease-cache in GraphQL Yoga: the Apollo example's server, with the field cache and the
// response cache as Envelop plugins. `db` stands for your database.
import DataLoader from 'dataloader';
import type { Redis } from 'ioredis';
import { createSchema, createYoga } from 'graphql-yoga';
import { FieldCache, createCache, type CacheTrace, type FieldLoader } from 'graphql-lease-cache';
import { useFieldCache, useResponseCache } from 'graphql-lease-cache/envelop';
import { InMemoryWriteTarget, type InMemorySource } from 'graphql-lease-cache/testing';
import { createEntityWriter } from 'graphql-lease-cache/write-behind';
import { knownTags, typeDefs, words, type Book } from './books.js';

type Ctx = { trace: CacheTrace; books: DataLoader<string, Book | null>; fields: FieldLoader };

/** The Yoga server over `db` and a cache on `redis` (its `fetch` serves requests; `createServer(yoga)` listens). */
export function createYogaExample(redis: Redis, db: InMemorySource<Book>) {
  const cache = createCache({ redis, settings: { namespace: 'yoga-example', responses: true } });
  const target = new InMemoryWriteTarget({ source: db });
  const writer = createEntityWriter({ cache, type: 'Book', target, policy: 'refresh', holdMs: 5_000, loader: (ctx: Ctx) => ctx.books });
  const resolvers = {
    Query: { book: (_: unknown, args: { id: string }, ctx: Ctx) => ctx.books.load(args.id) },
    Book: { words: (book: Book, _: unknown, ctx: Ctx) => ctx.fields.load(words, book, {}) },
    Mutation: {
      async renameBook(_: unknown, { id, title }: { id: string; title: string }, ctx: Ctx) {
        const book = await writer.update(ctx, id, { set: { title } }); // written, cached, the request's loader primed
        await fieldCache.invalidate([{ type: 'Book', id, tag: 'title' }]); // `words` is computed again
        return book;
      },
    },
  };
  const schema = createSchema<Ctx>({ typeDefs, resolvers });
  const fieldCache = new FieldCache<null>({ core: cache.core, keys: cache.keys, schema, definitions: [words], knownTags });
  const context = (): Omit<Ctx, 'fields'> => {
    const trace: CacheTrace = {};
    return { trace, books: new DataLoader((ids: readonly string[]) => cache.entity<Book>('Book').getMany(ids, db.load, trace)) };
  };
  const plugins = [
    useFieldCache<Ctx, null>({ fieldCache, scope: () => null, viewerId: async () => undefined, trace: (ctx) => ctx.trace }),
    useResponseCache<Ctx>({ cache, trace: (ctx) => ctx.trace }),
  ];
  return { yoga: createYoga({ schema, context, plugins }), cache };
}
