import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorCodes, startTestApp, type TestApp } from '../helpers/test-app.js';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ env: { GRAPHQL_MAX_DEPTH: '8', GRAPHQL_MAX_TOKENS: '800' } });
});
afterAll(() => t.stop());

function noStackTraces(body: unknown): void {
  expect(JSON.stringify(body)).not.toMatch(/stacktrace|at .*\.ts:\d+/);
}

describe('bad input is a GraphQL error with a code, never a 500 or a stack trace', () => {
  it.each(['123', 'zzzzzzzzzzzzzzzzzzzzzzzz', '5eed0000000000000000000', ''])('malformed id %j', async (id) => {
    const res = await t.gql('query($id: ID!) { user(id: $id) { id } product(id: $id) { id } review(id: $id) { id } }', { id });
    expect(res.status).toBe(200);
    expect(errorCodes(res)).toEqual(['BAD_USER_INPUT', 'BAD_USER_INPUT', 'BAD_USER_INPUT']);
    noStackTraces(res.body);
  });

  it('a malformed id inside users(ids) names its position', async () => {
    const res = await t.gql('{ users(ids: ["5eed00000000000000000001", "bad"]) { id } }');
    expect(res.body.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'ids.1' });
  });

  it('more than 100 ids', async () => {
    const ids = Array.from({ length: 101 }, () => '5eed00000000000000000001');
    const res = await t.gql('query($ids: [ID!]!) { users(ids: $ids) { id } }', { ids });
    expect(errorCodes(res)).toEqual(['BAD_USER_INPUT']);
    expect(res.body.errors?.[0]?.message).toBe('ids: must have at most 100 items (got 101)');
  });

  it.each([0, 101])('User.reviews(first: %i)', async (first) => {
    const res = await t.gql(`{ user(id: "5eed00000000000000000001") { reviews(first: ${first}) { id } } }`);
    expect(errorCodes(res)).toEqual(['BAD_USER_INPUT']);
    expect(res.body.errors?.[0]?.message).toBe(`first: must be between 1 and 100 (got ${first})`);
  });

  it('a variable of the wrong type is a 400 with BAD_USER_INPUT', async () => {
    const res = await t.gql('query($first: Int) { products(first: $first) { edges { cursor } } }', { first: 'ten' });
    expect(res.status).toBe(400);
    expect(errorCodes(res)).toEqual(['BAD_USER_INPUT']);
    noStackTraces(res.body);
  });

  it('an unknown field is a validation error', async () => {
    const res = await t.gql('{ products { edges { node { nope } } } }');
    expect(res.status).toBe(400);
    expect(errorCodes(res)).toEqual(['GRAPHQL_VALIDATION_FAILED']);
  });

  it('a query deeper than GRAPHQL_MAX_DEPTH is refused before it runs', async () => {
    const deep = '{ products { edges { node { reviews { author { reviews { product { reviews { author { name } } } } } } } } } }';
    const { result: res, commands } = await t.countMongoCommands(() => t.gql(deep));
    expect(res.status).toBe(400);
    expect(errorCodes(res)[0]).toBe('GRAPHQL_VALIDATION_FAILED');
    expect(res.body.errors?.[0]?.message).toMatch(/depth/i);
    expect(commands).toBe(0);
  });

  it('an oversized query (too many tokens) is refused', async () => {
    const fields = Array.from({ length: 300 }, (_, i) => `a${i}: viewer { id }`).join(' ');
    const res = await t.gql(`{ ${fields} }`);
    expect(res.status).toBe(400);
    expect(res.body.errors?.[0]?.message).toMatch(/token|alias/i);
  });

  it('a body that is not JSON is a 400 with a GraphQL-shaped error', async () => {
    const res = await fetch(`${t.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"query": ' });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { errors: { extensions: { code: string } }[] };
    expect(body.errors[0]?.extensions.code).toBe('BAD_USER_INPUT');
    noStackTraces(body);
  });

  it('a body over the size limit is a 413 with a GraphQL-shaped error', async () => {
    const res = await fetch(`${t.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ viewer { id } }', variables: { pad: 'x'.repeat(300_000) } }),
    });
    expect(res.status).toBe(413);
    const body = (await res.json()) as { errors: { extensions: { code: string } }[] };
    expect(body.errors[0]?.extensions.code).toBe('BAD_USER_INPUT');
  });
});
