/**
 * graphql-lease-cache in another Apollo server, whole: a book catalog whose database is a Map.
 * Reads go through a per-request DataLoader whose batch function is the entity cache; the
 * mutation writes the database, then invalidates the one key it changed. Run it with
 * `REDIS_URL=redis://127.0.0.1:6379 npx tsx packages/graphql-lease-cache/examples/books-server.ts`;
 * test/integration/example.test.ts runs it against a real Redis.
 */
import { ApolloServer } from '@apollo/server';
import { startStandaloneServer } from '@apollo/server/standalone';
import DataLoader from 'dataloader';
import { Redis } from 'ioredis';
import { createCache, type Cache } from 'graphql-lease-cache';

export interface Book {
  id: string;
  title: string;
  /** Incremented by every write: the cache never stores an older version over a newer one. */
  version: number;
}

/** The database: any store will do. It counts its reads, to show what the cache saves. */
export class BookDb {
  readonly books = new Map<string, Book>();
  reads = 0;

  async findMany(ids: readonly string[]): Promise<(Book | null)[]> {
    this.reads += 1;
    return ids.map((id) => this.books.get(id) ?? null);
  }

  async rename(id: string, title: string): Promise<Book | null> {
    const book = this.books.get(id);
    if (!book) return null;
    const renamed = { ...book, title, version: book.version + 1 };
    this.books.set(id, renamed);
    return renamed;
  }
}

const typeDefs = `#graphql
  type Book { id: ID! title: String! }
  type Query { book(id: ID!): Book }
  type Mutation { renameBook(id: ID!, title: String!): Book }
`;

export interface BooksContext {
  books: DataLoader<string, Book | null>;
}

/** The server, the per-request context, and the cache (to close it). */
export function createBooksServer(redis: Redis, db: BookDb) {
  const cache: Cache = createCache({ redis, settings: { namespace: 'books', ttlMs: 60_000 } });
  const bookCache = cache.entity<Book>('Book');
  const server = new ApolloServer<BooksContext>({
    typeDefs,
    resolvers: {
      Query: { book: (_: unknown, args: { id: string }, ctx: BooksContext) => ctx.books.load(args.id) },
      Mutation: {
        renameBook: async (_: unknown, args: { id: string; title: string }) => {
          const book = await db.rename(args.id, args.title);
          // After the write committed: the next read, here or on any instance, loads the new one.
          await bookCache.invalidate([args.id]);
          return book;
        },
      },
    },
  });
  // One loader per request: Redis first (one round trip for the batch), the misses from the database.
  const context = async (): Promise<BooksContext> => ({
    books: new DataLoader((ids: readonly string[]) => bookCache.getMany(ids, (missing) => db.findMany(missing))),
  });
  return { server, context, cache };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const db = new BookDb();
  db.books.set('1', { id: '1', title: 'Dune', version: 1 });
  const { server, context } = createBooksServer(new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'), db);
  const { url } = await startStandaloneServer(server, { context, listen: { port: 4001 } });
  console.log(`books at ${url}`);
}
