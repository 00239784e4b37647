import { Types } from 'mongoose';
import type { Cache, EntityCache } from 'graphql-lease-cache';
import { AppError, ErrorCode } from '../errors.js';
import type { Logger } from '../logger.js';
import { OrderModel, ProductModel, ReservationModel } from '../models/index.js';
import type { OrderDoc, OrderItemDoc } from '../models/order.model.js';
import type { ProductDoc } from '../models/product.model.js';
import type { ReservationDoc, ReservationLineDoc } from '../models/reservation.model.js';
import { tags, type TagInvalidator } from '../caching/tags.js';
import type { DocumentLock } from './document-lock.js';
import { updateByIdIf } from './update-by-id.js';
import { afterUncertainWrite, databaseUnavailable, isMongoUnavailable, outcomeUnknown } from './mongo-errors.js';
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
  /** See ServicesOptions.uncertainWriteHoldMs; in milliseconds. */
  uncertainWriteHoldMs: number;
}

/** How old a reservation journal must be before recovery resolves it (a placeOrder in progress is far quicker). */
export const RESERVATION_RECOVERY_AGE_MS = 5 * 60_000;

/**
 * Orders without multi-document transactions (FerretDB has none; on a replica set they would
 * still cost a round trip each). A journal of the order is written first (see
 * models/reservation.model.ts); stock is reserved item by item with conditional `$inc`s that
 * can never drive it below zero, each recording the order in the product's `holds` (so that it
 * is done at most once, and can be undone exactly); then the order is inserted with the
 * journal's id, and the journal is settled. A failure gives back what was reserved; a crash
 * anywhere leaves a journal that {@link recoverReservations} resolves. So does a MongoDB that
 * stops answering: a write it did not answer may still be applied after any check made at once.
 */
export function createOrderService(options: OrderServiceOptions) {
  const deps: OrderDeps = {
    ...options,
    products: options.cache.entity<ProductDoc>('Product'),
    orders: options.cache.entity<OrderDoc>('Order'),
    hold: { holdMs: options.uncertainWriteHoldMs },
  };

  return {
    /** Places the viewer's order whole, or changes nothing (BAD_USER_INPUT on lacking stock). */
    async place(scope: RequestScope, args: readonly OrderItemArgs[]): Promise<OrderDoc> {
      const viewer = await requireViewer(scope);
      const { ids, lines } = await orderLines(scope, args);
      return deps.documentLock.run(
        ids.map((id) => `products:${id}`),
        () =>
          reserveAndRecord(deps, scope, {
            orderId: new Types.ObjectId(),
            userId: viewer._id,
            ids,
            lines,
            step: 'journal',
          }),
      );
    },
  };
}

/** What order placement shares: the service's options and the caches it refreshes or invalidates. */
interface OrderDeps extends OrderServiceOptions {
  products: EntityCache<ProductDoc>;
  orders: EntityCache<OrderDoc>;
  /** How long what an unanswered write touched bypasses the cache (uncertainWriteHoldMs). */
  hold: { holdMs: number };
}

/**
 * The lines of an order from placeOrder's input: one per product (duplicates merged), in id
 * order so that concurrent orders meet their products in the same order, priced now.
 * NOT_FOUND for a missing or deleted product.
 */
async function orderLines(scope: RequestScope, args: readonly OrderItemArgs[]): Promise<{ ids: string[]; lines: OrderItemDoc[] }> {
  const items = parseInput(inputs.orderItems, args, 'items');
  // One reservation per product (duplicates merged), in id order so that concurrent orders
  // meet their products in the same order.
  const quantities = new Map<string, number>();
  items.forEach((item, index) => {
    const id = parseId(item.productId, `items.${index}.productId`).toHexString();
    quantities.set(id, (quantities.get(id) ?? 0) + item.quantity);
  });
  const ids = [...quantities.keys()].sort();
  const loaded = await scope.loaders.product.loadMany(ids);
  const lines: OrderItemDoc[] = [];
  ids.forEach((id, index) => {
    const product = loaded[index];
    if (product instanceof Error) throw product;
    if (!product || product.deletedAt) {
      throw new AppError(ErrorCode.NotFound, `No product has id ${id}.`, { field: 'items', details: { productId: id } });
    }
    lines.push({ product: product._id, quantity: quantities.get(id) ?? 0, unitPriceCents: product.priceCents });
  });
  return { ids, lines };
}

