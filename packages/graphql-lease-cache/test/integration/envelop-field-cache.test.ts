import { makeExecutableSchema } from '@graphql-tools/schema';
import { createYoga } from 'graphql-yoga';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCache, defineField, FieldCache, type Cache, type FieldLoader } from '../../src/index.js';
import { useFieldCache } from '../../src/envelop/index.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';

// useFieldCache (graphql-lease-cache/envelop) in a GraphQL Yoga server, on a real Redis: a
// `@cached` field is computed once, served from Redis to the next request, computed again after
// its tag is invalidated, and a PRIVATE one is each viewer's own.

const typeDefs = /* GraphQL */ `
  directive @cached(dependsOn: [String!]! = []) on FIELD_DEFINITION
  enum CacheControlScope {
    PUBLIC
    PRIVATE
  }
  directive @cacheControl(maxAge: Int, scope: CacheControlScope, inheritMaxAge: Boolean) on FIELD_DEFINITION | OBJECT | INTERFACE | UNION
  type Query {
    shelf(id: ID!): Shelf
  }
  type Shelf {
    id: ID!
    bookCount: Int! @cached(dependsOn: ["books"]) @cacheControl(maxAge: 60)
    myNote: String @cached @cacheControl(maxAge: 60, scope: PRIVATE)
  }
`;

interface Shelf {
  id: string;
}
/** The "database": books per shelf, a note per (shelf, reader), and how often each field was computed. */
class Shelves {
  readonly books = new Map<string, string[]>([['s1', ['Dune', 'Emma']]]);
  readonly notes = new Map<string, string>([
    ['s1:ada', "Ada's"],
    ['s1:bob', "Bob's"],
  ]);
  computed = { bookCount: 0, myNote: 0 };
}
interface Ctx {
  fields: FieldLoader;
  reader: string | undefined;
}

const bookCount = defineField<Shelf, Record<string, never>, number, Shelves>({
  coordinate: 'Shelf.bookCount',
  ownerType: 'Shelf',
  owner: (shelf) => ({ type: 'Shelf', id: shelf.id }),
  async load(items, db) {
    db.computed.bookCount += 1;
    return items.map((item) => db.books.get(item.parent.id)?.length ?? 0);
  },
});
const myNote = defineField<Shelf, Record<string, never>, string | null, Shelves>({
  coordinate: 'Shelf.myNote',
  ownerType: 'Shelf',
  owner: (shelf) => ({ type: 'Shelf', id: shelf.id }),
  async load(items, db) {
    db.computed.myNote += 1;
    return items.map((item) => db.notes.get(`${item.parent.id}:${item.viewerId}`) ?? null);
  },
});

let redis: TestRedis;
let cache: Cache;
let fieldCache: FieldCache<Shelves>;
const db = new Shelves();
let yoga: ReturnType<typeof createYoga<Record<string, unknown>, Ctx>>;

beforeAll(async () => {
  redis = await startRedis();
  cache = createCache({ redis: redis.client.duplicate(), settings: { namespace: 'yoga-fields' } });
  const schema = makeExecutableSchema<Ctx>({
    typeDefs,
    resolvers: {
      Query: { shelf: (_: unknown, args: { id: string }) => (db.books.has(args.id) ? { id: args.id } : null) },
      Shelf: {
        bookCount: (shelf: Shelf, _: unknown, ctx: Ctx) => ctx.fields.load(bookCount, shelf, {}),
        myNote: (shelf: Shelf, _: unknown, ctx: Ctx) => ctx.fields.load(myNote, shelf, {}),
      },
    },
  });
  // Built once from the schema's @cached declarations (a mismatch fails here).
  fieldCache = new FieldCache<Shelves>({
    core: cache.core,
    keys: cache.keys,
    schema,
    definitions: [bookCount, myNote],
    knownTags: { Shelf: ['books'] },
  });
  yoga = createYoga<Record<string, unknown>, Ctx>({
    schema,
    logging: false,
    context: ({ request }) => ({ reader: request.headers.get('x-reader') ?? undefined }) as Ctx,
    plugins: [useFieldCache<Ctx, Shelves>({ fieldCache, scope: () => db, viewerId: async (ctx) => ctx.reader })],
  });
});
afterAll(async () => {
  cache.close();
  await redis.stop();
});

async function run(query: string, reader?: string): Promise<unknown> {
  const res = await yoga.fetch('http://yoga/graphql', {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(reader ? { 'x-reader': reader } : {}) },
    body: JSON.stringify({ query }),
  });
  return ((await res.json()) as { data?: unknown }).data;
}

describe('useFieldCache (Envelop, in GraphQL Yoga)', () => {
  it('computes a @cached field once, serves it from Redis, and computes it again after its tag is invalidated', async () => {
    expect(await run('{ shelf(id: "s1") { bookCount } }')).toEqual({ shelf: { bookCount: 2 } });
    expect(await run('{ shelf(id: "s1") { bookCount } }')).toEqual({ shelf: { bookCount: 2 } });
    expect(db.computed.bookCount).toBe(1);
    db.books.get('s1')?.push('Ulysses');
    await fieldCache.invalidate([{ type: 'Shelf', id: 's1', tag: 'books' }]);
    expect(await run('{ shelf(id: "s1") { bookCount } }')).toEqual({ shelf: { bookCount: 3 } });
    expect(db.computed.bookCount).toBe(2);
  });

  it("keeps a PRIVATE field per viewer: one reader's value is never another's", async () => {
    expect(await run('{ shelf(id: "s1") { myNote } }', 'ada')).toEqual({ shelf: { myNote: "Ada's" } });
    expect(await run('{ shelf(id: "s1") { myNote } }', 'bob')).toEqual({ shelf: { myNote: "Bob's" } });
    expect(await run('{ shelf(id: "s1") { myNote } }', 'ada')).toEqual({ shelf: { myNote: "Ada's" } });
    expect(db.computed.myNote).toBe(2);
  });
});
