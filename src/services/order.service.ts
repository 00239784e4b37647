import type { Types } from 'mongoose';
import type { Cache } from '../cache/index.js';
import { AppError, ErrorCode } from '../errors.js';
import type { Logger } from '../logger.js';
import { OrderModel, ProductModel } from '../models/index.js';
import type { OrderDoc, OrderItemDoc } from '../models/order.model.js';
import type { ProductDoc } from '../models/product.model.js';
import { tags, type TagInvalidator } from './cache-tags.js';
import type { DocumentLock } from './document-lock.js';
import { requireViewer, type RequestScope } from './scope.js';
import { inputs, parseId, parseInput } from './validation.js';

/** One line of placeOrder's input. */
export interface OrderItemArgs {
  productId: string;
  quantity: number;
}

/** Order placement. */
export type OrderService = ReturnType<typeof createOrderService>;

/** Options of {@link createOrderService}. */
export interface OrderServiceOptions {
  logger: Logger;
  documentLock: DocumentLock;
  cache: Cache;
  fieldCache: TagInvalidator;
}

interface Reservation {
  productId: Types.ObjectId;
  quantity: number;
}

/**
 * Orders without multi-document transactions (FerretDB has none; on a replica set they would
 * still cost a round trip each): stock is reserved item by item with conditional `$inc`s,
 * which can never drive it below zero, and a failure releases what was reserved before it.
 */
export function createOrderService(options: OrderServiceOptions) {
  const { logger, documentLock } = options;
  const products = options.cache.entity<ProductDoc>('Product');
  const orders = options.cache.entity<OrderDoc>('Order');

  /** Gives back every reservation, going on past failures (each logged), then rethrows the first. */
  async function release(reserved: readonly Reservation[]): Promise<void> {
    let failure: unknown;
    for (const { productId, quantity } of reserved) {
      try {
        await ProductModel.updateOne({ _id: productId }, { $inc: { stock: quantity } }).exec();
      } catch (error) {
        // Leave a trail an operator can replay: the product and how much stock to give back.
        logger.error({ err: error, productId: productId.toHexString(), quantity }, 'placeOrder: could not release reserved stock');
        failure ??= error;
      }
    }
    if (failure) throw failure;
  }

  return {
    /** Places the viewer's order whole, or changes nothing (BAD_USER_INPUT on lacking stock). */
    async place(scope: RequestScope, args: readonly OrderItemArgs[]): Promise<OrderDoc> {
      const viewer = await requireViewer(scope);
      const items = parseInput(inputs.orderItems, args, 'items');
      // One reservation per product (duplicates merged), in id order so that concurrent orders
      // meet their products in the same order.
      const quantities = new Map<string, number>();
      items.forEach((item, index) => {
        const id = parseId(item.productId, `items.${index}.productId`).toHexString();
        quantities.set(id, (quantities.get(id) ?? 0) + item.quantity);
      });
      const ids = [...quantities.keys()].sort();
      const products = await scope.loaders.product.loadMany(ids);
      const lines: OrderItemDoc[] = [];
      ids.forEach((id, index) => {
        const product = products[index];
        if (product instanceof Error) throw product;
        if (!product || product.deletedAt) {
          throw new AppError(ErrorCode.NotFound, `No product has id ${id}.`, { field: 'items', details: { productId: id } });
        }
        lines.push({ product: product._id, quantity: quantities.get(id) ?? 0, unitPriceCents: product.priceCents });
      });

      return documentLock.run(
        ids.map((id) => `products:${id}`),
        () => reserveAndRecord(scope, viewer._id, ids, lines),
      );
    },
  };

  async function reserveAndRecord(scope: RequestScope, userId: Types.ObjectId, ids: string[], lines: OrderItemDoc[]): Promise<OrderDoc> {
    const reserved: Reservation[] = [];
    try {
      for (const line of lines) {
        const result = await ProductModel.updateOne(
          { _id: line.product, deletedAt: null, stock: { $gte: line.quantity } },
          { $inc: { stock: -line.quantity } },
        ).exec();
        if (result.modifiedCount !== 1) {
          throw new AppError(ErrorCode.BadUserInput, `Not enough stock for product ${line.product.toHexString()}.`, {
            field: 'items',
            reason: 'INSUFFICIENT_STOCK',
            details: { productId: line.product.toHexString(), requested: line.quantity },
          });
        }
        reserved.push({ productId: line.product, quantity: line.quantity });
      }
      const totalCents = lines.reduce((sum, line) => sum + line.quantity * line.unitPriceCents, 0);
      const order = (await OrderModel.create({ user: userId, items: lines, totalCents })).toObject<OrderDoc>();
      await Promise.all([orders.refresh([order]), options.fieldCache.invalidate([tags.userOrders(userId.toHexString())])]);
      return order;
    } catch (error) {
      await release(reserved);
      throw error;
    } finally {
      // Whatever happened after the first reservation, those products changed in MongoDB
      // (reserved, maybe released: the versions moved on): their cached copies must go.
      await products.invalidate(reserved.map((r) => r.productId.toHexString()));
      for (const id of ids) scope.loaders.product.clear(id);
    }
  }
}
