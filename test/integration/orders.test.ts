import mongoose from 'mongoose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Types } from 'mongoose';
import { OrderModel, ProductModel, ReservationModel } from '../../src/models/index.js';
import { recoverReservations } from '../../src/services/order.service.js';
import { createLogger } from '../../src/logger.js';
import { ADMIN, USER_PASSWORD, errorCodes, startTestApp, type TestApp } from '../helpers/test-app.js';

let t: TestApp;
let admin: string;
let customer: string;
beforeAll(async () => {
  t = await startTestApp();
  admin = await t.login(ADMIN.email, ADMIN.password);
  customer = await t.login('user1@example.com', USER_PASSWORD);
});
afterAll(() => t.stop());

const PLACE =
  'mutation($items: [OrderItemInput!]!) { placeOrder(items: $items) { id totalCents user { id } items { quantity unitPriceCents product { id stock } } } }';

async function newProduct(stock: number, priceCents = 1_000): Promise<string> {
  const res = await t.gql(
    'mutation($input: CreateProductInput!) { createProduct(input: $input) { id } }',
    { input: { name: 'Stocked', priceCents, category: 'tech', stock } },
    admin,
  );
  return res.body.data?.createProduct.id;
}

async function stockOf(id: string): Promise<number> {
  const doc = await ProductModel.findById(id).lean().exec();
  return doc?.stock ?? Number.NaN;
}

describe('placeOrder', () => {
  it('needs a session', async () => {
    const id = await newProduct(5);
    expect(errorCodes(await t.gql(PLACE, { items: [{ productId: id, quantity: 1 }] }))).toEqual(['UNAUTHENTICATED']);
    expect(await stockOf(id)).toBe(5);
  });

  it('places the order, prices it, and takes the stock (duplicate lines merged)', async () => {
    const a = await newProduct(10, 250);
    const b = await newProduct(3, 1_000);
    const res = await t.gql(
      PLACE,
      {
        items: [
          { productId: a, quantity: 2 },
          { productId: b, quantity: 3 },
          { productId: a, quantity: 1 },
        ],
      },
      customer,
    );
    expect(res.body.errors).toBeUndefined();
    const order = res.body.data?.placeOrder;
    expect(order.totalCents).toBe(3 * 250 + 3 * 1_000);
    expect(order.user.id).toBe('5eed00000000000000000001');
    expect(await stockOf(a)).toBe(7);
    expect(await stockOf(b)).toBe(0);
    const mine = await t.gql('{ viewer { orders(first: 1) { id } } }', {}, customer);
    expect(mine.body.data?.viewer.orders[0].id).toBe(order.id);
  });

  it('fails whole when any item lacks stock, leaving every stock as it was', async () => {
    const plenty = await newProduct(50);
    const scarce = await newProduct(1);
    const later = await newProduct(50);
    const ordersBefore = await mongoose.connection.db?.collection('orders').countDocuments();
    const res = await t.gql(
      PLACE,
      {
        items: [
          { productId: plenty, quantity: 5 },
          { productId: scarce, quantity: 2 },
          { productId: later, quantity: 5 },
        ],
      },
      customer,
    );
    expect(errorCodes(res)).toEqual(['BAD_USER_INPUT']);
    expect(res.body.errors?.[0]?.extensions).toMatchObject({ reason: 'INSUFFICIENT_STOCK', productId: scarce });
    expect([await stockOf(plenty), await stockOf(scarce), await stockOf(later)]).toEqual([50, 1, 50]);
    expect(await mongoose.connection.db?.collection('orders').countDocuments()).toBe(ordersBefore);
  });

  it('never sells the last unit twice under concurrent orders', async () => {
    const id = await newProduct(3);
    const tokens = await Promise.all([2, 3, 4, 5, 6, 7].map((n) => t.login(`user${n}@example.com`, USER_PASSWORD)));
    const results = await Promise.all(tokens.map((token) => t.gql(PLACE, { items: [{ productId: id, quantity: 1 }] }, token)));
    const placed = results.filter((r) => !r.body.errors);
    expect(placed).toHaveLength(3);
    for (const r of results.filter((x) => x.body.errors)) expect(r.body.errors?.[0]?.extensions?.reason).toBe('INSUFFICIENT_STOCK');
    expect(await stockOf(id)).toBe(0);
  });

  it.each([
    [[], 'items', 'items: must not be empty'],
    [[{ productId: '5eed00010000000000000001', quantity: 0 }], 'items.0.quantity', 'items.0.quantity: must be at least 1'],
    [[{ productId: '5eed00010000000000000001', quantity: -2 }], 'items.0.quantity', 'items.0.quantity: must be at least 1'],
    // A limit given without a message of its own: worded alike, not zod's "Too big: expected number to be <=1000".
    [[{ productId: '5eed00010000000000000001', quantity: 1_001 }], 'items.0.quantity', 'items.0.quantity: must be at most 1000'],
    [
      Array.from({ length: 51 }, () => ({ productId: '5eed00010000000000000001', quantity: 1 })),
      'items',
      'items: must have at most 50 items',
    ],
    [[{ productId: 'nope', quantity: 1 }], 'items.0.productId', 'items.0.productId: must be an id of 24 hex digits (got "nope")'],
  ])('rejects items %j', async (items, field, message) => {
    const res = await t.gql(PLACE, { items }, customer);
    expect(errorCodes(res)).toEqual(['BAD_USER_INPUT']);
    expect(res.body.errors?.[0]?.extensions?.field).toBe(field);
    expect(res.body.errors?.[0]?.message).toBe(message);
  });

  it('is NOT_FOUND for an unknown product, taking no stock from the others', async () => {
    const id = await newProduct(4);
    const res = await t.gql(
      PLACE,
      {
        items: [
          { productId: id, quantity: 1 },
          { productId: 'aaaaaaaaaaaaaaaaaaaaaaaa', quantity: 1 },
        ],
      },
      customer,
    );
    expect(errorCodes(res)).toEqual(['NOT_FOUND']);
    expect(await stockOf(id)).toBe(4);
  });
});

