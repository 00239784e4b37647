// Where the peers read and write: MongoDB through the project's mongoose models (plain batched
// queries, no cache), or the whole data set held in process memory (the floor: no I/O at all).
import mongoose, { Types } from 'mongoose';
import { ProductModel, ReviewModel, UserModel } from '../../src/models/index.js';
import { createDocumentLock } from '../../src/services/document-lock.js';
import { updateByIdIf } from '../../src/services/update-by-id.js';
import type { ProductDoc } from '../../src/models/product.model.js';
import type { ReviewDoc } from '../../src/models/review.model.js';
import type { UserDoc } from '../../src/models/user.model.js';

/** The newest `first` reviews of a product. */
export interface ReviewsKey {
  productId: string;
  first: number;
}

/** The fields updateProduct may set. */
export type ProductChanges = Partial<Pick<ProductDoc, 'name' | 'description' | 'priceCents' | 'category' | 'stock'>>;

/**
 * What the peers' loaders and mutations need. Batch reads take many keys and answer in their
 * order (null where nothing has that id), as DataLoader's batch functions must.
 */
export interface PeerSource {
  productsByIds(ids: readonly string[]): Promise<(ProductDoc | null)[]>;
  usersByIds(ids: readonly string[]): Promise<(UserDoc | null)[]>;
  reviewsByProducts(keys: readonly ReviewsKey[]): Promise<ReviewDoc[][]>;
  /** The first `first` live products, newest first, and whether more follow. */
  productPage(first: number): Promise<{ products: ProductDoc[]; hasNextPage: boolean }>;
  /** The updated live product, or null when no live product has this id. */
  updateProduct(id: string, changes: ProductChanges): Promise<ProductDoc | null>;
  createReview(review: { productId: string; authorId: string; rating: number; body: string | null }): Promise<ReviewDoc>;
  /** The live product with its view counted, or null. */
  recordView(id: string): Promise<ProductDoc | null>;
}

/**
 * Plain MongoDB: one `$in` query per batch, the product's reviews sliced here (FerretDB has no
 * per-group limit); review counts are read off the product, as the project keeps them. Writes
 * are single-document updates through the models, as a plain server does. On FerretDB they
 * are serialized per document in this process, as the project does (its
 * services/document-lock.ts): FerretDB 1.x updates by read-modify-write, and a price update
 * racing a view's `$inc` on the same product would otherwise lose one of them. Their condition
 * (a live product) is decided as the project decides it (its services/update-by-id.ts), so that
 * FerretDB's missing pushdown slows neither side's writes more than the other's.
 */
export async function createMongoSource(): Promise<PeerSource> {
  const buildInfo = (await mongoose.connection.db?.admin().command({ buildInfo: 1 })) as { ferretdbVersion?: unknown } | undefined;
  const documentLock = createDocumentLock(typeof buildInfo?.ferretdbVersion === 'string');
  const productWrite = <T>(id: string, write: () => Promise<T>): Promise<T> => documentLock.run([`products:${id}`], write);
  const byIds = async <T extends { _id: Types.ObjectId }>(docs: T[], ids: readonly string[]): Promise<(T | null)[]> => {
    const byId = new Map(docs.map((doc) => [doc._id.toHexString(), doc]));
    return ids.map((id) => byId.get(id) ?? null);
  };
  return {
    async productsByIds(ids) {
      return byIds(await ProductModel.find({ _id: { $in: [...new Set(ids)] } }).lean<ProductDoc[]>(), ids);
    },
    async usersByIds(ids) {
      return byIds(await UserModel.find({ _id: { $in: [...new Set(ids)] } }).lean<UserDoc[]>(), ids);
    },
    async reviewsByProducts(keys) {
      const reviews = await ReviewModel.find({ product: { $in: [...new Set(keys.map((k) => k.productId))] } })
        .sort({ product: 1, createdAt: -1, _id: -1 })
        .lean<ReviewDoc[]>();
      const byProduct = groupBy(reviews, (review) => review.product.toHexString());
      return keys.map((key) => (byProduct.get(key.productId) ?? []).slice(0, key.first));
    },
    async productPage(first) {
      const products = await ProductModel.find({ deletedAt: null })
        .sort({ createdAt: -1, _id: -1 })
        .limit(first + 1)
        .lean<ProductDoc[]>();
      return { products: products.slice(0, first), hasNextPage: products.length > first };
    },
    updateProduct(id, changes) {
      return productWrite(id, () => updateByIdIf(documentLock, ProductModel, id, { deletedAt: null }, { $set: changes }));
    },
    async createReview({ productId, authorId, rating, body }) {
      const created = await ReviewModel.create({ product: productId, author: authorId, rating, body });
      // The product keeps its review count and rating sum, as the project's data model has it.
      await productWrite(productId, () =>
        ProductModel.updateOne({ _id: productId }, { $inc: { reviewCount: 1, ratingSum: rating } }).exec(),
      );
      return created.toObject<ReviewDoc>();
    },
    recordView(id) {
      return productWrite(id, () => updateByIdIf(documentLock, ProductModel, id, { deletedAt: null }, { $inc: { viewCount: 1 } }));
    },
  };
}

