// The peers' schema: the subset of the project's SDL that the benchmark's queries and mutations
// use, with the same @cacheControl hints. checkCacheHints() holds the hints to the project's
// schema/*.graphql at start-up, so that the response-cache peer never runs on drifted maxAges.
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { mergeTypeDefs } from '@graphql-tools/merge';
import { Kind, parse, print, type ConstDirectiveNode, type DocumentNode } from 'graphql';

/** The peers' SDL. No @cached (the project's own directive); no sessions: see apollo-peer.ts. */
export const peerTypeDefs = /* GraphQL */ `
  enum CacheControlScope {
    PUBLIC
    PRIVATE
  }
  directive @cacheControl(maxAge: Int, scope: CacheControlScope, inheritMaxAge: Boolean) on FIELD_DEFINITION | OBJECT | INTERFACE | UNION

  type Query {
    product(id: ID!): Product @cacheControl(maxAge: 60)
    products(first: Int = 20): ProductConnection! @cacheControl(maxAge: 60)
    users(ids: [ID!]!): [User]! @cacheControl(maxAge: 60)
  }

  type Mutation {
    updateProduct(id: ID!, input: UpdateProductInput!): Product!
    createReview(input: CreateReviewInput!): Review!
    recordProductView(id: ID!): Product!
  }

  type Product @cacheControl(maxAge: 60) {
    id: ID!
    name: String!
    description: String
    priceCents: Int!
    category: String!
    stock: Int!
    viewCount: Int!
    reviews(first: Int = 10): [Review!]! @cacheControl(maxAge: 300)
    reviewCount: Int!
    averageRating: Float
  }

  type ProductConnection @cacheControl(inheritMaxAge: true) {
    edges: [ProductEdge!]!
    pageInfo: PageInfo!
  }

  type ProductEdge @cacheControl(inheritMaxAge: true) {
    cursor: String!
    node: Product!
  }

  type PageInfo @cacheControl(inheritMaxAge: true) {
    hasNextPage: Boolean!
    endCursor: String
  }

  type Review @cacheControl(maxAge: 60) {
    id: ID!
    rating: Int!
    body: String
    author: User!
    product: Product!
  }

  type User @cacheControl(maxAge: 60) {
    id: ID!
    name: String!
    role: Role!
  }

  enum Role {
    CUSTOMER
    ADMIN
  }

  input UpdateProductInput {
    name: String
    description: String
    priceCents: Int
    category: String
    stock: Int
  }

  input CreateReviewInput {
    productId: ID!
    rating: Int!
    body: String
  }
`;

/** The project's SDL directory (schema/ at the project root). */
const projectSchemaDir = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'schema');

/**
 * Throws naming every type or field of the peers' schema whose @cacheControl hint differs from
 * the project's (or that the project does not have), so that both servers cache alike.
 */
export function checkCacheHints(dir = projectSchemaDir): void {
  const project = hintsOf(
    mergeTypeDefs(
      readdirSync(dir)
        .filter((name) => name.endsWith('.graphql'))
        .map((name) => readFileSync(join(dir, name), 'utf8')),
    ),
  );
  const peer = hintsOf(parse(peerTypeDefs));
  const mismatches = [...peer]
    .filter(([coordinate, hint]) => project.get(coordinate) !== hint)
    .map(([coordinate, hint]) => `${coordinate}: peer ${hint || 'none'}, project ${project.get(coordinate) ?? 'no such coordinate'}`);
  if (mismatches.length) throw new Error(`The peers' @cacheControl hints differ from schema/*.graphql:\n  ${mismatches.join('\n  ')}`);
}

/** `Type` and `Type.field` to the printed @cacheControl directive ('' when none), for object types. */
function hintsOf(document: DocumentNode): Map<string, string> {
  const hints = new Map<string, string>();
  const hint = (directives: readonly ConstDirectiveNode[] | undefined): string =>
    directives
      ?.filter((d) => d.name.value === 'cacheControl')
      .map((d) => print(d))
      .join(' ') ?? '';
  for (const definition of document.definitions) {
    if (definition.kind !== Kind.OBJECT_TYPE_DEFINITION && definition.kind !== Kind.OBJECT_TYPE_EXTENSION) continue;
    const type = definition.name.value;
    if (type !== 'Query' && type !== 'Mutation') hints.set(type, hint(definition.directives));
    for (const field of definition.fields ?? []) hints.set(`${type}.${field.name.value}`, hint(field.directives));
  }
  return hints;
}
