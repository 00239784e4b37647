import { Types, type UpdateQuery } from 'mongoose';
import type { Cache } from '../cache/index.js';
import { AppError, ErrorCode, badInput } from '../errors.js';
import { ProductModel, ReviewModel } from '../models/index.js';
import type { ProductDoc } from '../models/product.model.js';
import type { ReviewDoc } from '../models/review.model.js';
import type { DocumentLock } from './document-lock.js';
import { requireAdmin, type RequestScope } from './scope.js';
import { definedOnly, inputs, parseFirst, parseId, parseInput } from './validation.js';

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
}

/** Catalog reads and writes; deletes are soft so that past orders still show their products. */
export function createProductService(options: ProductServiceOptions) {
  const { documentLock } = options;
  const products = options.cache.entity<ProductDoc>('Product');
  const reviews = options.cache.entity<ReviewDoc>('Review');
  /** findOneAndUpdate on a live product, serialized per document where the server needs it. */
  const updateLive = (id: string, update: UpdateQuery<ProductDoc>): Promise<ProductDoc | null> =>
    documentLock.run([`products:${id}`], () =>
      ProductModel.findOneAndUpdate({ _id: id, deletedAt: null }, update, { returnDocument: 'after' }).lean<ProductDoc>().exec(),
    );

  return {
    /** A page of live products, newest first, with cursor `(createdAt, _id)`. */
    async page(scope: RequestScope, args: ProductPageArgs): Promise<ProductPage> {
      const first = parseFirst(args.first, 20);
      const filter: Record<string, unknown> = { deletedAt: null };
      if (args.category != null) filter.category = args.category;
      if (args.after != null) {
        const cursor = decodeCursor(args.after);
        filter.$or = [{ createdAt: { $lt: cursor.createdAt } }, { createdAt: cursor.createdAt, _id: { $lt: cursor.id } }];
      }
      const docs = await ProductModel.find(filter)
        .sort({ createdAt: -1, _id: -1 })
        .limit(first + 1)
        .lean<ProductDoc[]>()
        .exec();
      const nodes = docs.slice(0, first);
      for (const node of nodes) scope.loaders.product.prime(node._id.toHexString(), node);
      const edges = nodes.map((node) => ({ cursor: encodeCursor(node), node }));
      return { edges, pageInfo: { hasNextPage: docs.length > first, endCursor: edges.at(-1)?.cursor ?? null } };
    },

    /** A live product by id, or null (also for a deleted one). */
    async find(scope: RequestScope, id: string): Promise<ProductDoc | null> {
      const product = await scope.loaders.product.load(parseId(id).toHexString());
      return product && !product.deletedAt ? product : null;
    },

    async create(scope: RequestScope, args: CreateProductArgs): Promise<ProductDoc> {
      await requireAdmin(scope);
      const input = parseInput(inputs.createProduct, args, 'input');
      const product = (await ProductModel.create({ ...input, description: input.description ?? null })).toObject<ProductDoc>();
      await products.refresh([product]);
      scope.loaders.product.prime(product._id.toHexString(), product);
      return product;
    },

    async update(scope: RequestScope, id: string, args: UpdateProductArgs): Promise<ProductDoc> {
      const productId = parseId(id);
      await requireAdmin(scope);
      const changes = definedOnly(parseInput(inputs.updateProduct, args, 'input'));
      const product = await updateLive(productId.toHexString(), { $set: changes });
      if (!product) throw new AppError(ErrorCode.NotFound, 'No product has this id.', { field: 'id' });
      await products.invalidate([id]);
      scope.loaders.product.clear(id).prime(id, product);
      return product;
    },

    /** Soft-deletes the product and deletes its reviews; false when no live product has this id. */
    async delete(scope: RequestScope, id: string): Promise<boolean> {
      const productId = parseId(id);
      await requireAdmin(scope);
      const product = await updateLive(productId.toHexString(), { $set: { deletedAt: new Date() } });
      if (!product) return false;
      let reviewIds: string[] = [];
      try {
        reviewIds = (await ReviewModel.find({ product: productId }, { _id: 1 }).lean().exec()).map((r) => r._id.toHexString());
        // Exactly the reviews that get invalidated: one created meanwhile is neither deleted nor left cached.
        await ReviewModel.deleteMany({ _id: { $in: reviewIds } }).exec();
      } finally {
        await Promise.all([products.invalidate([id]), reviews.invalidate(reviewIds)]);
      }
      scope.loaders.product.clear(id).prime(id, product);
      return true;
    },

    /** Counts one view and returns the product with the new count. */
    async recordView(scope: RequestScope, id: string): Promise<ProductDoc> {
      const productId = parseId(id);
      const product = await updateLive(productId.toHexString(), { $inc: { viewCount: 1 } });
      if (!product) throw new AppError(ErrorCode.NotFound, 'No product has this id.', { field: 'id' });
      await products.invalidate([id]);
      scope.loaders.product.clear(id).prime(id, product);
      return product;
    },
  };
}

interface Cursor {
  createdAt: Date;
  id: Types.ObjectId;
}

function encodeCursor(product: ProductDoc): string {
  return Buffer.from(`${product.createdAt.getTime()}:${product._id.toHexString()}`).toString('base64url');
}

function decodeCursor(value: string): Cursor {
  const match = /^(\d{1,15}):([0-9a-f]{24})$/.exec(Buffer.from(value, 'base64url').toString());
  if (!match?.[1] || !match[2]) throw badInput('after', 'after is not a cursor this server gave out', 'MALFORMED_CURSOR');
  return { createdAt: new Date(Number(match[1])), id: new Types.ObjectId(match[2]) };
}