describe('placeOrder interrupted half-way (the server died, MongoDB went away)', () => {
  const STOCK = 'query($id: ID!) { product(id: $id) { stock } }';
  const recover = () =>
    recoverReservations({
      logger: createLogger({ level: 'silent' }),
      documentLock: t.app.documentLock,
      cache: t.app.cache,
      olderThanMs: 0,
    });
  /** The state placeOrder leaves when it stops after reserving `quantity` of `productId`. */
  async function reserved(productId: string, quantity: number): Promise<Types.ObjectId> {
    const orderId = new Types.ObjectId();
    const userId = new Types.ObjectId();
    await ReservationModel.create({ _id: orderId, user: userId, lines: [{ product: productId, quantity }] });
    const result = await ProductModel.updateOne(
      { _id: productId, stock: { $gte: quantity }, holds: { $ne: orderId } },
      { $inc: { stock: -quantity }, $push: { holds: orderId } },
    ).exec();
    expect(result.modifiedCount).toBe(1);
    return orderId;
  }

  it('after placing no order: recovery gives the stock back, once', async () => {
    const id = await newProduct(5);
    await t.gql(STOCK, { id }); // cached
    const orderId = await reserved(id, 2);
    expect(await stockOf(id)).toBe(3);
    expect(await recover()).toBe(1);
    expect(await stockOf(id)).toBe(5);
    expect((await t.gql(STOCK, { id })).body.data?.product.stock).toBe(5);
    expect(await ReservationModel.exists({ _id: orderId })).toBeNull();
    expect((await ProductModel.findById(id).lean().exec())?.holds ?? []).toHaveLength(0);
    expect(await recover()).toBe(0);
    expect(await stockOf(id)).toBe(5);
  });

  it('after inserting the order: recovery keeps the stock taken and drops the hold', async () => {
    const id = await newProduct(5);
    const orderId = await reserved(id, 2);
    await OrderModel.create({
      _id: orderId,
      user: new Types.ObjectId(),
      items: [{ product: id, quantity: 2, unitPriceCents: 1_000 }],
      totalCents: 2_000,
    });
    expect(await recover()).toBe(1);
    expect(await stockOf(id)).toBe(3);
    expect((await ProductModel.findById(id).lean().exec())?.holds ?? []).toHaveLength(0);
    expect(await ReservationModel.exists({ _id: orderId })).toBeNull();
  });

  it('a placeOrder that completes, or fails, leaves no journal and no hold behind', async () => {
    const id = await newProduct(5);
    const res = await t.gql(PLACE, { items: [{ productId: id, quantity: 1 }] }, customer);
    expect(res.body.errors).toBeUndefined();
    expect(await ReservationModel.countDocuments().exec()).toBe(0);
    expect((await ProductModel.findById(id).lean().exec())?.holds ?? []).toHaveLength(0);
    const failed = await t.gql(PLACE, { items: [{ productId: id, quantity: 99 }] }, customer);
    expect(errorCodes(failed)).toEqual(['BAD_USER_INPUT']);
    expect(await ReservationModel.countDocuments().exec()).toBe(0);
    expect(await stockOf(id)).toBe(4);
  });
});
