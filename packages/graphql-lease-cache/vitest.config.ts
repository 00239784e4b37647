import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// The package's own test project: `npm test --workspace packages/graphql-lease-cache`, and one
// of the root's projects (../../vitest.config.ts). Its tests need a `redis-server` on PATH and
// nothing else (test/helpers/redis.ts starts private ones): no MongoDB-compatible server.
export default defineConfig({
  resolve: {
    alias: [
      // graphql 16 ships CJS (main) and ESM (module) without an exports map: resolve the file
      // Node loads, or @graphql-tools' schemas would be "from another module or realm".
      { find: /^graphql$/, replacement: 'graphql/index.js' },
      // The package's entries from their sources (the examples import the package by name).
      { find: /^graphql-lease-cache$/, replacement: fileURLToPath(new URL('./src/index.ts', import.meta.url)) },
      { find: /^graphql-lease-cache\/([a-z-]+)$/, replacement: fileURLToPath(new URL('./src/$1/index.ts', import.meta.url)) },
    ],
  },
  test: {
    name: 'graphql-lease-cache',
    root: fileURLToPath(new URL('.', import.meta.url)),
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
