import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HAVE_CHROMIUM, launchChromium } from '../helpers/chromium.js';
import { USER_PASSWORD, startTestApp, type TestApp } from '../helpers/test-app.js';

// A browser's own HTTP cache, shared by whoever uses the browser next: a private response must
// not be answered from it to another Authorization (Vary: Authorization), nor reused unasked
// (private, no-cache). Issue 20, defect 3.

const USER_A = '5eed00000000000000000001';
const QUERY = `{ user(id: "${USER_A}") { email orders { id } } }`;

interface Answer {
  status: number;
  cacheControl: string | null;
  vary: string | null;
  body: { data?: { user: { email: string | null; orders: { id: string }[] } | null }; errors?: unknown[] };
}

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(() => t?.stop());

describe.skipIf(!HAVE_CHROMIUM)('private responses in the browser cache (headless Chromium)', () => {
  let context: BrowserContext;
  let close: (() => Promise<void>) | undefined;
  let page: Page;

  beforeAll(async () => {
    ({ context, close } = await launchChromium());
    page = context.pages()[0] ?? (await context.newPage());
  }, 60_000);
  afterAll(() => close?.());

  /** GET /graphql?query=… from the page, as an app would, with the browser's default cache mode. */
  const getInPage = (token: string): Promise<Answer> =>
    page.evaluate(
      async ([url, bearer]) => {
        const res = await fetch(url, { headers: { authorization: `Bearer ${bearer}`, 'apollo-require-preflight': 'true' } });
        return {
          status: res.status,
          cacheControl: res.headers.get('cache-control'),
          vary: res.headers.get('vary'),
          body: (await res.json()) as Answer['body'],
        };
      },
      [`/graphql?${new URLSearchParams({ query: QUERY })}`, token] as const,
    );

  it("the next user's GET of the same URL gets their own answer, never the previous user's", async () => {
    const tokenA = await t.login('user1@example.com', USER_PASSWORD);
    const tokenB = await t.login('user2@example.com', USER_PASSWORD);
    // What B is entitled to: the same query over POST, which no browser cache touches.
    const expectedB = await t.gql<Answer['body']['data']>(QUERY, {}, tokenB);
    expect(expectedB.body.data?.user?.email).toBeNull();

    await page.goto(`${t.url}/healthz`);
    const asA = await getInPage(tokenA);
    expect(asA.status).toBe(200);
    expect(asA.body.data?.user?.email).toBe('user1@example.com');
    // A signs out; B uses the same browser.
    expect((await t.gql('mutation { logout }', {}, tokenA)).body.data?.logout).toBe(true);
    const asB = await getInPage(tokenB);
    expect({ status: asB.status, data: asB.body.data, errors: asB.body.errors }).toEqual({
      status: 200,
      data: expectedB.body.data,
      errors: expectedB.body.errors,
    });
  }, 120_000);
});
