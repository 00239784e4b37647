// A plain Apollo Server 5 + DataLoader server over the project's data, the benchmark's peer:
// the same schema subset (peer-schema.ts), plain resolvers, per-request DataLoaders. Started
// by bench/run.ts as a child process; configured by the environment:
//
//   PEER_MODE        mongo (default): MongoDB, no cache;
//                    response-cache: the same, plus @apollo/server-plugin-response-cache on
//                    Redis as Apollo's docs set it up (KeyvAdapter over Keyv and @keyv/redis);
//                    memory: every collection loaded into Maps at start, no I/O afterwards.
//   PORT             required; HOST default 127.0.0.1.
//   MONGODB_URI      required (memory reads it once at start).
//   REDIS_URL        required by response-cache.
//   PEER_CACHE_NAMESPACE  the response cache's Keyv namespace (key prefix); default bench-apollo.
//
// Sessions are out of the subset: `Authorization: Bearer <user id>` names the viewer (looked up
// through the user loader), a stand-in that costs what a session lookup would and checks the
// same roles (updateProduct: ADMIN; createReview: any user).
import { createServer } from 'node:http';
import { ApolloServer, type ApolloServerPlugin } from '@apollo/server';
import { ApolloServerPluginCacheControl } from '@apollo/server/plugin/cacheControl';
import { ApolloServerPluginDrainHttpServer } from '@apollo/server/plugin/drainHttpServer';
import responseCachePlugin from '@apollo/server-plugin-response-cache';
import { KeyvAdapter } from '@apollo/utils.keyvadapter';
import { expressMiddleware } from '@as-integrations/express5';
import KeyvRedis from '@keyv/redis';
import cors from 'cors';
import DataLoader from 'dataloader';
import express from 'express';
import { GraphQLError } from 'graphql';
import Keyv from 'keyv';
import mongoose, { Types } from 'mongoose';
import type { ProductDoc } from '../../src/models/product.model.js';
import type { ReviewDoc } from '../../src/models/review.model.js';
import type { UserDoc } from '../../src/models/user.model.js';
import { checkCacheHints, peerTypeDefs } from './peer-schema.js';
import { createMemorySource, createMongoSource, type PeerSource, type ProductChanges, type ReviewsKey } from './peer-source.js';

/** How a peer stores and caches (see the header). */
export type PeerMode = 'mongo' | 'response-cache' | 'memory';

/** The DataLoaders of one request. */
interface PeerLoaders {
  product: DataLoader<string, ProductDoc | null>;
  user: DataLoader<string, UserDoc | null>;
  reviews: DataLoader<ReviewsKey, ReviewDoc[], string>;
}

/** The request context. */
interface PeerContext {
  source: PeerSource;
  loaders: PeerLoaders;
  viewer(): Promise<UserDoc | null>;
}

/** The most ids or items a list argument takes, as in the project. */
const MAX_PAGE_SIZE = 100;

const mode = parseMode(process.env.PEER_MODE ?? 'mongo');
const port = parsePort(process.env.PORT);
const mongodbUri = required('MONGODB_URI');
checkCacheHints();

await mongoose.connect(mongodbUri, { autoIndex: false });
const source = mode === 'memory' ? await createMemorySource() : await createMongoSource();
// Nothing is read from MongoDB afterwards: the floor does no I/O.
if (mode === 'memory') await mongoose.disconnect();

