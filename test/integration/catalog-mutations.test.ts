import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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

const CREATE =
  'mutation($input: CreateProductInput!) { createProduct(input: $input) { id name category priceCents stock viewCount description } }';
const UPDATE =
  'mutation($id: ID!, $input: UpdateProductInput!) { updateProduct(id: $id, input: $input) { id name priceCents stock updatedAt } }';
const product = { name: 'Test Kettle', priceCents: 2_500, category: 'kitchen', stock: 5 };

describe('product mutations', () => {
  it('need an ADMIN session', async () => {
    expect(errorCodes(await t.gql(CREATE, { input: product }))).toEqual(['UNAUTHENTICATED']);
    expect(errorCodes(await t.gql(CREATE, { input: product }, customer))).toEqual(['FORBIDDEN']);
    const id = '5eed00010000000000000001';
    expect(errorCodes(await t.gql(UPDATE, { id, input: { stock: 1 } }, customer))).toEqual(['FORBIDDEN']);
    expect(errorCodes(await t.gql(`mutation { deleteProduct(id: "${id}") }`, {}, customer))).toEqual(['FORBIDDEN']);
  });

  it('createProduct puts the product first in its category', async () => {
    const res = await t.gql(CREATE, { input: product }, admin);
    expect(res.body.errors).toBeUndefined();
    const created = res.body.data?.createProduct;
    expect(created).toMatchObject({ ...product, viewCount: 0, description: null });
    const page = await t.gql('{ products(first: 1, category: "kitchen") { edges { node { id } } } }');
    expect(page.body.data?.products.edges[0].node.id).toBe(created.id);
  });

  it.each([
    [{ ...product, priceCents: -1 }, 'input.priceCents', 'must not be negative'],
    [{ ...product, stock: -3 }, 'input.stock', 'must not be negative'],
    [{ ...product, name: '  ' }, 'input.name', 'must not be empty'],
    // Limits without a message of their own are worded alike (not zod's "Too big: expected string to have <=50 characters").
    [{ ...product, category: 'x'.repeat(51) }, 'input.category', 'must have at most 50 characters'],
    [{ ...product, name: 'x'.repeat(201) }, 'input.name', 'must have at most 200 characters'],
  ])('createProduct rejects %o', async (input, field, message) => {
    const res = await t.gql(CREATE, { input }, admin);
    expect(errorCodes(res)).toEqual(['BAD_USER_INPUT']);
    expect(res.body.errors?.[0]?.extensions?.field).toBe(field);
    expect(res.body.errors?.[0]?.message).toBe(`${field}: ${message}`);
  });

  it('updateProduct changes the fields given and no others', async () => {
    const id = (await t.gql(CREATE, { input: product }, admin)).body.data?.createProduct.id;
    const res = await t.gql(UPDATE, { id, input: { priceCents: 1_999 } }, admin);
    expect(res.body.data?.updateProduct).toMatchObject({ id, name: 'Test Kettle', priceCents: 1_999, stock: 5 });
    expect(errorCodes(await t.gql(UPDATE, { id, input: { stock: -1 } }, admin))).toEqual(['BAD_USER_INPUT']);
    expect((await t.gql(UPDATE, { id, input: { name: null } }, admin)).body.errors?.[0]?.message).toBe('input.name: must not be null');
    expect((await t.gql(UPDATE, { id, input: {} }, admin)).body.errors?.[0]?.message).toBe('input: must have a field to change');
    expect(errorCodes(await t.gql(UPDATE, { id: 'aaaaaaaaaaaaaaaaaaaaaaaa', input: { stock: 1 } }, admin))).toEqual(['NOT_FOUND']);
  });

  it('deleteProduct hides the product, removes its reviews, and keeps past orders readable', async () => {
    const id = (await t.gql(CREATE, { input: product }, admin)).body.data?.createProduct.id;
    const review = await t.gql(`mutation { createReview(input: { productId: "${id}", rating: 4 }) { id } }`, {}, customer);
    const reviewId = review.body.data?.createReview.id;
    const order = await t.gql(`mutation { placeOrder(items: [{ productId: "${id}", quantity: 1 }]) { id } }`, {}, customer);
    expect(order.body.errors).toBeUndefined();

    expect((await t.gql(`mutation { deleteProduct(id: "${id}") }`, {}, admin)).body.data?.deleteProduct).toBe(true);
    expect((await t.gql(`mutation { deleteProduct(id: "${id}") }`, {}, admin)).body.data?.deleteProduct).toBe(false);
    expect((await t.gql(`{ product(id: "${id}") { id } }`)).body.data?.product).toBeNull();
    expect((await t.gql(`{ review(id: "${reviewId}") { id } }`)).body.data?.review).toBeNull();
    const list = await t.gql('{ products(first: 100, category: "kitchen") { edges { node { id } } } }');
    expect(list.body.data?.products.edges.map((e: { node: { id: string } }) => e.node.id)).not.toContain(id);
    const orders = await t.gql('{ viewer { orders(first: 1) { items { product { id name } } } } }', {}, customer);
    expect(orders.body.data?.viewer.orders[0].items[0].product).toEqual({ id, name: 'Test Kettle' });
    expect(errorCodes(await t.gql(UPDATE, { id, input: { stock: 1 } }, admin))).toEqual(['NOT_FOUND']);
  });

  it('recordProductView counts views', async () => {
    const id = (await t.gql(CREATE, { input: product }, admin)).body.data?.createProduct.id;
    for (let i = 0; i < 3; i += 1) await t.gql(`mutation { recordProductView(id: "${id}") { id } }`);
    const res = await t.gql(`mutation { recordProductView(id: "${id}") { viewCount } }`);
    expect(res.body.data?.recordProductView.viewCount).toBe(4);
    expect(errorCodes(await t.gql('mutation { recordProductView(id: "aaaaaaaaaaaaaaaaaaaaaaaa") { id } }'))).toEqual(['NOT_FOUND']);
  });
});