/** One placeOrder call under way. */
interface Placement {
  orderId: Types.ObjectId;
  userId: Types.ObjectId;
  /** The products' ids, in lock order. */
  ids: string[];
  lines: OrderItemDoc[];
  /** How far it got: which writes may have been made when a step fails. */
  step: 'journal' | 'reserve' | 'insert';
}

/** Writes the journal, reserves the stock and inserts the order (the caller holds the products' locks). */
async function reserveAndRecord(deps: OrderDeps, scope: RequestScope, placement: Placement): Promise<OrderDoc> {
  const { orderId, userId, ids, lines } = placement;
  const { orders, hold } = deps;
  const userOrders = tags.userOrders(userId.toHexString());
  let unanswered = false;
  try {
    await ReservationModel.create({ _id: orderId, user: userId, lines: lines.map(({ product, quantity }) => ({ product, quantity })) });
    placement.step = 'reserve';
    await reserveStock(deps.documentLock, orderId, lines);
    const totalCents = lines.reduce((sum, line) => sum + line.quantity * line.unitPriceCents, 0);
    placement.step = 'insert';
    const order = await afterUncertainWrite(
      () => Promise.all([orders.invalidate([orderId.toHexString()], hold), deps.fieldCache.invalidate([userOrders], hold)]),
      async () => (await OrderModel.create({ _id: orderId, user: userId, items: lines, totalCents })).toObject<OrderDoc>(),
    );
    await placed(deps, placement, order);
    return order;
  } catch (error) {
    if (isMongoUnavailable(error)) {
      unanswered = true;
      return await afterNoAnswer(deps, placement, error);
    }
    // MongoDB answered (or the stock was lacking): give the stock back now. An insert that
    // failed on the way back may have been written: ask before giving back. A failure here
    // leaves the journal to recovery (logged), and does not change the outcome the client gets.
    const settle = async () =>
      settleReservation(orderId, lines, placement.step === 'insert' && (await OrderModel.exists({ _id: orderId }).exec()) !== null);
    await settle().catch((error: unknown) => notSettled(deps, placement, error));
    throw error;
  } finally {
    // Those products may have changed in MongoDB (reserved, maybe released: versions moved on);
    // after a write MongoDB did not answer, they may still change: held past the deadline.
    if (placement.step !== 'journal') await deps.products.invalidate(ids, unanswered ? hold : {});
    for (const id of ids) scope.loaders.product.clear(id);
  }
}

/** Reserves each line's stock with a conditional `$inc` that records the order in the product's `holds`; INSUFFICIENT_STOCK otherwise. */
async function reserveStock(documentLock: DocumentLock, orderId: Types.ObjectId, lines: readonly OrderItemDoc[]): Promise<void> {
  for (const line of lines) {
    const reserved = await updateByIdIf(
      documentLock,
      ProductModel,
      line.product,
      { deletedAt: null, stock: { $gte: line.quantity }, holds: { $ne: orderId } },
      { $inc: { stock: -line.quantity }, $push: { holds: orderId } },
      { projection: { _id: 1 } },
    );
    if (!reserved) {
      throw new AppError(ErrorCode.BadUserInput, `Not enough stock for product ${line.product.toHexString()}.`, {
        field: 'items',
        reason: 'INSUFFICIENT_STOCK',
        details: { productId: line.product.toHexString(), requested: line.quantity },
      });
    }
  }
}

/** Placed: the products drop their holds; the order and the viewer's order list are cached anew. */
async function placed(deps: OrderDeps, placement: Placement, order: OrderDoc): Promise<void> {
  await settleReservation(placement.orderId, placement.lines, true).catch((error: unknown) => notSettled(deps, placement, error));
  await Promise.all([deps.orders.refresh([order]), deps.fieldCache.invalidate([tags.userOrders(placement.userId.toHexString())])]);
}

