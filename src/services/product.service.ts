import { Types, type UpdateQuery } from 'mongoose';
import type { Cache, EntityCache } from 'graphql-lease-cache';
import { fields } from '../caching/fields.js';
import { tags, type TagInvalidator } from '../caching/tags.js';
import { AppError, ErrorCode, badInput } from '../errors.js';
import { ProductModel, ReviewModel } from '../models/index.js';
import { asLoaded, type ProductDoc } from '../models/product.model.js';
import type { ReviewDoc } from '../models/review.model.js';
import { decodeCursor, encodeCursor, type ProductPageQuery } from '../loaders/product-pages.js';
import type { DocumentLock } from './document-lock.js';
import type { RateLimits } from './rate-limits.js';
import { updateByIdIf } from './update-by-id.js';
import { requireAdmin, type RequestScope } from './scope.js';
import { definedOnly, inputs, parseFirst, parseId, parseInput } from './validation.js';
import { afterUncertainWrite, writeThenInvalidate } from './mongo-errors.js';
import type { UpdateOptions } from 'graphql-lease-cache/write-behind';
import type { EntityWriters } from './entity-writers.js';

/** One page of the catalog (the `ProductConnection` type). */
export interface ProductPage {
  edges: ProductPageEdge[];
  pageInfo: { hasNextPage: boolean; endCursor: string | null };
}
/** A product and the cursor that points just after it. */
export interface ProductPageEdge {
  cursor: string;
  node: ProductDoc;
}

/** Arguments of the `products` query. */
export interface ProductPageArgs {
  first?: number | null;
  after?: string | null;
  category?: string | null;
}

/** The product mutations' input shapes. */
export interface CreateProductArgs {
  name: string;
  description?: string | null;
  priceCents: number;
  category: string;
  stock: number;
}
export type UpdateProductArgs = { [K in keyof CreateProductArgs]?: CreateProductArgs[K] | null };

/** The catalog: pages, admin writes and view counts. */
export type ProductService = ReturnType<typeof createProductService>;

/** Options of {@link createProductService}. */
export interface ProductServiceOptions {
  documentLock: DocumentLock;
  cache: Cache;
  fieldCache: TagInvalidator;
  /** Counts views per client address, and one per product per window (recordProductView). */
  rateLimits: RateLimits;
  /** The cached updates of products (updateProduct, recordProductView): see entity-writers.ts. */
  writers: Pick<EntityWriters, 'Product'>;
  /** See ServicesOptions.uncertainWriteHoldMs; in milliseconds. */
  uncertainWriteHoldMs: number;
}

