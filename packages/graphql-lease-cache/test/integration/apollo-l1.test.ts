import { createServer, type IncomingMessage, type Server } from 'node:http';
import { ApolloServer } from '@apollo/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCache, type Cache, type CacheTrace } from '../../src/index.js';
import { ResponseFlights, responseCachePlugin, responseFastPath, type ResponseOutcome } from '../../src/apollo/index.js';
import { Library, libraryContext, librarySchema, type LibraryContext } from '../helpers/library.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';

// The response cache's L1 hits in an Apollo server (graphql-lease-cache/apollo), on a real Redis:
// the plugin and the fast path say when a response came from this process's L1 (HIT_L1).

let redis: TestRedis;
let cache: Cache;
let library: Library;
let server: ApolloServer<LibraryContext>;
let http: Server;
let url: string;
const flights = new ResponseFlights();
const outcomes: ResponseOutcome[] = [];
const fastHits: boolean[] = [];

beforeAll(async () => {
  redis = await startRedis();
  cache = createCache({
    redis: redis.client.duplicate(),
    settings: { namespace: 'apollo-l1', responses: true },
    l1Gate: { l1Servable: () => true },
  });
  library = new Library({ '1': 'Dune', '2': 'Emma' });
  server = new ApolloServer<LibraryContext>({
    schema: librarySchema(library, cache),
    plugins: [responseCachePlugin<LibraryContext>({ cache, flights, trace: (ctx) => ctx.trace, onOutcome: (_ctx, o) => outcomes.push(o) })],
  });
  await server.start();
  type Req = IncomingMessage & { body?: unknown; trace?: CacheTrace };
  const fastPath = responseFastPath<Req>({
    cache,
    schema: librarySchema(library, cache),
    flights,
    trace: (req) => (req.trace ??= {}),
    onHit: (_req, _res, hit) => fastHits.push(hit.l1),
  });
  http = createServer((req: Req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      req.body = JSON.parse(Buffer.concat(chunks).toString()) as unknown;
      fastPath(req, res, () => {
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
  await server.stop();
  cache.close();
  await redis.stop();
});

async function run(query: string): Promise<{ data: unknown; outcome: string }> {
  const before = outcomes.length;
  const res = await server.executeOperation({ query }, { contextValue: libraryContext(library, cache, null) });
  if (res.body.kind !== 'single') throw new Error('not a single result');
  return { data: res.body.singleResult.data, outcome: outcomes.slice(before).join() };
}

describe('the response cache with an L1 that may serve', () => {
  it('answers a repeat in the plugin from L1 (HIT_L1), and from Redis (HIT) once the L1 was flushed', async () => {
    const query = '{ book(id: "1") { title } }';
    expect(await run(query)).toMatchObject({ outcome: 'MISS' });
    expect(await run(query)).toEqual({ data: { book: { title: 'Dune' } }, outcome: 'HIT_L1' });
    cache.l1?.flush('test');
    expect((await run(query)).outcome).toBe('HIT');
    expect((await run(query)).outcome).toBe('HIT_L1');
  });

  it('tells the fast path’s onHit when the hit came from L1', async () => {
    const query = '{ other: book(id: "2") { title } }';
    const post = async () =>
      (await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query }) })).json();
    expect(await post()).toMatchObject({ data: { other: { title: 'Emma' } } }); // executed and stored (held in L1)
    expect(await post()).toMatchObject({ data: { other: { title: 'Emma' } } });
    cache.l1?.flush('test');
    await post();
    expect(fastHits).toEqual([true, false]);
  });
});
