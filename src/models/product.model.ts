import { Schema, model, type Types } from 'mongoose';
import { ENTITY_POLICIES } from '../generated/entities.js';
import { versionedPlugin } from './versioned.plugin.js';
import { WRITE_BEHIND_BOOKKEEPING, writeBehindPlugin } from './write-behind.plugin.js';

/**
 * The fields of a product that a write-behind `updateProduct` may set: `@entity(writeBehind:)` on
 * Product in schema/products.graphql, which says why not `stock` nor `category`. An update of
 * those is written synchronously whatever the policy. `viewCount` is a counter (`$inc`), never fenced.
 */
export const productWriteBehindFields = ENTITY_POLICIES.Product.writeBehind.set;
export type ProductWriteBehindField = (typeof productWriteBehindFields)[number];

/** A product as stored (lean), and as resolvers and the cache see it. */
export interface ProductDoc {
  _id: Types.ObjectId;
  name: string;
  description?: string | null;
  priceCents: number;
  category: string;
  stock: number;
  viewCount: number;
  /**
   * How many reviews the product has, and the sum of their ratings: kept on the product by
   * the review writes (see services/review-counts.ts), so that reading them is part of reading
   * the product. Absent on documents written before they existed, until the start-up backfill.
   */
  reviewCount?: number;
  ratingSum?: number;
  /** The newest review count changes applied here, `<review id>:<delta>` (see services/review-counts.ts). */
  reviewsCounted?: string[];
  /** Set by deleteProduct: hidden from queries, still shown in past orders. */
  deletedAt?: Date | null;
  /** The orders in progress that hold stock of it (see models/reservation.model.ts). */
  holds?: Types.ObjectId[];
  version: number;
  /** Write-behind bookkeeping (see models/write-behind.plugin.ts). */
  wbSeq?: string | null;
  wbAt?: Partial<Record<ProductWriteBehindField, number>> | null;
  /** Never loaded (PRODUCT_BOOKKEEPING). */
  wbApplied?: string[];
  createdAt: Date;
  updatedAt: Date;
}

const productSchema = new Schema<ProductDoc>(
  {
    name: { type: String, required: true, trim: true, maxlength: 200 },
    description: { type: String, default: null, maxlength: 10_000 },
    priceCents: { type: Number, required: true, min: 0 },
    category: { type: String, required: true, trim: true, maxlength: 50 },
    stock: { type: Number, required: true, min: 0 },
    viewCount: { type: Number, required: true, default: 0, min: 0 },
    reviewCount: { type: Number, default: 0, min: 0 },
    ratingSum: { type: Number, default: 0, min: 0 },
    reviewsCounted: { type: [String], default: undefined },
    deletedAt: { type: Date, default: null },
    holds: { type: [Schema.Types.ObjectId], default: undefined },
  },
  { timestamps: true, versionKey: false, autoIndex: false },
);
productSchema.plugin(versionedPlugin);
productSchema.plugin(writeBehindPlugin, { fields: productWriteBehindFields });
// The catalog pages: live products newest first, optionally within a category; _id breaks ties.
// (Not partial indexes on deletedAt: FerretDB refuses those.)
productSchema.index({ deletedAt: 1, createdAt: -1, _id: -1 });
productSchema.index({ category: 1, deletedAt: 1, createdAt: -1, _id: -1 });

export const ProductModel = model<ProductDoc>('Product', productSchema);

/**
 * What reads never show of a product, left out of loads and of cached copies: the review-count
 * journal, and the ids of the queued changes applied (write-behind's).
 */
export const PRODUCT_BOOKKEEPING = { reviewsCounted: 0, ...WRITE_BEHIND_BOOKKEEPING } as const;

/** `doc` as loads return it: without {@link PRODUCT_BOOKKEEPING} (a write answers the whole document). */
export function asLoaded<T extends ProductDoc | null>(doc: T): T {
  if (doc === null || (doc.reviewsCounted === undefined && doc.wbApplied === undefined)) return doc;
  const { reviewsCounted: _journal, wbApplied: _applied, ...loaded } = doc;
  return loaded as T;
}