/** Catalog reads and writes; deletes are soft so that past orders still show their products. */
export function createProductService(options: ProductServiceOptions) {
  const { fieldCache } = options;
  const deps: ProductDeps = {
    ...options,
    products: options.cache.entity<ProductDoc>('Product'),
    reviews: options.cache.entity<ReviewDoc>('Review'),
    hold: { holdMs: options.uncertainWriteHoldMs },
  };
  const { products, hold } = deps;

  return {
    /** A page of live products, newest first, with cursor `(createdAt, _id)`. */
    page: catalogPage,

    /** A live product by id, or null (also for a deleted one). */
    find: findProduct,

    async create(scope: RequestScope, args: CreateProductArgs): Promise<ProductDoc> {
      await requireAdmin(scope);
      const input = parseInput(inputs.createProduct, args, 'input');
      const created = await afterUncertainWrite(
        () => fieldCache.invalidate(tags.catalog(input.category), hold),
        () => ProductModel.create({ ...input, description: input.description ?? null }),
      );
      const product = created.toObject<ProductDoc>();
      await Promise.all([products.refresh([product]), fieldCache.invalidate(tags.catalog(product.category))]);
      scope.loaders.product.prime(product._id.toHexString(), product);
      return product;
    },

    update: (scope: RequestScope, rawId: string, args: UpdateProductArgs): Promise<ProductDoc> => updateProduct(deps, scope, rawId, args),

    /** Soft-deletes the product and deletes its reviews; false when no live product has this id. */
    delete: (scope: RequestScope, rawId: string): Promise<boolean> => deleteProduct(deps, scope, rawId),

    /**
     * Counts one view and returns the product with the new count. Always write-behind: the
     * count is queued in Redis and reaches MongoDB with the other views of the batch, in one
     * `$inc`; without a queue (Redis down), it is a synchronous `$inc`. A client address counts
     * once per product per window: a repeat returns the product as it is and writes nothing
     * (so voids no stored response); past its views per minute it is RATE_LIMITED.
     */
    async recordView(scope: RequestScope, rawId: string): Promise<ProductDoc> {
      // Cache keys and loaders use the canonical (lower-case) form, whatever the client sent.
      const id = parseId(rawId).toHexString();
      const current = await findProduct(scope, id);
      if (!current) throw new AppError(ErrorCode.NotFound, 'No product has this id.', { field: 'id' });
      if (!(await options.rateLimits.productView(scope.clientIp, id))) return current;
      const product = await options.writers.Product.update(scope, id, { inc: { viewCount: 1 } }, { policy: 'write-behind' });
      if (!product) throw new AppError(ErrorCode.NotFound, 'No product has this id.', { field: 'id' });
      return product;
    },
  };
}

/** What the catalog's writes share: the service's options and the caches they invalidate. */
interface ProductDeps extends ProductServiceOptions {
  products: EntityCache<ProductDoc>;
  reviews: EntityCache<ReviewDoc>;
  /** How long what an unanswered write touched bypasses the cache (uncertainWriteHoldMs). */
  hold: { holdMs: number };
}

/** A page of live products, newest first, with cursor `(createdAt, _id)`. */
async function catalogPage(scope: RequestScope, args: ProductPageArgs): Promise<ProductPage> {
  // Bad input fails here, before any cache key is made from it: a category no product can
  // have (longer than the 50 characters a product's may be) and anything but our cursors.
  const { category = null, after = null } = parseInput(inputs.productPage, { category: args.category, after: args.after }, 'products');
  const query: ProductPageQuery = { first: parseFirst(args.first, 20), after, category };
  if (query.after !== null) decodeCursor(query.after);
  // The page is cached as ids (Query.products, tagged with its list) and hydrated through the entity cache.
  const page = await scope.fields.load(fields.products, null, query);
  const nodes = await scope.loaders.product.loadMany(page.ids);
  // A product that could not be loaded fails the page (its error, e.g. DATABASE_UNAVAILABLE):
  // dropping it would answer a wrong page with no error.
  const failed = nodes.find((node): node is Error => node instanceof Error);
  if (failed) throw failed;
  const edges = nodes
    .filter((node): node is ProductDoc => node !== null && !(node instanceof Error) && !node.deletedAt)
    .map((node) => ({ cursor: encodeCursor(node), node }));
  return { edges, pageInfo: { hasNextPage: page.hasNextPage, endCursor: edges.at(-1)?.cursor ?? null } };
}

/** A live product by id, or null (also for a deleted one). */
async function findProduct(scope: RequestScope, id: string): Promise<ProductDoc | null> {
  const product = await scope.loaders.product.load(parseId(id).toHexString());
  return product && !product.deletedAt ? product : null;
}