describe('createReview', () => {
  const productId = '5eed00010000000000000002';

  it('needs a session', async () => {
    expect(errorCodes(await t.gql(`mutation { createReview(input: { productId: "${productId}", rating: 5 }) { id } }`))).toEqual([
      'UNAUTHENTICATED',
    ]);
  });

  it.each([0, 6])('rejects rating %i', async (rating) => {
    const res = await t.gql(`mutation { createReview(input: { productId: "${productId}", rating: ${rating} }) { id } }`, {}, customer);
    expect(errorCodes(res)).toEqual(['BAD_USER_INPUT']);
    expect(res.body.errors?.[0]?.extensions?.field).toBe('input.rating');
  });

  it('rejects an unknown or malformed product id', async () => {
    expect(
      errorCodes(
        await t.gql('mutation { createReview(input: { productId: "aaaaaaaaaaaaaaaaaaaaaaaa", rating: 5 }) { id } }', {}, customer),
      ),
    ).toEqual(['NOT_FOUND']);
    expect(errorCodes(await t.gql('mutation { createReview(input: { productId: "42", rating: 5 }) { id } }', {}, customer))).toEqual([
      'BAD_USER_INPUT',
    ]);
  });

  it('shows up in the product and author aggregates at once', async () => {
    const query = `{ product(id: "${productId}") { reviewCount averageRating reviews(first: 1) { id body author { id } } } user(id: "5eed00000000000000000001") { reviewCount } }`;
    const before = (await t.gql(query)).body.data;
    const created = await t.gql(
      `mutation { createReview(input: { productId: "${productId}", rating: 1, body: "meh" }) { id rating body author { id } product { id } } }`,
      {},
      customer,
    );
    const review = created.body.data?.createReview;
    expect(review).toMatchObject({ rating: 1, body: 'meh', author: { id: '5eed00000000000000000001' }, product: { id: productId } });
    const after = (await t.gql(query)).body.data;
    expect(after?.product.reviewCount).toBe(before?.product.reviewCount + 1);
    expect(after?.user.reviewCount).toBe(before?.user.reviewCount + 1);
    expect(after?.product.reviews[0]).toEqual({ id: review.id, body: 'meh', author: { id: '5eed00000000000000000001' } });
    const sumBefore = (before?.product.averageRating ?? 0) * before?.product.reviewCount;
    expect(after?.product.averageRating).toBeCloseTo((sumBefore + 1) / (before?.product.reviewCount + 1));
  });
});
