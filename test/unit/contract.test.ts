import { existsSync, readFileSync } from 'node:fs';
import { buildSchema as buildSdl, findBreakingChanges, type GraphQLArgument, type GraphQLSchema } from 'graphql';
import { describe, expect, it } from 'vitest';
import { buildSchema } from '../../src/schema.js';

// test/contract/contract.graphql is the public contract (shared/contract.graphql of the design);
// when the design's copy sits beside the repo, it is checked too, so the two cannot drift.
const contracts = ['test/contract/contract.graphql', '../shared/contract.graphql'].filter((path) => existsSync(path));

describe('the served schema against the public contract', () => {
  const served: GraphQLSchema = buildSchema();

  it.each(contracts)('has no breaking change against %s', (path) => {
    const contract = buildSdl(readFileSync(path, 'utf8'));
    const breaking = findBreakingChanges(contract, served).map((change) => `${change.type}: ${change.description}`);
    expect(breaking).toEqual([]);
  });

  it('keeps the contract fields exactly, arguments and nullability included', () => {
    const contract = buildSdl(readFileSync(contracts[0] ?? '', 'utf8'));
    for (const typeName of ['Query', 'Mutation', 'User', 'Product', 'Review', 'Order']) {
      const expected = contract.getType(typeName);
      const actual = served.getType(typeName);
      if (!expected || !('getFields' in expected) || !actual || !('getFields' in actual)) throw new Error(`missing ${typeName}`);
      for (const [name, field] of Object.entries(expected.getFields())) {
        const ours = actual.getFields()[name];
        expect(ours, `${typeName}.${name}`).toBeDefined();
        expect(String(ours?.type), `${typeName}.${name}`).toBe(String(field.type));
        if ('args' in field) {
          const describe = (args: readonly GraphQLArgument[]) => Object.fromEntries(args.map((a) => [a.name, String(a.type)]));
          const theirs = describe(field.args);
          const mine = describe(ours && 'args' in ours ? ours.args : []);
          expect(mine, `${typeName}.${name} arguments`).toEqual(theirs);
        }
      }
    }
  });
});