/**
 * Every product, user and review loaded into Maps at start (one query per collection); reads
 * and writes touch only these Maps afterwards. Writes replace the document object, so that a
 * value a request already holds never changes under it.
 */
export async function createMemorySource(): Promise<PeerSource> {
  const [productList, userList, reviewList] = await Promise.all([
    ProductModel.find().lean<ProductDoc[]>(),
    UserModel.find().lean<UserDoc[]>(),
    ReviewModel.find().sort({ createdAt: -1, _id: -1 }).lean<ReviewDoc[]>(),
  ]);
  const products = new Map(productList.map((p) => [p._id.toHexString(), p]));
  const users = new Map(userList.map((u) => [u._id.toHexString(), u]));
  // Newest first, as the reviews were loaded.
  const reviewsOf = groupBy(reviewList, (review) => review.product.toHexString());
  // The catalog order, newest first; products are never created or deleted here.
  const catalog = productList
    .filter((p) => !p.deletedAt)
    .sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime() || b._id.toHexString().localeCompare(a._id.toHexString()))
    .map((p) => p._id.toHexString());
  const live = (id: string): ProductDoc | null => {
    const product = products.get(id);
    return product && !product.deletedAt ? product : null;
  };
  const replace = (product: ProductDoc, changes: Partial<ProductDoc>): ProductDoc => {
    const updated = { ...product, ...changes, version: product.version + 1, updatedAt: new Date() };
    products.set(product._id.toHexString(), updated);
    return updated;
  };
  return {
    async productsByIds(ids) {
      return ids.map((id) => products.get(id) ?? null);
    },
    async usersByIds(ids) {
      return ids.map((id) => users.get(id) ?? null);
    },
    async reviewsByProducts(keys) {
      return keys.map((key) => (reviewsOf.get(key.productId) ?? []).slice(0, key.first));
    },
    async productPage(first) {
      const ids = catalog.slice(0, first + 1);
      return { products: ids.slice(0, first).map((id) => products.get(id) as ProductDoc), hasNextPage: ids.length > first };
    },
    async updateProduct(id, changes) {
      const product = live(id);
      return product && replace(product, changes);
    },
    async createReview({ productId, authorId, rating, body }) {
      const now = new Date();
      const review: ReviewDoc = {
        _id: new Types.ObjectId(),
        product: new Types.ObjectId(productId),
        author: new Types.ObjectId(authorId),
        rating,
        body,
        version: 1,
        createdAt: now,
        updatedAt: now,
      };
      reviewsOf.set(productId, [review, ...(reviewsOf.get(productId) ?? [])]);
      const product = products.get(productId);
      if (product) replace(product, { reviewCount: (product.reviewCount ?? 0) + 1, ratingSum: (product.ratingSum ?? 0) + rating });
      return review;
    },
    async recordView(id) {
      const product = live(id);
      return product && replace(product, { viewCount: product.viewCount + 1 });
    },
  };
}

function groupBy<T>(items: readonly T[], keyOf: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const key = keyOf(item);
    const group = groups.get(key);
    if (group) group.push(item);
    else groups.set(key, [item]);
  }
  return groups;
}