const responseCache = mode === 'response-cache' ? createResponseCache(required('REDIS_URL')) : null;
const app = express();
const httpServer = createServer(app);
const apollo = new ApolloServer<PeerContext>({
  typeDefs: peerTypeDefs,
  resolvers: createResolvers(),
  ...(responseCache ? { cache: responseCache.adapter } : {}),
  // shutdown() below owns SIGINT/SIGTERM: Apollo's own handlers would race it and re-send the signal.
  stopOnTerminationSignals: false,
  plugins: [
    ApolloServerPluginDrainHttpServer({ httpServer }),
    // Apollo's caching docs: a default maxAge for fields without a hint (5 s); ours all have one.
    ApolloServerPluginCacheControl({ defaultMaxAge: 5 }),
    ...(responseCache ? [responseCachePlugin() as ApolloServerPlugin<PeerContext>] : []),
  ],
});
await apollo.start();
app.get('/healthz', (_req, res) => {
  res.json({ status: 'ok', mode });
});
app.use(
  '/graphql',
  cors<cors.CorsRequest>(),
  express.json(),
  expressMiddleware(apollo, {
    context: async ({ req }) => createContext(source, req.headers.authorization),
  }),
);
await new Promise<void>((resolve, reject) => {
  httpServer.once('error', reject);
  httpServer.listen(port, process.env.HOST ?? '127.0.0.1', resolve);
});
console.log(`peer (${mode}) ready on port ${port}`);

let stopping = false;
async function shutdown(): Promise<void> {
  if (stopping) return;
  stopping = true;
  await apollo.stop();
  await Promise.allSettled([mongoose.disconnect(), responseCache?.keyv.disconnect()]);
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown());
process.on('SIGINT', () => void shutdown());

/** Apollo's documented Redis cache: Keyv over @keyv/redis, wrapped in KeyvAdapter, its own namespace. */
function createResponseCache(redisUrl: string): { keyv: Keyv; adapter: KeyvAdapter } {
  const keyv = new Keyv({ store: new KeyvRedis(redisUrl), namespace: process.env.PEER_CACHE_NAMESPACE ?? 'bench-apollo' });
  keyv.on('error', (error: unknown) => console.error('response cache error', error));
  // KeyvAdapter is CommonJS, so its types name keyv's CJS declarations; the same class at run time.
  return { keyv, adapter: new KeyvAdapter<string>(keyv as unknown as ConstructorParameters<typeof KeyvAdapter<string>>[0]) };
}

function createContext(source: PeerSource, authorization: string | undefined): PeerContext {
  const loaders: PeerLoaders = {
    product: new DataLoader((ids) => source.productsByIds(ids)),
    user: new DataLoader((ids) => source.usersByIds(ids)),
    reviews: new DataLoader((keys) => source.reviewsByProducts(keys), { cacheKeyFn: (key) => `${key.productId}:${key.first}` }),
  };
  const userId = /^Bearer ([0-9a-f]{24})$/i.exec(authorization ?? '')?.[1]?.toLowerCase();
  let viewer: Promise<UserDoc | null> | undefined;
  return {
    source,
    loaders,
    viewer: () =>
      (viewer ??= userId ? loaders.user.load(userId).then((user) => (user && !user.deletedAt ? user : null)) : Promise.resolve(null)),
  };
}

