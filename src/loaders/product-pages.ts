import { Types } from 'mongoose';
import { badInput } from '../errors.js';
import { ProductModel } from '../models/index.js';
import type { ProductDoc } from '../models/product.model.js';

/** The arguments of one catalog page, validated. */
export interface ProductPageQuery {
  first: number;
  /** An opaque cursor this server gave out, or null for the first page. */
  after: string | null;
  category: string | null;
}

/** A page as the field cache stores it: the ids, hydrated through the entity cache. */
export interface ProductPageIds {
  ids: string[];
  hasNextPage: boolean;
}

/** One page of live products, newest first, `(createdAt, _id)` as the order; one MongoDB command. */
export async function findProductPage(query: ProductPageQuery): Promise<ProductPageIds> {
  const filter: Record<string, unknown> = { deletedAt: null };
  if (query.category !== null) filter.category = query.category;
  if (query.after !== null) {
    const cursor = decodeCursor(query.after);
    filter.$or = [{ createdAt: { $lt: cursor.createdAt } }, { createdAt: cursor.createdAt, _id: { $lt: cursor.id } }];
  }
  const docs = await ProductModel.find(filter, { _id: 1 })
    .sort({ createdAt: -1, _id: -1 })
    .limit(query.first + 1)
    .lean<{ _id: Types.ObjectId }[]>()
    .exec();
  return { ids: docs.slice(0, query.first).map((d) => d._id.toHexString()), hasNextPage: docs.length > query.first };
}

/** The cursor that points just after `product`. */
export function encodeCursor(product: ProductDoc): string {
  return Buffer.from(`${product.createdAt.getTime()}:${product._id.toHexString()}`).toString('base64url');
}

/** The position a cursor names; BAD_USER_INPUT for anything this server did not give out. */
export function decodeCursor(value: string): { createdAt: Date; id: Types.ObjectId } {
  const match = /^(\d{1,15}):([0-9a-f]{24})$/.exec(Buffer.from(value, 'base64url').toString());
  if (!match?.[1] || !match[2]) throw badInput('after', 'after: must be a cursor this server gave out', 'MALFORMED_CURSOR');
  return { createdAt: new Date(Number(match[1])), id: new Types.ObjectId(match[2]) };
}
