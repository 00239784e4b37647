import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/test-app.js';

// A client's mistakes are 4xx answers with a code of their own, never INTERNAL_SERVER_ERROR
// (which is also what the server logs as an unexpected error).
let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ seed: false });
});
afterAll(() => t.stop());

interface ErrorBody {
  data?: unknown;
  errors?: { message: string; extensions?: { code?: string } }[];
}

async function post(body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: ErrorBody }> {
  const res = await fetch(`${t.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as ErrorBody };
}

function expectClientError(res: { status: number; body: ErrorBody }, status: number, code: string): void {
  expect(res.status).toBe(status);
  expect(res.body.errors?.map((e) => e.extensions?.code)).toEqual([code]);
  expect(res.body.errors?.[0]?.message).not.toMatch(/internal server error/i);
}

describe('a document with several operations', () => {
  const query = 'query A { viewer { id } } query B { viewer { id } }';

  it.each([undefined, 'C'])('operationName %j: 400 OPERATION_RESOLUTION_FAILURE, not a 500', async (operationName) => {
    expectClientError(await post({ query, operationName }), 400, 'OPERATION_RESOLUTION_FAILURE');
  });

  it('a named one runs', async () => {
    const res = await post({ query, operationName: 'B' });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ data: { viewer: null } });
    expect(res.body.errors).toBeUndefined();
  });
});

describe('operations and persisted queries the server does not take', () => {
  it('a subscription: 400 OPERATION_NOT_SUPPORTED', async () => {
    expectClientError(await post({ query: 'subscription S { viewer { id } }' }), 400, 'OPERATION_NOT_SUPPORTED');
  });

  it('a persisted query whose hash does not match its query: 400 PERSISTED_QUERY_HASH_MISMATCH', async () => {
    const query = '{ viewer { id } }';
    const sha256Hash = createHash('sha256').update(`${query} `).digest('hex');
    const res = await post({ query, extensions: { persistedQuery: { version: 1, sha256Hash } } });
    expectClientError(res, 400, 'PERSISTED_QUERY_HASH_MISMATCH');
  });

  it.each([2, '1', null])('persisted-query version %j: 400 PERSISTED_QUERY_VERSION_UNSUPPORTED', async (version) => {
    const query = '{ viewer { id } }';
    const sha256Hash = createHash('sha256').update(query).digest('hex');
    const res = await post({ query, extensions: { persistedQuery: { version, sha256Hash } } });
    expectClientError(res, 400, 'PERSISTED_QUERY_VERSION_UNSUPPORTED');
  });

  it.each(['x', 5, true, []])(
    'a persistedQuery extension that is not an object (%j): 400, not an internal error',
    async (persistedQuery) => {
      expectClientError(await post({ extensions: { persistedQuery } }), 400, 'PERSISTED_QUERY_VERSION_UNSUPPORTED');
      expectClientError(
        await post({ query: '{ __typename }', extensions: { persistedQuery } }),
        400,
        'PERSISTED_QUERY_VERSION_UNSUPPORTED',
      );
    },
  );

  it('the same over GET, where extensions are JSON text', async () => {
    const query = '{ viewer { id } }';
    const sha256Hash = createHash('sha256').update(query).digest('hex');
    const get = async (params: Record<string, string>) => {
      const res = await fetch(`${t.url}/graphql?${new URLSearchParams(params)}`, { headers: { 'apollo-require-preflight': 'true' } });
      return { status: res.status, body: (await res.json()) as ErrorBody };
    };
    const version2 = JSON.stringify({ persistedQuery: { version: 2, sha256Hash } });
    expectClientError(await get({ extensions: version2 }), 400, 'PERSISTED_QUERY_VERSION_UNSUPPORTED');
    const wrongHash = JSON.stringify({
      persistedQuery: { version: 1, sha256Hash: sha256Hash.replace(/^./, (c) => (c === '0' ? '1' : '0')) },
    });
    expectClientError(await get({ query, extensions: wrongHash }), 400, 'PERSISTED_QUERY_HASH_MISMATCH');
  });

  it('a valid persisted query still runs', async () => {
    const query = '{ viewer { id } }';
    const sha256Hash = createHash('sha256').update(query).digest('hex');
    const res = await post({ query, extensions: { persistedQuery: { version: 1, sha256Hash } } });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ data: { viewer: null } });
    expect(res.body.errors).toBeUndefined();
  });
});

describe('BAD_REQUEST passes through with 400', () => {
  it('a GET without a preflight-forcing header (CSRF prevention)', async () => {
    const res = await fetch(`${t.url}/graphql?query=${encodeURIComponent('{ viewer { id } }')}`);
    expectClientError({ status: res.status, body: (await res.json()) as ErrorBody }, 400, 'BAD_REQUEST');
  });

  it('an empty body', async () => {
    expectClientError(await post(''), 400, 'BAD_REQUEST');
  });

  it('a body with no query', async () => {
    expectClientError(await post({ variables: {} }), 400, 'BAD_REQUEST');
  });

  it('a batch (batching is off)', async () => {
    expectClientError(await post([{ query: '{ viewer { id } }' }, { query: '{ viewer { id } }' }]), 400, 'BAD_REQUEST');
  });
});
