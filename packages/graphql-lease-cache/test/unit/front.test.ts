import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { replayedBody, responseFront, type FrontRequest } from '../../src/apollo/index.js';

// responseFront on a bare node:http server: what it reads, what it answers through its fast
// path, and what it hands on to `next` (here a handler that says what it was given).

const LIMIT = 64;
let server: Server;
let base: string;
beforeAll(async () => {
  const front = responseFront<FrontRequest, ServerResponse>({
    maxBodyBytes: LIMIT,
    fastPath: (req, res, next) => {
      if ((req.body as { hit?: boolean }).hit !== true) return next();
      res.setHeader('x-hit', 'front');
      res.end('hit');
    },
    prepare: (_req, res, serve) => {
      res.setHeader('x-prepared', '1');
      serve();
    },
    next: (req, res) => void handOn(req, res),
  });
  server = createServer((req, res) => front(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});

/** The next handler: answers what it was handed, reading the body itself when the front left it unread. */
async function handOn(req: FrontRequest, res: ServerResponse): Promise<void> {
  const replay = replayedBody(req);
  let unread = '';
  if (req.body === undefined && !replay) for await (const chunk of req as IncomingMessage) unread += String(chunk);
  let replayed: string | null = null;
  if (replay) {
    replayed = '';
    for await (const chunk of replay) replayed += String(chunk);
  }
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ body: req.body ?? null, replayed, unread, prepared: res.getHeader('x-prepared') ?? null }));
}

interface Sent {
  method?: string;
  path?: string;
  headers?: Record<string, string>;
  body?: string;
  chunked?: boolean;
}

async function send(options: Sent) {
  const { method = 'POST', path = '/graphql', body = '', chunked = false } = options;
  const headers: Record<string, string> = { 'content-type': 'application/json', ...options.headers };
  if (!chunked && method !== 'GET') headers['content-length'] = String(Buffer.byteLength(body));
  return new Promise<{ status: number; hit: string | undefined; text: string }>((resolve, reject) => {
    const req = request(`${base}${path}`, { method, headers }, (res) => {
      let text = '';
      res.on('data', (chunk: Buffer) => (text += chunk.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, hit: res.headers['x-hit'] as string | undefined, text }));
    });
    req.on('error', reject);
    if (chunked) req.write('');
    req.end(method === 'GET' ? undefined : body);
  });
}

const handed = (text: string) => JSON.parse(text) as { body: unknown; replayed: string | null; unread: string; prepared: string | null };

describe('responseFront', () => {
  it('answers through the fast path a JSON POST to the path, with or without a query string', async () => {
    for (const path of ['/graphql', '/graphql?a=1']) {
      const res = await send({ path, body: '{"hit":true}' });
      expect(res).toMatchObject({ status: 200, hit: 'front', text: 'hit' });
    }
  });

  it('hands on what the fast path does not answer, with its body parsed, prepared', async () => {
    const res = await send({ body: ' {"query":"{ a }"}', headers: { 'content-type': 'application/json; charset=UTF-8' } });
    expect(handed(res.text)).toEqual({ body: { query: '{ a }' }, replayed: null, unread: '', prepared: '1' });
  });

  it('hands on a body that is not a JSON object or array as rawBody, replayed byte for byte, unprepared', async () => {
    for (const body of ['', '{"query": ', '"text"', 'null']) {
      const res = await send({ body });
      expect(handed(res.text), body).toEqual({ body: null, replayed: body, unread: '', prepared: null });
    }
  });

  it('leaves unread: other paths and methods, other types, charsets and encodings, chunked and over-limit bodies', async () => {
    const cases: Sent[] = [
      { path: '/graphql/x', body: '{"hit":true}' },
      { path: '/other', body: '{"hit":true}' },
      { method: 'PUT', body: '{"hit":true}' },
      { body: '{"hit":true}', headers: { 'content-type': 'text/plain' } },
      { body: '{"hit":true}', headers: { 'content-type': 'application/json; charset=latin1' } },
      { body: '{"hit":true}', headers: { 'content-type': 'application/graphql-response+json' } },
      { body: '{"hit":true}', headers: { 'content-encoding': 'gzip' } },
      { body: '{"hit":true}', chunked: true },
      { body: JSON.stringify({ hit: true, pad: 'x'.repeat(LIMIT) }) },
    ];
    for (const sent of cases) {
      const res = await send(sent);
      expect(res.hit, JSON.stringify(sent)).toBeUndefined();
      expect(handed(res.text), JSON.stringify(sent)).toEqual({ body: null, replayed: null, unread: sent.body, prepared: null });
    }
  });

  it('refuses a limit that is not a byte count', () => {
    const next = () => undefined;
    expect(() => responseFront({ maxBodyBytes: -1, fastPath: next, next })).toThrow(TypeError);
  });
});
