import { Types } from 'mongoose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProductModel } from '../../src/models/index.js';
import { createDocumentLock } from '../../src/services/document-lock.js';
import { updateByIdIf } from '../../src/services/update-by-id.js';
import { startTestApp, type TestApp } from '../helpers/test-app.js';

// updateByIdIf decides a condition in one command (MongoDB) or by a read by `_id` and sift
// (FerretDB, lock enabled). Both forms run here against the same server and must agree on every
// condition the services use: what one form updates, the other updates; what one refuses, the
// other leaves untouched.

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ seed: { users: 2, products: 4, reviews: 0, orders: 0 } });
});
afterAll(async () => {
  await t.stop();
});

const product = (i: number): string => `5eed0001${i.toString(16).padStart(16, '0')}`;
const hold = new Types.ObjectId();

describe.each([
  { form: 'one conditional command', lock: createDocumentLock(false) },
  { form: 'a read by _id, tested here, then an update by _id', lock: createDocumentLock(true) },
])('updateByIdIf as $form', ({ lock }) => {
  const update = (id: string, conditions: Record<string, unknown>) =>
    lock.run([`products:${id}`], () => updateByIdIf(lock, ProductModel, id, conditions, { $inc: { stock: -1 }, $push: { holds: hold } }));
  const stock = async (id: string) => (await ProductModel.findById(id).lean().exec())?.stock;

  it('updates a document that meets the conditions and answers it after the update', async () => {
    const before = await stock(product(1));
    const after = await update(product(1), { deletedAt: null, stock: { $gte: 1 }, holds: { $ne: new Types.ObjectId() } });
    expect(after?.stock).toBe((before ?? 0) - 1);
    expect(await stock(product(1))).toBe((before ?? 0) - 1);
    await ProductModel.updateOne({ _id: product(1) }, { $pull: { holds: hold }, $inc: { stock: 1 } }).exec();
  });

  it('refuses, and leaves untouched, a document that fails any condition', async () => {
    const id = product(2);
    await ProductModel.updateOne({ _id: id }, { $set: { stock: 3, holds: [hold] } }).exec();
    expect(await update(id, { holds: { $ne: hold } })).toBeNull(); // an ObjectId in an array
    expect(await update(id, { stock: { $gte: 4 } })).toBeNull();
    await ProductModel.updateOne({ _id: id }, { $set: { deletedAt: new Date() } }).exec();
    expect(await update(id, { deletedAt: null })).toBeNull();
    expect(await stock(id)).toBe(3);
    await ProductModel.updateOne({ _id: id }, { $set: { deletedAt: null, holds: [] } }).exec();
  });

  it('answers null for an id no document has', async () => {
    expect(await update(new Types.ObjectId().toHexString(), { deletedAt: null })).toBeNull();
  });
});
