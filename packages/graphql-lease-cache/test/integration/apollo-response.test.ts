import { createServer, type IncomingMessage, type Server } from 'node:http';
import { ApolloServer } from '@apollo/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCache, type Cache, type CacheTrace } from '../../src/index.js';
import { ResponseFlights, responseCachePlugin, responseFastPath, type ResponseOutcome } from '../../src/apollo/index.js';
import { Library, libraryContext, librarySchema, type LibraryContext } from '../helpers/library.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';

// The response cache in an Apollo server over a Map, against a real Redis: graphql-lease-cache/apollo.

let redis: TestRedis;
let cache: Cache;
let library: Library;
let server: ApolloServer<LibraryContext>;
const flights = new ResponseFlights();
const outcomes: ResponseOutcome[] = [];

beforeAll(async () => {
  redis = await startRedis();
  cache = createCache({ redis: redis.client.duplicate(), settings: { namespace: 'apollo-lib', responses: true, l1MaxBytes: 0 } });
  library = new Library({ '1': 'Dune', '2': 'Emma' });
  server = new ApolloServer<LibraryContext>({
    schema: librarySchema(library, cache),
    plugins: [
      responseCachePlugin<LibraryContext>({
        cache,
        flights,
        trace: (ctx) => ctx.trace,
        sessionId: (ctx) => ctx.sessionId,
        sessionExpiresAt: (ctx) => (ctx.sessionId === null ? null : Date.now() + 3_600_000),
        onOutcome: (_ctx, outcome) => outcomes.push(outcome),
        // Opaque to the package: what a hit must name as the executed response did.
        surrogateKeys: (dependencies) => [...dependencies].map((dependency) => `k:${dependency}`).sort(),
        storedHeaders: (_ctx, stored) => ({ 'x-keys': stored.surrogateKeys.join(' '), 'x-stored': stored.hit ? 'hit' : 'computed' }),
      }),
    ],
  });
  await server.start();
});
afterAll(async () => {
  await server.stop();
  cache.close();
  await redis.stop();
});

/** Runs `query` in a fresh context; the data and what the response cache did. */
async function run(query: string, options: { variables?: Record<string, unknown>; session?: string } = {}) {
  const before = outcomes.length;
  const res = await server.executeOperation(
    { query, ...(options.variables ? { variables: options.variables } : {}) },
    { contextValue: libraryContext(library, cache, options.session ?? null) },
  );
  if (res.body.kind !== 'single') throw new Error('not a single result');
  return {
    data: res.body.singleResult.data,
    errors: res.body.singleResult.errors,
    outcome: outcomes.slice(before).join(),
    headers: res.http.headers,
  };
}

describe('responseCachePlugin', () => {
  it('answers a repeat from the stored response, without executing', async () => {
    const query = '{ book(id: "1") { title } }';
    expect(await run(query)).toMatchObject({ data: { book: { title: 'Dune' } }, outcome: 'MISS' });
    const reads = library.reads;
    expect(await run(query)).toMatchObject({ data: { book: { title: 'Dune' } }, outcome: 'HIT' });
    expect(library.reads).toBe(reads);
  });

  it('a hit is told the surrogate keys the app computed when the response was stored', async () => {
    const query = '{ book(id: "1") { id title } }';
    const computed = await run(query);
    expect(computed.outcome).toBe('MISS');
    expect(computed.headers.get('x-stored')).toBe('computed');
    const keys = computed.headers.get('x-keys') ?? '';
    expect(keys).toMatch(/^k:/);
    const hit = await run(query);
    expect(hit.outcome).toBe('HIT');
    expect(hit.headers.get('x-stored')).toBe('hit');
    expect(hit.headers.get('x-keys')).toBe(keys);
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
});

describe('responseFastPath', () => {
  type Req = IncomingMessage & { body?: unknown; trace?: CacheTrace };
  let http: Server;
  let url: string;
  let executed = 0;
  let hits = 0;
  beforeAll(async () => {
    const fastPath = responseFastPath<Req>({
      cache,
      schema: librarySchema(library, cache),
      flights,
      trace: (req) => (req.trace ??= {}),
      onHit: () => (hits += 1),
    });
    // A plain node server: the JSON body parsed, the fast path, then Apollo (with the same trace).
    http = createServer((req: Req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        req.body = JSON.parse(Buffer.concat(chunks).toString()) as unknown;
        fastPath(req, res, () => {
          executed += 1;
          const contextValue = libraryContext(library, cache, null, (req.trace ??= {}));
          void server.executeOperation(req.body as { query: string }, { contextValue }).then((result) => {
            res.setHeader('content-type', 'application/json; charset=utf-8');
            res.end(JSON.stringify(result.body.kind === 'single' ? result.body.singleResult : null));
          });
        });
      });
    });
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    const address = http.address();
    url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  });
  afterAll(async () => {
    await new Promise((resolve) => http.close(resolve));
  });

  const post = async (query: string) => {
    const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query }) });
    return { status: res.status, cacheControl: res.headers.get('cache-control'), body: (await res.json()) as unknown };
  };

  it('answers a stored response before the server, with its policy; a miss is looked up once and stored by the plugin', async () => {
    const query = '{ second: book(id: "1") { title } }';
    const lookups = outcomes.length;
    expect(await post(query)).toMatchObject({ status: 200, body: { data: { second: { title: 'Dune' } } } });
    expect([executed, hits, outcomes.slice(lookups)]).toEqual([1, 0, ['MISS']]);
    expect(await post(query)).toEqual({ status: 200, cacheControl: 'no-cache, public', body: { data: { second: { title: 'Dune' } } } });
    expect([executed, hits]).toEqual([1, 1]);
    await run('mutation { renameBook(id: "1", title: "Dune Messiah") { title } }');
    expect(await post(query)).toMatchObject({ body: { data: { second: { title: 'Dune Messiah' } } } });
    expect([executed, hits]).toEqual([2, 1]);
  });
});
