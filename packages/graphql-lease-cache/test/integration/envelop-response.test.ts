import { createYoga } from 'graphql-yoga';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCache, type Cache } from '../../src/index.js';
import { useResponseCache, type ResponseOutcome } from '../../src/envelop/index.js';
import { Library, libraryContext, librarySchema, type LibraryContext } from '../helpers/library.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';

// The response cache in a GraphQL Yoga server over a Map, against a real Redis: graphql-lease-cache/envelop.

let redis: TestRedis;
let cache: Cache;
let library: Library;
let yoga: ReturnType<typeof createYoga<Record<string, unknown>, LibraryContext>>;
const outcomes: ResponseOutcome[] = [];

beforeAll(async () => {
  redis = await startRedis();
  cache = createCache({ redis: redis.client.duplicate(), settings: { namespace: 'yoga-lib', responses: true, l1MaxBytes: 0 } });
  library = new Library({ '1': 'Dune', '2': 'Emma' });
  yoga = createYoga<Record<string, unknown>, LibraryContext>({
    schema: librarySchema(library, cache),
    logging: false,
    // The session is the bearer token here (every token is live in this library).
    context: ({ request }) => libraryContext(library, cache, request.headers.get('authorization')?.replace(/^Bearer /, '') ?? null),
    plugins: [
      useResponseCache<LibraryContext>({
        cache,
        trace: (ctx) => ctx.trace,
        sessionId: (ctx) => ctx.sessionId,
        sessionExpiresAt: (ctx) => (ctx.sessionId === null ? null : Date.now() + 3_600_000),
        onOutcome: (_ctx, outcome) => outcomes.push(outcome),
      }),
    ],
  });
});
afterAll(async () => {
  cache.close();
  await redis.stop();
});

/** POSTs `query` to Yoga (no socket: its fetch handler); the data and what the response cache did. */
async function run(query: string, options: { variables?: Record<string, unknown>; session?: string } = {}) {
  const before = outcomes.length;
  const res = await yoga.fetch('http://yoga/graphql', {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(options.session ? { authorization: `Bearer ${options.session}` } : {}) },
    body: JSON.stringify({ query, variables: options.variables }),
  });
  const body = (await res.json()) as { data?: unknown; errors?: unknown };
  return { data: body.data, errors: body.errors, outcome: outcomes.slice(before).join() };
}

describe('useResponseCache (Envelop, in GraphQL Yoga)', () => {
  it('answers a repeat from the stored response, without executing', async () => {
    const query = '{ book(id: "1") { title } }';
    expect(await run(query)).toMatchObject({ data: { book: { title: 'Dune' } }, outcome: 'MISS' });
    const reads = library.reads;
    expect(await run(query)).toMatchObject({ data: { book: { title: 'Dune' } }, outcome: 'HIT' });
    expect(library.reads).toBe(reads);
  });

  it('a mutation that invalidates, or refreshes, what a response read makes the next read fresh', async () => {
    const query = '{ book(id: "2") { title } }';
    await run(query);
    expect((await run(query)).outcome).toBe('HIT');
    await run('mutation { renameBook(id: "2", title: "Persuasion") { title } }');
    expect(await run(query)).toMatchObject({ data: { book: { title: 'Persuasion' } }, outcome: 'MISS' });
    expect((await run(query)).outcome).toBe('HIT');
    await run('mutation { renameBook(id: "2", title: "Sense", refresh: true) { title } }');
    expect(await run(query)).toMatchObject({ data: { book: { title: 'Sense' } }, outcome: 'MISS' });
  });

  it('a private response is keyed per session, never served to another, and never stored for anyone anonymous', async () => {
    const query = '{ myShelf { owner books { title } } }';
    expect(await run(query, { session: 'alice' })).toMatchObject({ data: { myShelf: { owner: 'alice' } }, outcome: 'MISS' });
    expect(await run(query, { session: 'alice' })).toMatchObject({ data: { myShelf: { owner: 'alice' } }, outcome: 'HIT' });
    expect(await run(query, { session: 'bob' })).toMatchObject({ data: { myShelf: { owner: 'bob' } }, outcome: 'MISS' });
    expect(await run(query)).toMatchObject({ data: { myShelf: null }, outcome: 'MISS' });
    expect(await run(query)).toMatchObject({ data: { myShelf: null }, outcome: 'MISS' });
  });

  it('undeclared (junk) variables name the same response', async () => {
    const query = 'query Book($id: ID!) { book(id: $id) { id title } }';
    expect((await run(query, { variables: { id: '1' } })).outcome).toBe('MISS');
    expect(await run(query, { variables: { id: '1', junk: 'x'.repeat(100) } })).toMatchObject({
      data: { book: { id: '1', title: 'Dune' } },
      outcome: 'HIT',
    });
  });

  it('a response with errors is not stored', async () => {
    const query = '{ book(id: "1") { title } broken { title } }';
    expect(await run(query)).toMatchObject({ errors: [expect.anything()], outcome: 'MISS' });
    expect(await run(query)).toMatchObject({ errors: [expect.anything()], outcome: 'MISS' });
  });
});
