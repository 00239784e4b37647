import type { IncomingMessage, ServerResponse } from 'node:http';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HAVE_CHROMIUM, launchChromium } from '../helpers/chromium.js';
import { ADMIN, startTestApp, type TestApp } from '../helpers/test-app.js';

// A browser's HTTP cache must not show a value a mutation has replaced: a public GET is
// `no-cache, public`, so every reuse is revalidated, and a revalidation that still matches is a
// 304 (fetch sends it with Cache-Control: no-cache). Issue 22: with `max-age=60, public` the
// browser served the old price from its cache for 60 s.

const PRODUCT = '5eed00010000000000000001';
const QUERY = `{ product(id: "${PRODUCT}") { priceCents } }`;

interface Answer {
  status: number;
  priceCents: number | null;
}

let t: TestApp;
/** The statuses the server answered GET /graphql with, in order (counted at the server, not in the browser). */
const served: number[] = [];
beforeAll(async () => {
  t = await startTestApp();
  t.app.server.httpServer.on('request', (req: IncomingMessage, res: ServerResponse) => {
    // Express has already taken `/graphql` off req.url (app.use) when this listener runs.
    const url = (req as IncomingMessage & { originalUrl?: string }).originalUrl ?? req.url;
    if (req.method === 'GET' && url?.startsWith('/graphql?')) res.once('finish', () => served.push(res.statusCode));
  });
});
afterAll(() => t?.stop());

describe.skipIf(!HAVE_CHROMIUM)('public GETs in the browser cache (headless Chromium)', () => {
  let context: BrowserContext;
  let close: (() => Promise<void>) | undefined;
  let page: Page;

  beforeAll(async () => {
    ({ context, close } = await launchChromium());
    page = context.pages()[0] ?? (await context.newPage());
  }, 60_000);
  afterAll(() => close?.());

  /** GET /graphql?query=… from the page, as an app would, with the browser's default cache mode. */
  const getInPage = (): Promise<Answer> =>
    page.evaluate(
      async (url) => {
        const res = await fetch(url, { headers: { 'apollo-require-preflight': 'true' } });
        const body = (await res.json()) as { data?: { product: { priceCents: number } | null } };
        return { status: res.status, priceCents: body.data?.product?.priceCents ?? null };
      },
      `/graphql?${new URLSearchParams({ query: QUERY })}`,
    );

  it('a GET after a mutation shows the new value; a repeat without a write is revalidated with a 304', async () => {
    await page.goto(`${t.url}/healthz`);
    const before = await getInPage();
    expect(before.status).toBe(200);
    const newPrice = (before.priceCents ?? 0) + 100;
    const admin = await t.login(ADMIN.email, ADMIN.password);
    const updated = await t.gql<{ updateProduct: { priceCents: number } }>(
      `mutation { updateProduct(id: "${PRODUCT}", input: { priceCents: ${newPrice} }) { priceCents } }`,
      {},
      admin,
    );
    expect(updated.body.data?.updateProduct.priceCents).toBe(newPrice);
    // The browser asks (If-None-Match), and the changed data is a 200 with the new value.
    expect(await getInPage()).toEqual({ status: 200, priceCents: newPrice });
    // No write since: the browser asks again and gets a 304; the page sees its cached 200.
    expect(await getInPage()).toEqual({ status: 200, priceCents: newPrice });
    expect(served).toEqual([200, 200, 304]);
  }, 120_000);
});
