import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeExecutableSchema } from '@graphql-tools/schema';
import type { GraphQLSchema } from 'graphql';
import { resolvers } from './resolvers/index.js';

/** The SDL directory: the schema is written first, in `schema/*.graphql` at the project root. */
export const schemaDir = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'schema');

/** Every `schema/*.graphql` file's text, in name order (codegen reads the same files). */
export function loadTypeDefs(dir = schemaDir): string[] {
  return readdirSync(dir)
    .filter((name) => name.endsWith('.graphql'))
    .sort()
    .map((name) => readFileSync(join(dir, name), 'utf8'));
}

/** The executable schema: the SDL merged across files, with the resolvers. */
export function buildSchema(): GraphQLSchema {
  return makeExecutableSchema({ typeDefs: loadTypeDefs(), resolvers });
}
