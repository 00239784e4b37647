// The domain both examples serve: the SDL, the document type, and how the cached field is computed.
// `@cacheControl` is Apollo's cache hint (the TTL of cached fields and of whole responses).
import { defineField } from 'graphql-lease-cache';

export const typeDefs = /* GraphQL */ `
  directive @cacheControl(maxAge: Int) on FIELD_DEFINITION | OBJECT
  directive @cached(dependsOn: [String!]!) on FIELD_DEFINITION
  type Book @cacheControl(maxAge: 60) {
    id: ID!
    title: String!
    "Computed on a miss, then cached per book until its title tag is invalidated."
    words: Int! @cached(dependsOn: ["title"])
  }
  type Query {
    book(id: ID!): Book
  }
  type Mutation {
    renameBook(id: ID!, title: String!): Book
  }
`;

/** A document of your database: `version` is incremented by every write. */
export type Book = { id: string; title: string; version: number };

/** `Book.words`, batched: the cache calls `load` with every book it missed. */
export const words = defineField<Book, object, number, null>({
  coordinate: 'Book.words',
  ownerType: 'Book',
  owner: (book) => ({ type: 'Book', id: book.id }),
  load: async (items) => items.map((item) => item.parent.title.split(' ').length),
});

/** The tags the mutations invalidate, per owner type (checked against `@cached(dependsOn:)` at start-up). */
export const knownTags = { Book: ['title'] };
