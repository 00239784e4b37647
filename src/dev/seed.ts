import { Types } from 'mongoose';
import type { Logger } from '../logger.js';
import { OrderModel, ProductModel, ReviewModel, UserModel } from '../models/index.js';
import { isDuplicateKey } from '../services/mongo-errors.js';
import { hashPassword } from '../services/password.js';

/** How much demo data to make; the defaults are the demo catalog of docs/api.md. */
export interface SeedOptions {
  logger: Logger;
  admin: { email: string; password: string };
  /** Default 200. */
  users?: number;
  /** Default 500. */
  products?: number;
  /** Default 5000. */
  reviews?: number;
  /** Default 1000. */
  orders?: number;
  /** Password of every demo user (user1@example.com …); default `password123`. */
  userPassword?: string;
}

/** What a seed run inserted (0s when everything was there already). */
export interface SeedReport {
  users: number;
  products: number;
  reviews: number;
  orders: number;
}

/** The demo catalog's categories. */
export const DEMO_CATEGORIES = ['books', 'games', 'garden', 'kitchen', 'music', 'outdoors', 'tech', 'toys'] as const;

const ADJECTIVES = ['Classic', 'Compact', 'Deluxe', 'Eco', 'Handmade', 'Lightweight', 'Pro', 'Rugged', 'Smart', 'Vintage'];
const NOUNS = [
  'Backpack',
  'Blender',
  'Board Game',
  'Camera',
  'Guitar',
  'Kettle',
  'Lamp',
  'Notebook',
  'Planter',
  'Speaker',
  'Tent',
  'Yo-yo',
];
const FIRST = ['Ada', 'Alan', 'Barbara', 'Dennis', 'Edsger', 'Frances', 'Grace', 'Ken', 'Linus', 'Margaret', 'Radia', 'Tim'];
const LAST = ['Hopper', 'Knuth', 'Lamport', 'Liskov', 'Lovelace', 'Ritchie', 'Thompson', 'Torvalds', 'Turing', 'Wirth'];
const BODIES = ['Does what it says.', 'Great value.', 'Broke after a week.', 'Would buy again.', 'Solid build, slow shipping.', null];

/** Seeded data is dated back from this instant, so that reruns produce identical documents. */
const EPOCH = Date.UTC(2026, 0, 1);
const DAY_MS = 86_400_000;

/**
 * Inserts the demo data. Idempotent: every document has a deterministic `_id` (and a seeded
 * random generator picks every value), so a rerun inserts only what is missing and changes
 * nothing that exists. Demo users share one password hash, computed once (scrypt is slow on
 * purpose, and these are demo accounts).
 */
export async function seedDemoData(options: SeedOptions): Promise<SeedReport> {
  const [adminHash, userHash] = await Promise.all([
    hashPassword(options.admin.password),
    hashPassword(options.userPassword ?? 'password123'),
  ]);
  const data = generateDemoData({ ...options, adminEmail: options.admin.email, adminHash, userHash });
  const report: SeedReport = {
    users: await insertMissing(UserModel.collection, data.users),
    products: await insertMissing(ProductModel.collection, data.products),
    reviews: await insertMissing(ReviewModel.collection, data.reviews),
    orders: await insertMissing(OrderModel.collection, data.orders),
  };
  options.logger.info({ inserted: report, admin: options.admin.email }, 'demo data seeded');
  return report;
}

/** What {@link generateDemoData} needs: the counts, and the admin's email and password hashes. */
export interface DemoDataOptions {
  users?: number;
  products?: number;
  reviews?: number;
  orders?: number;
  adminEmail: string;
  adminHash: string;
  userHash: string;
}

/** The demo documents, exactly as stored (also used by the benchmarks as realistic values). */
export function generateDemoData(options: DemoDataOptions) {
  const counts: DemoCounts = {
    users: options.users ?? 200,
    products: options.products ?? 500,
    reviews: options.reviews ?? 5_000,
    orders: options.orders ?? 1_000,
  };
  const random = mulberry32(20_260_101);
  const gen: DemoRandom = {
    random,
    pick: <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)] as T,
    at: (daysBack: number): Date => new Date(EPOCH - Math.floor(daysBack * DAY_MS)),
  };
  // In this order: each draws from the one seeded sequence.
  const users = demoUsers(gen, counts.users, options);
  const products = demoProducts(gen, counts.products);
  const customerIds = users.slice(1).map((u) => u._id);
  const reviews = demoReviews(gen, counts.reviews, products, customerIds);
  const orders = demoOrders(gen, counts.orders, products, customerIds);
  return { users, products, reviews, orders };
}

/** How many documents of each collection {@link generateDemoData} makes. */
interface DemoCounts {
  users: number;
  products: number;
  reviews: number;
  orders: number;
}

/** The seeded draws the demo documents are made of. */
interface DemoRandom {
  /** The next number in [0, 1) of the seeded sequence. */
  random: () => number;
  pick: <T>(list: readonly T[]) => T;
  /** The date `daysBack` days before the demo's epoch. */
  at: (daysBack: number) => Date;
}

