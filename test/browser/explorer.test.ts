import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { HAVE_CHROMIUM, launchChromium } from '../helpers/chromium.js';
import { startTestApp, type TestApp } from '../helpers/test-app.js';

// GET /explorer (src/explorer.ts) in a real headless Chromium (test/helpers/chromium.ts).

const ARTIFACTS = join(import.meta.dirname, '..', '..', 'test-artifacts');
const SCREENSHOT = join(ARTIFACTS, 'explorer.png');
/** The explorer's first tab, which the page runs. */
const CATALOG_PAGE = '{ products(first: 20) { edges { node { name } } } }';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(() => t?.stop());

describe('explorer (GET /explorer)', () => {
  it('is on by default outside production only (EXPLORER)', () => {
    const base = { MONGODB_URI: 'mongodb://127.0.0.1:1/x' };
    expect(loadConfig({ ...base, NODE_ENV: 'development' }).explorer).toBe(true);
    expect(loadConfig({ ...base, NODE_ENV: 'production' }).explorer).toBe(false);
    expect(loadConfig({ ...base, NODE_ENV: 'production', EXPLORER: 'true' }).explorer).toBe(true);
    expect(loadConfig({ ...base, NODE_ENV: 'development', EXPLORER: 'false' }).explorer).toBe(false);
  });

  it('serves a page that loads only same-origin files, under a same-origin CSP', async () => {
    const res = await fetch(`${t.url}/explorer`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/text\/html/);
    expect(res.headers.get('content-security-policy')).toMatch(/default-src 'self'.*connect-src 'self'/);
    const html = await res.text();
    const urls = [...html.matchAll(/(?:src|href)="([^"]*)"/g)].map((m) => m[1] ?? '');
    expect(urls.length).toBeGreaterThanOrEqual(5);
    for (const url of urls) expect(url).toMatch(/^(\/explorer\/|data:)/);
    for (const url of urls.filter((u) => u.startsWith('/'))) {
      const asset = await fetch(`${t.url}${url}`);
      expect(asset.status, url).toBe(200);
      expect(asset.headers.get('content-type'), url).toMatch(/javascript|css/);
      const text = await asset.text();
      // No stylesheet or font from elsewhere (GraphiQL's fonts are inlined as data: URLs).
      if (url.includes('.css')) expect(text).not.toMatch(/@import|url\(\s*['"]?(https?:)?\/\//);
    }
  });
});

/** The whole text of a visible CodeMirror editor (it renders only the lines in view). */
function editorText(page: Page, selector: string): Promise<string> {
  return page.evaluate((css) => {
    const wrapper = (globalThis as unknown as { document: { querySelector(s: string): unknown } }).document.querySelector(css);
    return (wrapper as { CodeMirror: { getValue(): string } } | null)?.CodeMirror.getValue() ?? '';
  }, `${selector} .CodeMirror`);
}

describe.skipIf(!HAVE_CHROMIUM)(`explorer in headless Chromium${HAVE_CHROMIUM ? '' : ' (skipped: apt-get install chromium)'}`, () => {
  let context: BrowserContext;
  let close: (() => Promise<void>) | undefined;
  let page: Page;
  let origin: string;
  /** Every URL the browser requested, and the page's errors. */
  const requests: string[] = [];
  const problems: string[] = [];
  const offMachine = () => requests.filter((url) => !url.startsWith('data:') && new URL(url).origin !== origin);

  beforeAll(async () => {
    origin = new URL(t.url).origin;
    ({ context, close } = await launchChromium());
    context.on('request', (request) => requests.push(request.url()));
    page = context.pages()[0] ?? (await context.newPage());
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(`console error: ${message.text()}`);
    });
  }, 60_000);
  afterAll(() => close?.());

  it('runs the catalog page and shows the products with extensions.cache, with no request off the machine', async () => {
    const expected = await t.gql<{ products: { edges: { node: { name: string } }[] } }>(CATALOG_PAGE);
    const firstName = expected.body.data?.products.edges[0]?.node.name;
    expect(firstName).toBeTruthy();

    await page.goto(`${t.url}/explorer`);
    // The demo tabs, the catalog page active.
    const tabs = page.locator('.graphiql-tab');
    await expect.poll(() => tabs.allInnerTexts(), { timeout: 20_000 }).toEqual(['CatalogPage', 'CacheStats', 'Login', 'Viewer']);
    await page.locator('.graphiql-execute-button').click();

    const result = page.locator('.result-window');
    await result
      .getByText(firstName as string)
      .first()
      .waitFor({ timeout: 20_000 });
    const shown = JSON.parse(await editorText(page, '.result-window')) as {
      data: typeof expected.body.data;
      extensions?: { cache?: Record<string, unknown> };
    };
    expect(shown.data?.products.edges.map((e) => e.node.name)).toEqual(expected.body.data?.products.edges.map((e) => e.node.name));
    expect(shown.extensions?.cache).toEqual(expect.objectContaining({ hits: expect.any(Number), mongoCommands: expect.any(Number) }));
    // extensions come first, so the cost shows without scrolling.
    expect(Object.keys(shown)[0]).toBe('extensions');
    await expect.poll(() => result.innerText()).toMatch(/"extensions"[\s\S]*"cache"[\s\S]*"redisRoundTrips"/);

    await mkdir(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: SCREENSHOT });

    expect(offMachine()).toEqual([]);
    expect(requests).toContain(`${origin}/graphql`);
    expect(problems).toEqual([]);
  }, 120_000);

  it('logs in from the Login tab and sends the token as Authorization: Bearer from the Viewer tab', async () => {
    const tab = (name: string) => page.locator('.graphiql-tab', { hasText: name }).locator('button').first();
    const execute = page.locator('.graphiql-execute-button');
    const headersEditor = '.graphiql-editor-tool .graphiql-editor:not(.hidden)';
    // GraphiQL takes the operation's name from the editor 100 ms (debounced) after a tab switch;
    // running sooner sends the previous tab's name.
    const switchTo = async (name: string) => {
      await tab(name).click();
      await page.waitForTimeout(500);
    };

    await switchTo('Login');
    await execute.click();
    await expect.poll(() => editorText(page, '.result-window'), { timeout: 20_000 }).toMatch(/"token"/);
    const login = JSON.parse(await editorText(page, '.result-window')) as { data: { login: { token: string; user: { role: string } } } };
    expect(login.data.login.user.role).toBe('ADMIN');

    await switchTo('Viewer');
    await page.locator('.graphiql-editor-tools button', { hasText: 'Headers' }).click();
    // The hint of the header's form, then the real token in its place.
    await expect.poll(() => editorText(page, headersEditor)).toContain('"Authorization": "Bearer <token from the Login tab>"');
    await page.evaluate(
      ([css, value]) => {
        const wrapper = (globalThis as unknown as { document: { querySelector(s: string): unknown } }).document.querySelector(css);
        (wrapper as { CodeMirror: { setValue(v: string): void } }).CodeMirror.setValue(value);
      },
      [`${headersEditor} .CodeMirror`, JSON.stringify({ Authorization: `Bearer ${login.data.login.token}` })] as const,
    );
    await execute.click();
    await expect.poll(() => editorText(page, '.result-window'), { timeout: 20_000 }).toMatch(/"email": "admin@example.com"/);
    await page.screenshot({ path: join(ARTIFACTS, 'explorer-viewer.png') });

    expect(offMachine()).toEqual([]);
    expect(problems).toEqual([]);
  }, 120_000);
});