/** The `updateProduct` mutation: an admin's changes through the product writer. */
async function updateProduct(deps: ProductDeps, scope: RequestScope, rawId: string, args: UpdateProductArgs): Promise<ProductDoc> {
  const { fieldCache } = deps;
  // Cache keys and loaders use the canonical (lower-case) form, whatever the client sent.
  const id = parseId(rawId).toHexString();
  await requireAdmin(scope);
  const changes = definedOnly(parseInput(inputs.updateProduct, args, 'input'));
  // stock and category are read by MongoDB queries (orders, category lists), which cannot see
  // a queued value: the writer writes them synchronously whatever the policy (ENTITY_POLICIES).
  const { category } = changes;
  // A category change moves the product between lists: both drop their pages. The pre-image
  // names the old category exactly; for an answer that never came, the loader's view does.
  const moved: UpdateOptions<ProductDoc> = {
    alsoInvalidate: ({ before, holdMs }) =>
      fieldCache.invalidate([before?.category ?? null, category ?? null].flatMap(catalogOf), holdMs ? { holdMs } : {}),
  };
  const product = await deps.writers.Product.update(scope, id, { set: changes }, category === undefined ? {} : moved);
  if (!product) throw new AppError(ErrorCode.NotFound, 'No product has this id.', { field: 'id' });
  return product;
}

/** Soft-deletes the product and deletes its reviews; false when no live product has this id. */
async function deleteProduct(deps: ProductDeps, scope: RequestScope, rawId: string): Promise<boolean> {
  const { fieldCache, products, reviews, hold } = deps;
  const productId = parseId(rawId);
  // Cache keys and loaders use the canonical (lower-case) form, whatever the client sent.
  const id = productId.toHexString();
  await requireAdmin(scope);
  const was = (await findProduct(scope, id))?.category ?? null;
  // Its reviews go with it, and so do their counts (a review count change still under way
  // skips a deleted product: services/review-counts.ts).
  const product = await updateLive(
    deps,
    productId.toHexString(),
    { $set: { deletedAt: new Date(), reviewCount: 0, ratingSum: 0 } },
    'after',
    [was],
  );
  if (!product) return false;
  let doomed: { _id: Types.ObjectId; author: Types.ObjectId }[] = [];
  await writeThenInvalidate(
    async () => {
      doomed = await ReviewModel.find({ product: productId }, { _id: 1, author: 1 }).lean<typeof doomed>().exec();
      // Exactly the reviews that get invalidated: one created meanwhile is neither deleted nor left cached.
      await ReviewModel.deleteMany({ _id: { $in: doomed.map((r) => r._id) } }).exec();
    },
    (uncertain) => {
      const held = uncertain ? hold : {}; // an unanswered delete may still land
      const authors = [...new Set(doomed.map((r) => r.author.toHexString()))];
      return Promise.all([
        products.invalidate([id], held),
        reviews.invalidate(
          doomed.map((r) => r._id.toHexString()),
          held,
        ),
        fieldCache.invalidate([tags.productReviews(id), ...authors.map(tags.userReviews), ...tags.catalog(product.category)], held),
      ]);
    },
  );
  scope.loaders.product.clear(id).prime(id, product);
  return true;
}

/**
 * findOneAndUpdate on a live product, serialized per document where the server needs it.
 * When MongoDB does not answer (the update may still be applied), the product and `lists`
 * bypass the cache for a while and are invalidated again (see CacheCore.invalidate).
 */
function updateLive(
  { documentLock, fieldCache, products, hold }: ProductDeps,
  id: string,
  update: UpdateQuery<ProductDoc>,
  returnDocument: 'before' | 'after' = 'after',
  lists: readonly (string | null)[] = [],
): Promise<ProductDoc | null> {
  return afterUncertainWrite(
    () => Promise.all([products.invalidate([id], hold), fieldCache.invalidate(lists.flatMap(catalogOf), hold)]),
    () =>
      documentLock.run([`products:${id}`], async () =>
        asLoaded(await updateByIdIf(documentLock, ProductModel, id, { deletedAt: null }, update, { returnDocument })),
      ),
  );
}

/** The catalog tags of a list: the category's and all products' (just the latter for null). */
function catalogOf(category: string | null): ReturnType<typeof tags.catalog> {
  return category === null ? tags.catalog('').slice(0, 1) : tags.catalog(category);
}
