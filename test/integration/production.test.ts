import { describe, expect, it } from 'vitest';
import { startTestApp } from '../helpers/test-app.js';

// A file of its own: mongoose's default connection is one per process (one per test file).
describe('production mode', () => {
  it('has no landing page and no introspection', async () => {
    const prod = await startTestApp({ seed: false, env: { NODE_ENV: 'production' } });
    try {
      const page = await fetch(`${prod.url}/graphql`, { headers: { accept: 'text/html' } });
      expect(await page.text()).not.toMatch(/embeddable-sandbox/);
      const res = await prod.gql('{ __schema { types { name } } }');
      expect(res.body.errors?.[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
      expect(res.body.extensions?.cache).toBeUndefined();
      // No field suggestions (they would reveal the schema), and no stray `?` where one was.
      const typo = await prod.gql('{ products { edges { node { nam } } } }');
      expect(typo.body.errors?.[0]?.message).toBe('Cannot query field "nam" on type "Product". [Suggestion hidden]');
    } finally {
      await prod.stop();
    }
  });

  it('serves /metrics on METRICS_PORT only, and says on its public port only whether it is ready', async () => {
    const prod = await startTestApp({ seed: false, env: { NODE_ENV: 'production' } });
    try {
      expect((await fetch(`${prod.url}/metrics`)).status).toBe(404);
      expect(await (await fetch(`${prod.url}/readyz`)).json()).toEqual({ status: 'ready' });
      const metricsUrl = prod.app.server.metricsUrl;
      expect(metricsUrl).not.toBeNull();
      expect(metricsUrl).not.toBe(prod.url);
      const metrics = await fetch(`${metricsUrl}/metrics`);
      expect(metrics.status).toBe(200);
      expect(await metrics.text()).toMatch(/^# HELP graphql_operations_total /m);
      expect(await (await fetch(`${metricsUrl}/readyz`)).json()).toEqual({ status: 'ready', mongodb: 'up', redis: 'up' });
      // The GraphQL endpoint is not on the metrics port.
      expect((await fetch(`${metricsUrl}/graphql`, { method: 'POST' })).status).toBe(404);
    } finally {
      await prod.stop();
    }
  });
});
