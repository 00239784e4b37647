import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProductModel } from '../../src/models/index.js';
import { metricValue } from '../helpers/metrics.js';
import { ADMIN, USER_PASSWORD, startTestApp, type TestApp } from '../helpers/test-app.js';
import { until } from '../helpers/wait.js';

// The staleness audit (src/services/cache-audit.ts) at a high rate on a few hot cached documents:
// a write made straight to MongoDB, without invalidation, is reported; the protocol's own windows
// (writes through the API, under load) never are.

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ env: { CACHE_AUDIT_PER_MINUTE: '6000' } });
});
afterAll(() => t.stop());

const product = (n: number): string => `5eed0001${n.toString(16).padStart(16, '0')}`;
const user = (n: number): string => `5eed0000${n.toString(16).padStart(16, '0')}`;
const count = (name: string, type: string): Promise<number> => metricValue(t, name, { type });
const checked = (type: string) => count('cache_audit_checked_total', type);
const mismatches = (type: string) => count('cache_audit_mismatches_total', type);

/** Reads products `ids` through the API, which caches them. */
async function warm(ids: readonly string[]): Promise<void> {
  for (const id of ids) {
    const res = await t.gql(`{ product(id: "${id}") { id priceCents } }`);
    expect(res.body.errors).toBeUndefined();
  }
}

/** Waits until the audit has compared `more` further entities of `type` (a pass over the hot keys and more). */
async function auditedMore(type: string, more: number): Promise<void> {
  const from = await checked(type);
  await until(async () => (await checked(type)) >= from + more, { what: `${more} more ${type} audits` });
}

describe('the cache staleness audit', { timeout: 120_000 }, () => {
  it('reports no mismatch while writes through the API race reads of the same hot documents', async () => {
    const admin = await t.login(ADMIN.email, ADMIN.password);
    const hotProducts = [1, 2, 3].map(product);
    const hotUsers = [6, 7].map((n) => ({ id: user(n), token: '' }));
    for (const [i, u] of hotUsers.entries()) u.token = await t.login(`user${6 + i}@example.com`, USER_PASSWORD);
    await warm(hotProducts);
    const checkedBefore = (await checked('Product')) + (await checked('User'));

    // 40 writes per hot document, each with reads of it around, counted rather than timed.
    const productWriter = async (id: string) => {
      for (let i = 1; i <= 40; i += 1) {
        const [res] = await Promise.all([
          t.gql(`mutation { updateProduct(id: "${id}", input: { priceCents: ${1_000 + i} }) { priceCents } }`, {}, admin),
          t.gql(`{ product(id: "${id}") { priceCents } }`),
        ]);
        expect(res.body.errors).toBeUndefined();
      }
    };
    const userWriter = async ({ id, token }: { id: string; token: string }) => {
      for (let i = 1; i <= 40; i += 1) {
        const [res] = await Promise.all([
          t.gql(`mutation { updateUser(id: "${id}", input: { name: "n${i}" }) { name } }`, {}, token),
          t.gql(`{ user(id: "${id}") { name } }`, {}, token),
        ]);
        expect(res.body.errors).toBeUndefined();
      }
    };
    await Promise.all([...hotProducts.map(productWriter), ...hotUsers.map(userWriter)]);
    const checkedDuringLoad = (await checked('Product')) + (await checked('User')) - checkedBefore;
    await auditedMore('Product', 10);
    await auditedMore('User', 4);

    expect(checkedDuringLoad).toBeGreaterThan(0);
    expect(await mismatches('Product')).toBe(0);
    expect(await mismatches('User')).toBe(0);
  });

  it('reports a write made straight to MongoDB, with or without a version increment, within seconds', async () => {
    const [withVersion, withoutVersion] = [product(4), product(5)];
    await warm([withVersion, withoutVersion]);
    await auditedMore('Product', 4);
    expect(await mismatches('Product')).toBe(0);

    // A back-office script: a new price and version, no invalidation.
    await ProductModel.updateOne({ _id: withVersion }, { $inc: { priceCents: 100, version: 1 } });
    await until(async () => (await mismatches('Product')) >= 1, { what: 'the outside write reported' });

    // Repaired (as POST /cache/invalidate would), then a full pass without a report.
    await t.app.cache.entity('Product').invalidate([withVersion]);
    await auditedMore('Product', 10);
    const baseline = await mismatches('Product');
    await auditedMore('Product', 10);
    expect(await mismatches('Product')).toBe(baseline);

    // A script that does not even bump the version: the fields differ.
    await ProductModel.updateOne({ _id: withoutVersion }, { $inc: { priceCents: 100 } });
    await until(async () => (await mismatches('Product')) > baseline, {
      what: 'the unversioned outside write reported',
      timeoutMs: 30_000,
    });
  });
});
