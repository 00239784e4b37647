import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { HAVE_CHROMIUM, launchChromium } from '../helpers/chromium.js';
import { ADMIN, startTestApp, type TestApp } from '../helpers/test-app.js';

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
    await expect.poll(() => result.innerText(), { timeout: 20_000 }).toMatch(/"extensions"[\s\S]*"cache"[\s\S]*"redisRoundTrips"/);

    await mkdir(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: SCREENSHOT });

    expect(offMachine()).toEqual([]);
    expect(requests).toContain(`${origin}/graphql`);
    expect(problems).toEqual([]);
  }, 120_000);

  const tab = (name: string) => page.locator('.graphiql-tab', { hasText: name }).locator('button').first();
  const execute = () => page.locator('.graphiql-execute-button').click();
  const headersEditor = '.graphiql-editor-tool .graphiql-editor:not(.hidden)';
  // GraphiQL takes the operation's name from the editor 100 ms (debounced) after a tab switch;
  // running sooner sends the previous tab's name.
  const switchTo = async (name: string) => {
    await tab(name).click();
    await page.waitForTimeout(500);
  };

  /** Sets the text of the visible CodeMirror editor under `selector`. */
  const setEditorText = (selector: string, value: string) =>
    page.evaluate(
      ([css, text]) => {
        const wrapper = (globalThis as unknown as { document: { querySelector(s: string): unknown } }).document.querySelector(css);
        (wrapper as { CodeMirror: { setValue(v: string): void } }).CodeMirror.setValue(text);
      },
      [`${selector} .CodeMirror`, value] as const,
    );

  /**
   * Runs the Login tab (by default with its demo variables, the admin's; or with these credentials
   * typed in its Variables pane), then the Viewer tab with the token in its Headers pane; the token.
   */
  async function logInAndRunViewer(credentials: { email: string; password: string } = ADMIN, options = { hint: true }): Promise<string> {
    await switchTo('Login');
    if (credentials !== ADMIN) {
      await page.locator('.graphiql-editor-tools button', { hasText: 'Variables' }).click();
      await expect.poll(() => editorText(page, headersEditor), { timeout: 20_000 }).toContain('admin@example.com');
      await setEditorText(headersEditor, JSON.stringify(credentials));
    }
    await execute();
    await expect.poll(() => editorText(page, '.result-window'), { timeout: 20_000 }).toMatch(/"token"/);
    const login = JSON.parse(await editorText(page, '.result-window')) as { data: { login: { token: string; user: { role: string } } } };
    expect(login.data.login.user.role).toBe(credentials === ADMIN ? 'ADMIN' : 'CUSTOMER');

    await switchTo('Viewer');
    await page.locator('.graphiql-editor-tools button', { hasText: 'Headers' }).click();
    // The hint of the header's form, then the real token in its place.
    if (options.hint)
      await expect
        .poll(() => editorText(page, headersEditor), { timeout: 20_000 })
        .toContain('"Authorization": "Bearer <token from the Login tab>"');
    else await page.locator(`${headersEditor} .CodeMirror`).waitFor();
    await setEditorText(headersEditor, JSON.stringify({ Authorization: `Bearer ${login.data.login.token}` }));
    await execute();
    await expect.poll(() => editorText(page, '.result-window'), { timeout: 20_000 }).toContain(`"email": "${credentials.email}"`);
    return login.data.login.token;
  }

  /** Everything the page's origin keeps: localStorage and sessionStorage (key and value), and the names of its IndexedDB databases. */
  function browserStorage(): Promise<{ local: Record<string, string>; session: Record<string, string>; indexedDb: string[] }> {
    return page.evaluate(async () => {
      interface StorageLike {
        length: number;
        key(index: number): string | null;
        getItem(key: string): string | null;
      }
      const scope = globalThis as unknown as {
        localStorage: StorageLike;
        sessionStorage: StorageLike;
        indexedDB: { databases(): Promise<{ name?: string }[]> };
      };
      const all = (storage: StorageLike) => {
        const entries: Record<string, string> = {};
        for (let i = 0; i < storage.length; i += 1) {
          const key = storage.key(i);
          if (key !== null) entries[key] = storage.getItem(key) ?? '';
        }
        return entries;
      };
      const databases = await scope.indexedDB.databases();
      return { local: all(scope.localStorage), session: all(scope.sessionStorage), indexedDb: databases.map((d) => d.name ?? '') };
    });
  }

  it('logs in from the Login tab and sends the token as Authorization: Bearer from the Viewer tab', async () => {
    await logInAndRunViewer();
    await page.screenshot({ path: join(ARTIFACTS, 'explorer-viewer.png') });

    expect(offMachine()).toEqual([]);
    expect(problems).toEqual([]);
  }, 120_000);

  it('keeps no header (the token) and no variable (the password) in the browser, history and tabs included', async () => {
    // A password of its own: the demo ones are in the Login tab's comment, which may stay.
    const OLD_SECRET = `old-${randomBytes(8).toString('hex')}`;
    const credentials = { email: 'kept-nowhere@example.com', password: `secret-${randomBytes(8).toString('hex')}` };
    const created = await t.gql('mutation ($input: CreateUserInput!) { createUser(input: $input) { id } }', {
      input: { name: 'Kept Nowhere', ...credentials },
    });
    expect(created.body.errors).toBeUndefined();
    await page.goto(`${t.url}/explorer`);
    // What a page before this storage kept: cleaned when the page loads.
    await page.evaluate((old) => {
      const local = (globalThis as unknown as { localStorage: { clear(): void; setItem(k: string, v: string): void } }).localStorage;
      local.clear();
      local.setItem('graphiql:headers', JSON.stringify({ Authorization: `Bearer ${old}` }));
      local.setItem('graphiql:queries', JSON.stringify({ queries: [{ query: '{ viewer { id } }', headers: old, variables: old }] }));
    }, OLD_SECRET);
    await page.reload();
    await expect.poll(() => page.locator('.graphiql-tab').allInnerTexts(), { timeout: 20_000 }).toContain('Viewer');
    expect(JSON.stringify(await browserStorage())).not.toContain(OLD_SECRET);
    // Without the hint check: the page before the reload above may still save its tabs (500 ms
    // after a change) after the storage was cleared, and the Viewer tab then comes back with its
    // headers stripped (empty), not with the hint.
    const token = await logInAndRunViewer(credentials, { hint: false });
    // GraphiQL saves a run in its history (graphiql:queries) as it runs, and the tabs 500 ms after a change.
    await expect
      .poll(async () => Object.keys((await browserStorage()).local))
      .toEqual(expect.arrayContaining(['graphiql:queries', 'graphiql:tabState']));
    await expect.poll(async () => (await browserStorage()).local['graphiql:queries'] ?? '', { timeout: 20_000 }).toMatch(/query Viewer/);
    await page.reload();
    await expect.poll(() => page.locator('.graphiql-tab').allInnerTexts(), { timeout: 20_000 }).toContain('Viewer');

    const kept = JSON.stringify(await browserStorage());
    // The queries themselves may stay: they are what a visitor comes back for.
    expect(kept).toMatch(/query Viewer/);
    expect(kept).toMatch(/mutation Login/);
    expect({ token: kept.includes(token), password: kept.includes(credentials.password), old: kept.includes(OLD_SECRET) }).toEqual({
      token: false,
      password: false,
      old: false,
    });
    expect(problems).toEqual([]);
  }, 120_000);
});