/**
 * MongoDB did not answer (or could not be reached) at `step`. Its write may still be applied
 * after anything checked now (a request sitting in a stalled server's socket), so giving the
 * stock back now could race a late reservation or a late order: the journal is left to
 * {@link recoverReservations}, which settles it once it is {@link RESERVATION_RECOVERY_AGE_MS}
 * old. Before the order insert, the order was certainly not placed; after it, it was if the
 * order can be read back, and the outcome is unknown if not.
 */
async function afterNoAnswer(deps: OrderDeps, placement: Placement, error: unknown): Promise<OrderDoc> {
  const { orderId, step } = placement;
  deps.logger.warn(
    { err: error, orderId: orderId.toHexString(), step },
    'placeOrder: MongoDB did not answer; recovery settles the journal',
  );
  if (step !== 'insert') {
    throw databaseUnavailable(
      error,
      'The database is unavailable; the order was not placed (stock it held is given back within minutes). Try again shortly.',
    );
  }
  const order = await OrderModel.findById(orderId)
    .lean<OrderDoc>()
    .exec()
    .catch(() => null);
  if (!order) {
    throw outcomeUnknown(
      error,
      'The database did not answer in time; the order may or may not have been placed (it is settled within minutes). Look at your orders before placing it again.',
    );
  }
  await placed(deps, placement, order);
  return order;
}

/** Logs a reservation left unsettled: recovery finishes it. */
function notSettled(deps: OrderDeps, placement: Placement, error: unknown): void {
  deps.logger.error(
    { err: error, orderId: placement.orderId.toHexString() },
    'placeOrder: reservation not settled; recovery will finish it',
  );
}

/**
 * Settles a reservation journal: where the order was placed, the products drop the order from
 * `holds`; where it was not, they also get its stock back. Each step is conditional on the
 * hold, so settling twice (or a reservation that never happened) changes nothing. Deletes the
 * journal last.
 */
async function settleReservation(orderId: Types.ObjectId, lines: readonly ReservationLineDoc[], placed: boolean): Promise<void> {
  for (const { product, quantity } of lines) {
    await ProductModel.updateOne(
      { _id: product, holds: orderId },
      placed ? { $pull: { holds: orderId } } : { $inc: { stock: quantity }, $pull: { holds: orderId } },
    ).exec();
  }
  await ReservationModel.deleteOne({ _id: orderId }).exec();
}

/** Options of {@link recoverReservations}. */
export interface RecoverReservationsOptions {
  logger: Logger;
  documentLock: DocumentLock;
  cache: Cache;
  /** Journals at least this old are resolved; default {@link RESERVATION_RECOVERY_AGE_MS}. */
  olderThanMs?: number;
}

/**
 * Resolves the journals of placeOrder calls that died half-way (server killed, MongoDB lost
 * mid-call): an order with the journal's id exists, so it was placed and only the holds go;
 * else the stock it took is given back. Runs at start-up and then every minute. Returns how
 * many journals it resolved.
 */
export async function recoverReservations(options: RecoverReservationsOptions): Promise<number> {
  const cutoff = new Date(Date.now() - (options.olderThanMs ?? RESERVATION_RECOVERY_AGE_MS));
  const journals = await ReservationModel.find({ createdAt: { $lte: cutoff } })
    .limit(100)
    .lean<ReservationDoc[]>()
    .exec();
  const products = options.cache.entity<ProductDoc>('Product');
  for (const journal of journals) {
    const ids = journal.lines.map((line) => line.product.toHexString());
    try {
      await options.documentLock.run(
        ids.map((id) => `products:${id}`),
        async () => {
          const placed = (await OrderModel.exists({ _id: journal._id }).exec()) !== null;
          await settleReservation(journal._id, journal.lines, placed);
          options.logger.warn(
            { orderId: journal._id.toHexString(), placed },
            placed ? 'recovered a placed order: dropped its stock holds' : 'recovered an unfinished order: gave its stock back',
          );
        },
      );
    } finally {
      // Also when settling failed half-way (MongoDB lost): a step may have been applied.
      await products.invalidate(ids);
    }
  }
  return journals.length;
}
