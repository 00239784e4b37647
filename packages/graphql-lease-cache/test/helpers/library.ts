/**
 * A tiny library for the response cache's tests (Apollo and Envelop alike): books in a Map,
 * read through the entity cache per request, a private shelf per session, and a mutation that
 * invalidates (or refreshes) the book it changed. No database: the Map counts its reads.
 */
import DataLoader from 'dataloader';
import { createSchema } from 'graphql-yoga';
import type { GraphQLSchema } from 'graphql';
import type { Cache, CacheTrace } from '../../src/index.js';

export interface Book {
  id: string;
  title: string;
  version: number;
}

/** The request context of both servers. */
export interface LibraryContext {
  /** What the cache's reads of this request are traced in (the response cache's `trace` hook). */
  trace: CacheTrace;
  /** The live session of the request, or null (anonymous). */
  sessionId: string | null;
  books: DataLoader<string, Book | null>;
}

/** The database: a Map that counts its reads. */
export class Library {
  readonly books = new Map<string, Book>();
  reads = 0;

  constructor(titles: Record<string, string>) {
    for (const [id, title] of Object.entries(titles)) this.books.set(id, { id, title, version: 1 });
  }

  async findMany(ids: readonly string[]): Promise<(Book | null)[]> {
    this.reads += 1;
    return ids.map((id) => this.books.get(id) ?? null);
  }

  rename(id: string, title: string): Book | null {
    const book = this.books.get(id);
    if (!book) return null;
    const renamed = { ...book, title, version: book.version + 1 };
    this.books.set(id, renamed);
    return renamed;
  }
}

const typeDefs = /* GraphQL */ `
  enum CacheControlScope {
    PUBLIC
    PRIVATE
  }
  directive @cacheControl(maxAge: Int, scope: CacheControlScope, inheritMaxAge: Boolean) on FIELD_DEFINITION | OBJECT | INTERFACE | UNION
  type Book @cacheControl(maxAge: 60) {
    id: ID!
    title: String!
  }
  type Shelf @cacheControl(maxAge: 60, scope: PRIVATE) {
    owner: String!
    books: [Book!]!
  }
  type Query {
    book(id: ID!): Book
    myShelf: Shelf
    "Fails: a response with an error."
    broken: Book
  }
  type Mutation {
    renameBook(id: ID!, title: String!, refresh: Boolean): Book
  }
`;

/** The schema over `library`, whose writes go to the entity cache of `cache`. */
export function librarySchema(library: Library, cache: Cache): GraphQLSchema {
  const books = cache.entity<Book>('Book');
  return createSchema<LibraryContext>({
    typeDefs,
    resolvers: {
      Query: {
        book: (_: unknown, args: { id: string }, ctx: LibraryContext) => ctx.books.load(args.id),
        myShelf: async (_: unknown, _args: unknown, ctx: LibraryContext) =>
          ctx.sessionId === null ? null : { owner: ctx.sessionId, books: await ctx.books.loadMany([...library.books.keys()]) },
        broken: () => {
          throw new Error('broken');
        },
      },
      Mutation: {
        renameBook: async (_: unknown, args: { id: string; title: string; refresh?: boolean }) => {
          const book = library.rename(args.id, args.title);
          // After the write: the entity and every response that read it are void (or rewritten).
          if (book && args.refresh) await books.refresh([book]);
          else await books.invalidate([args.id]);
          return book;
        },
      },
    },
  });
}

/** A fresh context for one request: its loader, reading through `trace` (default a new one). */
export function libraryContext(library: Library, cache: Cache, sessionId: string | null = null, trace: CacheTrace = {}): LibraryContext {
  const books = cache.entity<Book>('Book');
  return {
    trace,
    sessionId,
    books: new DataLoader((ids: readonly string[]) => books.getMany(ids, (missing) => library.findMany(missing), trace)),
  };
}
