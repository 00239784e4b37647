import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cacheArea } from '../../src/config-cache.js';
import { ProductModel } from '../../src/models/index.js';
import { metricValue } from '../helpers/metrics.js';
import { startTestApp, type TestApp } from '../helpers/test-app.js';
import { until } from '../helpers/wait.js';

// The staleness audit's bound (issue 22): at the default CACHE_AUDIT_PER_MINUTE, with a handful of
// hot keys cached, a write made straight to MongoDB without invalidation is reported within a
// minute. Its own app (one mongoose connection per file): cache-audit.test.ts runs at a high rate.

const defaultRate = cacheArea.parse({}).cacheAuditPerMinute;
let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ env: { CACHE_AUDIT_PER_MINUTE: String(defaultRate) } });
});
afterAll(() => t?.stop());

const product = (n: number): string => `5eed0001${n.toString(16).padStart(16, '0')}`;
const mismatches = () => metricValue(t, 'cache_audit_mismatches_total', { type: 'Product' });

describe('the cache staleness audit at its default rate', { timeout: 90_000 }, () => {
  it('reports a write made straight to MongoDB within a minute, with 5 hot products cached', async () => {
    const hot = [11, 12, 13, 14, 15].map(product);
    for (const id of hot) {
      const res = await t.gql(`{ product(id: "${id}") { id priceCents } }`);
      expect(res.body.errors).toBeUndefined();
    }
    expect(await mismatches()).toBe(0);

    // A back-office script: a new price and version, no invalidation.
    await ProductModel.updateOne({ _id: hot[2] }, { $inc: { priceCents: 100, version: 1 } });
    await until(async () => (await mismatches()) >= 1, {
      what: `the outside write reported at CACHE_AUDIT_PER_MINUTE=${defaultRate}`,
      timeoutMs: 60_000,
    });
  });
});
