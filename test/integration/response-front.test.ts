import { request as httpRequest } from 'node:http';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/test-app.js';

// The front (responseFront, the server's node:http listener) answers a stored /graphql response
// before Express, and hands everything else on: every answer is the one Express gives. Each case
// is sent twice, once as the front reads it (a JSON POST with a Content-Length) and once with a
// chunked body, which the front hands to Express unread (so the route's own middleware, fast
// path included, answers it as it did before the front): both must be alike.

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({
    env: { CACHE_RESPONSES: 'true', WRITE_BEHIND_WORKER: 'false', SURROGATE_KEY_HEADER: 'xkey' },
    seed: { users: 4, products: 8, reviews: 10, orders: 0 },
  });
});
afterAll(async () => {
  await t.stop();
});

const product = (i: number): string => `5eed0001${i.toString(16).padStart(16, '0')}`;

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

interface Sent {
  method?: string;
  path?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** Sent with Transfer-Encoding: chunked (no Content-Length): the front hands it to Express unread. */
  chunked?: boolean;
}

/** One request over node:http, with the answer's headers (less Date and the connection's). */
function send({ method = 'POST', path = '/graphql', headers = {}, body, chunked = false }: Sent): Promise<Answer> {
  const url = new URL(path, t.url);
  const bytes = body === undefined ? undefined : Buffer.from(body);
  const all: Record<string, string> = { 'content-type': 'application/json', ...headers };
  if (bytes && !chunked) all['content-length'] = String(bytes.length);
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method, headers: all }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        const { date: _date, connection: _connection, 'keep-alive': _keepAlive, ...kept } = res.headers;
        resolve({ status: res.statusCode ?? 0, headers: kept, body: Buffer.concat(chunks).toString() });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    if (bytes && chunked) {
      // Two writes: chunked framing, as a streaming client sends it.
      req.write(bytes.subarray(0, 1));
      req.end(bytes.subarray(1));
    } else req.end(bytes);
  });
}

/** The same request through the front and through Express: their answers. */
async function bothWays(sent: Sent): Promise<{ front: Answer; express: Answer }> {
  const front = await send(sent);
  const express = await send({ ...sent, chunked: true });
  return { front, express };
}

const responseOf = (answer: Answer): unknown =>
  (JSON.parse(answer.body) as { extensions?: { cache?: { response?: string } } }).extensions?.cache?.response;

describe('a hit before Express', () => {
  it('carries the same status, headers and body as the route’s fast path', async () => {
    const body = JSON.stringify({ query: `{ product(id: "${product(2)}") { id name priceCents } }` });
    expect(responseOf(await send({ body }))).toBe('MISS');
    const { front, express } = await bothWays({ body });
    expect(responseOf(front)).toBe('HIT');
    expect(front).toEqual(express);
    expect(front.headers).toMatchObject({
      'content-type': 'application/json; charset=utf-8',
      'cache-control': 'no-cache, public',
      vary: 'Authorization',
      'surrogate-control': 'no-store',
      'access-control-allow-origin': '*',
    });
  });

  it('with variables, an Accept header and a query string: the same as the route’s', async () => {
    const body = JSON.stringify({ query: 'query($id: ID!) { product(id: $id) { id name } }', variables: { id: product(3) } });
    const headers = { accept: 'application/graphql-response+json, application/json;q=0.9' };
    await send({ body, headers });
    const { front, express } = await bothWays({ body, headers, path: '/graphql?x=1' });
    expect(responseOf(front)).toBe('HIT');
    expect(front).toEqual(express);
    expect(front.headers['content-type']).toBe('application/graphql-response+json; charset=utf-8');
  });
});

describe('everything else goes to Express, with the same answer', () => {
  it('malformed JSON, a body that is no object, and an empty body are the same 400s', async () => {
    for (const body of ['{"query": ', '"a string"', '', '  [1,', '\ufeff{}']) {
      const { front, express } = await bothWays({ body });
      expect(front.status, body).toBe(express.status);
      expect(front, body).toEqual(express);
      expect(front.status, body).toBeGreaterThanOrEqual(400);
    }
  });

  it('a body over the limit is the same 413', async () => {
    const body = JSON.stringify({ query: `{ products(first: 1) { edges { node { id } } } }`, pad: 'x'.repeat(300 * 1024) });
    const { front, express } = await bothWays({ body });
    expect(front.status).toBe(413);
    expect(front).toEqual(express);
  });

  it('another content type, a compressed body, a GET and a 405 are answered as before', async () => {
    const query = `{ product(id: "${product(4)}") { id name } }`;
    const text = await bothWays({ body: JSON.stringify({ query }), headers: { 'content-type': 'text/plain' } });
    expect(text.front).toEqual(text.express);
    expect(text.front.status).toBe(400);

    const gzip = await send({ body: gzipSync(JSON.stringify({ query })), headers: { 'content-encoding': 'gzip' } });
    expect(gzip.status).toBe(200);
    expect(JSON.parse(gzip.body)).toMatchObject({ data: { product: { id: product(4) } } });

    const get = await send({ method: 'GET', path: `/graphql?query=${encodeURIComponent(query)}`, headers: {} });
    expect(get.status).toBe(200);
    expect(JSON.parse(get.body)).toMatchObject({ data: { product: { id: product(4) } } });

    const put = await send({ method: 'PUT', body: JSON.stringify({ query }) });
    expect(put.status).toBe(405);
    expect(put.headers.allow).toBe('GET, POST, OPTIONS');
  });

  it('a mutation read by the front runs in Apollo, with the same answer as over Express', async () => {
    const body = JSON.stringify({
      query: 'mutation($email: String!, $password: String!) { login(email: $email, password: $password) { token } }',
      variables: { email: 'nobody@example.com', password: 'wrong-password' },
    });
    const { front, express } = await bothWays({ body });
    expect(front.status).toBe(express.status);
    expect(JSON.parse(front.body)).toEqual(JSON.parse(express.body));
    expect(front.headers).toEqual(express.headers);
  });

  it('a CORS preflight is answered by Express', async () => {
    const preflight = await send({
      method: 'OPTIONS',
      headers: { origin: 'http://example.com', 'access-control-request-method': 'POST' },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers['access-control-allow-origin']).toBe('*');
  });
});
