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
});
