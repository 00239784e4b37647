// graphql-lease-cache in Apollo Server: an entity read through a per-request DataLoader, a @cached
// field, whole responses, and a mutation through the entity writer. `db` stands for your database.
import { ApolloServer } from '@apollo/server';
import DataLoader from 'dataloader';
import { buildSchema } from 'graphql';
import type { Redis } from 'ioredis';
import { FieldCache, createCache, type CacheTrace, type FieldLoader } from 'graphql-lease-cache';
import { responseCachePlugin } from 'graphql-lease-cache/apollo';
import { InMemoryWriteTarget, type InMemorySource } from 'graphql-lease-cache/testing';
import { createEntityWriter } from 'graphql-lease-cache/write-behind';
import { knownTags, typeDefs, words, type Book } from './books.js';

type Ctx = { trace: CacheTrace; books: DataLoader<string, Book | null>; fields: FieldLoader };

/** The server and its per-request context, over `db` and a cache on `redis`. */
export function createApolloExample(redis: Redis, db: InMemorySource<Book>) {
  const cache = createCache({ redis, settings: { namespace: 'apollo-example', responses: true } });
  const schema = buildSchema(typeDefs); // what the field cache reads its @cached fields from
  const fieldCache = new FieldCache<null>({ core: cache.core, keys: cache.keys, schema, definitions: [words], knownTags });
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
  const server = new ApolloServer<Ctx>({ typeDefs, resolvers, plugins: [responseCachePlugin<Ctx>({ cache, trace: (ctx) => ctx.trace })] });
  const context = async (): Promise<Ctx> => {
    const trace: CacheTrace = {};
    const books = new DataLoader((ids: readonly string[]) => cache.entity<Book>('Book').getMany(ids, db.load, trace));
    return { trace, books, fields: fieldCache.createLoader(null, async () => undefined, trace) };
  };
  return { server, context, cache };
}
