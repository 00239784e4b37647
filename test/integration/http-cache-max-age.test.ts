import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { USER_PASSWORD, startTestApp, type TestApp } from '../helpers/test-app.js';

// Whoever accepts staleness opts in to the hints' max-age (the default is `no-cache, public`:
// http-cache.test.ts). A test app per file: mongoose has one connection per process.

let withMaxAge: TestApp;
beforeAll(async () => {
  withMaxAge = await startTestApp({ env: { HTTP_CACHE_MAX_AGE: 'true' } });
});
afterAll(() => withMaxAge?.stop());

describe('HTTP_CACHE_MAX_AGE=true', () => {
  it("sends a public response with the hints' max-age; private ones are still revalidated", async () => {
    const publicRes = await withMaxAge.gql('{ product(id: "5eed00010000000000000001") { name } }');
    expect(publicRes.headers.get('cache-control')).toBe('max-age=60, public');
    const stored = await withMaxAge.gql('{ product(id: "5eed00010000000000000001") { name } }');
    expect(stored.headers.get('cache-control')).toBe('max-age=60, public');
    const token = await withMaxAge.login('user1@example.com', USER_PASSWORD);
    const privateRes = await withMaxAge.gql('{ user(id: "5eed00000000000000000001") { email } }', {}, token);
    expect(privateRes.headers.get('cache-control')).toBe('private, no-cache');
  });
});
