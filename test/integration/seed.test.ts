import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_CATEGORIES, databaseIsEmpty, seedDemoData } from '../../src/dev/seed.js';
import { createLogger } from '../../src/logger.js';
import { ProductModel, UserModel } from '../../src/models/index.js';
import { ADMIN, startTestApp, type TestApp } from '../helpers/test-app.js';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ seed: false });
});
afterAll(() => t.stop());

describe('demo seed', () => {
  it('fills an empty database with the README catalog, and a rerun inserts nothing', async () => {
    expect(await databaseIsEmpty()).toBe(true);
    const logger = createLogger({ level: 'silent' });
    const first = await seedDemoData({ logger, admin: ADMIN });
    expect(first).toEqual({ users: 201, products: 500, reviews: 5_000, orders: 1_000 });
    expect(await databaseIsEmpty()).toBe(false);
    expect(new Set(await ProductModel.distinct('category'))).toEqual(new Set(DEMO_CATEGORIES));
    expect(await UserModel.countDocuments({ role: 'ADMIN' })).toBe(1);

    const second = await seedDemoData({ logger, admin: ADMIN });
    expect(second).toEqual({ users: 0, products: 0, reviews: 0, orders: 0 });
    expect(await ProductModel.countDocuments()).toBe(500);
  });

  it('lets the seeded admin log in and create products', async () => {
    const token = await t.login(ADMIN.email, ADMIN.password);
    const res = await t.gql(
      'mutation { createProduct(input: { name: "x", priceCents: 1, category: "tech", stock: 1 }) { id } }',
      {},
      token,
    );
    expect(res.body.errors).toBeUndefined();
  });
});