function createResolvers() {
  const live = <T extends { deletedAt?: Date | null }>(doc: T | null): T | null => (doc && !doc.deletedAt ? doc : null);
  const idOf = (doc: { _id: Types.ObjectId }): string => doc._id.toHexString();
  return {
    Query: {
      product: async (_: unknown, { id }: { id: string }, ctx: PeerContext) => live(await ctx.loaders.product.load(parseId(id, 'id'))),
      products: async (_: unknown, { first }: { first: number }, ctx: PeerContext) => {
        const page = await ctx.source.productPage(parseFirst(first, 'first'));
        for (const product of page.products) ctx.loaders.product.prime(idOf(product), product);
        const edges = page.products.map((node) => ({ cursor: cursorOf(node), node }));
        return { edges, pageInfo: { hasNextPage: page.hasNextPage, endCursor: edges.at(-1)?.cursor ?? null } };
      },
      users: async (_: unknown, { ids }: { ids: string[] }, ctx: PeerContext) => {
        if (ids.length > MAX_PAGE_SIZE) throw badInput(`ids takes at most ${MAX_PAGE_SIZE} ids (got ${ids.length})`);
        return (await ctx.loaders.user.loadMany(ids.map((id, i) => parseId(id, `ids.${i}`)))).map((user) => {
          if (user instanceof Error) throw user;
          return live(user);
        });
      },
    },
    Mutation: {
      updateProduct: async (_: unknown, { id, input }: { id: string; input: Record<string, unknown> }, ctx: PeerContext) => {
        const viewer = await ctx.viewer();
        if (viewer?.role !== 'ADMIN') throw new GraphQLError('Only an ADMIN may do this.', { extensions: { code: 'FORBIDDEN' } });
        const changes = Object.fromEntries(
          Object.entries(input).filter(([, value]) => value !== null && value !== undefined),
        ) as ProductChanges;
        return found(await ctx.source.updateProduct(parseId(id, 'id'), changes));
      },
      createReview: async (
        _: unknown,
        { input }: { input: { productId: string; rating: number; body?: string | null } },
        ctx: PeerContext,
      ) => {
        const viewer = await ctx.viewer();
        if (!viewer) throw new GraphQLError('This operation needs a session.', { extensions: { code: 'UNAUTHENTICATED' } });
        if (!Number.isInteger(input.rating) || input.rating < 1 || input.rating > 5) throw badInput('rating is 1..5');
        const productId = parseId(input.productId, 'input.productId');
        found(live(await ctx.loaders.product.load(productId)));
        return ctx.source.createReview({ productId, authorId: idOf(viewer), rating: input.rating, body: input.body ?? null });
      },
      recordProductView: async (_: unknown, { id }: { id: string }, ctx: PeerContext) =>
        found(await ctx.source.recordView(parseId(id, 'id'))),
    },
    Product: {
      id: idOf,
      description: (product: ProductDoc) => product.description ?? null,
      reviews: (product: ProductDoc, { first }: { first: number }, ctx: PeerContext) =>
        ctx.loaders.reviews.load({ productId: idOf(product), first: parseFirst(first, 'first') }),
      // Kept on the product, as the project keeps them (its services/review-counts.ts).
      reviewCount: (product: ProductDoc) => product.reviewCount ?? 0,
      averageRating: (product: ProductDoc) => (product.reviewCount ? (product.ratingSum ?? 0) / product.reviewCount : null),
    },
    Review: {
      id: idOf,
      body: (review: ReviewDoc) => review.body ?? null,
      author: async (review: ReviewDoc, _: unknown, ctx: PeerContext) => found(await ctx.loaders.user.load(review.author.toHexString())),
      product: async (review: ReviewDoc, _: unknown, ctx: PeerContext) =>
        found(await ctx.loaders.product.load(review.product.toHexString())),
    },
    User: { id: idOf },
  };
}

/** The project's cursor: the product's (createdAt, _id). */
function cursorOf(product: ProductDoc): string {
  return Buffer.from(`${product.createdAt.getTime()}:${product._id.toHexString()}`).toString('base64url');
}

function found<T>(doc: T | null): T {
  if (doc === null) throw new GraphQLError('Not found.', { extensions: { code: 'NOT_FOUND' } });
  return doc;
}

function parseId(id: string, field: string): string {
  if (!/^[0-9a-f]{24}$/i.test(id)) throw badInput(`${field} is not an id`);
  return id.toLowerCase();
}

function parseFirst(first: number, field: string): number {
  if (!Number.isInteger(first) || first < 1 || first > MAX_PAGE_SIZE) throw badInput(`${field} is 1..${MAX_PAGE_SIZE}`);
  return first;
}

function badInput(message: string): GraphQLError {
  return new GraphQLError(message, { extensions: { code: 'BAD_USER_INPUT' } });
}

function parseMode(value: string): PeerMode {
  if (value === 'mongo' || value === 'response-cache' || value === 'memory') return value;
  throw new TypeError(`PEER_MODE must be mongo, response-cache or memory (got ${JSON.stringify(value)})`);
}

function parsePort(value: string | undefined): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 1 || port > 65_535) throw new TypeError(`PORT must be 1..65535 (got ${JSON.stringify(value)})`);
  return port;
}

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new TypeError(`${name} is required (got ${JSON.stringify(value)})`);
  return value;
}