/** The admin, then `count` customers. */
function demoUsers({ pick, at }: DemoRandom, count: number, options: DemoDataOptions) {
  const { adminHash, userHash } = options;
  const users = [
    {
      _id: seedId(0, 0),
      name: 'Demo Admin',
      email: options.adminEmail,
      passwordHash: adminHash,
      role: 'ADMIN',
      version: 1,
      createdAt: at(400),
      updatedAt: at(400),
    },
    ...range(count).map((i) => {
      const createdAt = at(365 - (i * 365) / count);
      return {
        _id: seedId(0, i + 1),
        name: `${pick(FIRST)} ${pick(LAST)}`,
        email: `user${i + 1}@example.com`,
        passwordHash: userHash,
        role: 'CUSTOMER',
        version: 1,
        createdAt,
        updatedAt: createdAt,
      };
    }),
  ];
  return users;
}

/** `count` products, with no reviews counted yet ({@link demoReviews} counts them). */
function demoProducts({ random, pick, at }: DemoRandom, count: number) {
  const products = range(count).map((i) => {
    const createdAt = at(300 - (i * 300) / count);
    const name = `${pick(ADJECTIVES)} ${pick(NOUNS)} ${i + 1}`;
    return {
      _id: seedId(1, i),
      name,
      description: `The ${name.toLowerCase()}: a demo product.`,
      priceCents: 199 + Math.floor(random() * 20_000),
      category: DEMO_CATEGORIES[i % DEMO_CATEGORIES.length] as string,
      stock: Math.floor(random() * 200),
      viewCount: 0,
      // Set from the reviews below (kept on the product: services/review-counts.ts).
      reviewCount: 0,
      ratingSum: 0,
      deletedAt: null,
      version: 1,
      createdAt,
      updatedAt: createdAt,
    };
  });
  return products;
}

/** `count` reviews of `products` by `customerIds`, counted on their products. */
function demoReviews(
  { random, pick, at }: DemoRandom,
  count: number,
  products: ReturnType<typeof demoProducts>,
  customerIds: readonly Types.ObjectId[],
) {
  const reviews = range(count).map((i) => {
    const createdAt = at(200 - (i * 200) / count);
    const product = pick(products);
    const author = pick(customerIds);
    const rating = 1 + Math.floor(random() * 5);
    product.reviewCount += 1;
    product.ratingSum += rating;
    return {
      _id: seedId(2, i),
      product: product._id,
      author,
      rating,
      body: pick(BODIES),
      version: 1,
      createdAt,
      updatedAt: createdAt,
    };
  });
  return reviews;
}

/** `count` orders of 1 to 3 lines of `products` by `customerIds`. */
function demoOrders(
  { random, pick, at }: DemoRandom,
  count: number,
  products: ReturnType<typeof demoProducts>,
  customerIds: readonly Types.ObjectId[],
) {
  const orders = range(count).map((i) => {
    const createdAt = at(150 - (i * 150) / count);
    const items = range(1 + Math.floor(random() * 3)).map(() => {
      const product = pick(products);
      return { product: product._id, quantity: 1 + Math.floor(random() * 3), unitPriceCents: product.priceCents };
    });
    return {
      _id: seedId(3, i),
      user: pick(customerIds),
      items,
      totalCents: items.reduce((sum, item) => sum + item.quantity * item.unitPriceCents, 0),
      version: 1,
      createdAt,
      updatedAt: createdAt,
    };
  });

  return orders;
}

/** True when the database has no users and no products (a fresh database to seed). */
export async function databaseIsEmpty(): Promise<boolean> {
  const [users, products] = await Promise.all([UserModel.estimatedDocumentCount(), ProductModel.estimatedDocumentCount()]);
  return users === 0 && products === 0;
}

interface InsertTarget {
  insertMany(docs: object[], options: { ordered: false }): Promise<{ insertedCount: number }>;
}

/** Inserts the documents, skipping those whose `_id` (or unique email) exists; returns how many went in. */
async function insertMissing(collection: InsertTarget, docs: object[]): Promise<number> {
  if (docs.length === 0) return 0;
  try {
    return (await collection.insertMany(docs, { ordered: false })).insertedCount;
  } catch (error) {
    const writeErrors = (error as { writeErrors?: unknown[] }).writeErrors;
    const allDuplicates =
      Array.isArray(writeErrors) && writeErrors.every((e) => isDuplicateKey(e) || isDuplicateKey((e as { err?: unknown }).err));
    if (!isDuplicateKey(error) && !allDuplicates) throw error;
    return (
      (error as { insertedCount?: number; result?: { insertedCount?: number } }).insertedCount ??
      (error as { result?: { insertedCount?: number } }).result?.insertedCount ??
      0
    );
  }
}

/** A fixed ObjectId per (collection, index): `5eed` + collection + index. */
function seedId(collection: number, index: number): Types.ObjectId {
  return new Types.ObjectId(`5eed${collection.toString(16).padStart(4, '0')}${index.toString(16).padStart(16, '0')}`);
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

/** A small seeded PRNG (mulberry32): the same sequence on every run. */
function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}
