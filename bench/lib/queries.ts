// The benchmark's queries, the same text for every contender, and the seeded ids they name.

/** The id of the nth seeded document of a collection (src/dev/seed.ts seedId: `5eed` + collection + index). */
export function seededId(collection: 'users' | 'products', index: number): string {
  return `5eed${(collection === 'users' ? 0 : 1).toString(16).padStart(4, '0')}${index.toString(16).padStart(16, '0')}`;
}

/** The catalog page of the issues: 50 products with their aggregates, first reviews and their authors. */
export const CATALOG =
  '{ products(first: 50) { edges { node { id name priceCents reviewCount averageRating reviews(first: 3) { rating author { name } } } } } }';

/** 50 users by id (the seeded customers 1..50): entity loads only. */
export const USERS_BY_ID = `{ users(ids: [${Array.from({ length: 50 }, (_, i) => `"${seededId('users', i + 1)}"`).join(', ')}]) { id name role } }`;

/** A product page: one product with its aggregates, its first 10 reviews and their authors. */
export const PRODUCT_WITH_REVIEWS = `{ product(id: "${seededId('products', 1)}") { id name priceCents reviewCount averageRating reviews(first: 10) { id rating body author { name } } } }`;

/** A read scenario of the read rounds. */
export interface ReadQuery {
  key: 'catalog' | 'users' | 'product';
  /** As the tables and the chart name it. */
  label: string;
  query: string;
}

/** The read rounds' queries, in the order they run. */
export const READ_QUERIES: readonly ReadQuery[] = [
  { key: 'catalog', label: 'catalog (products first: 50)', query: CATALOG },
  { key: 'users', label: 'users(ids: 50)', query: USERS_BY_ID },
  { key: 'product', label: 'product(id) + 10 reviews', query: PRODUCT_WITH_REVIEWS },
];

/** The mixed workload's product read: what the writers change, by id. */
export const HOT_PRODUCT = 'query($id: ID!) { product(id: $id) { id name priceCents reviewCount viewCount } }';

/**
 * The mixed workload's catalog read: the first page of 20, which holds every hot product. It
 * does not select `viewCount` (the product reads do): a catalog page is the response a view
 * must not void (issue 11's granularity).
 */
export const HOT_CATALOG = '{ products(first: 20) { edges { node { id name priceCents reviewCount } } } }';

/** The mixed workload's writes; each answers what it acknowledges. */
export const UPDATE_PRICE = 'mutation($id: ID!, $price: Int!) { updateProduct(id: $id, input: { priceCents: $price }) { id priceCents } }';
export const CREATE_REVIEW =
  'mutation($id: ID!, $rating: Int!) { createReview(input: { productId: $id, rating: $rating, body: "bench" }) { id product { id reviewCount } } }';
export const RECORD_VIEW = 'mutation($id: ID!) { recordProductView(id: $id) { id viewCount } }';
export const LOGIN =
  'mutation($email: String!, $password: String!) { login(email: $email, password: $password) { token user { id role } } }';
