import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: {
    // graphql 16 ships CJS (main) and ESM (module) without an exports map: Node, and so every
    // dependency, loads the CJS build; make Vite resolve the same file, or schemas built by
    // @graphql-tools would be "from another module or realm" in tests.
    alias: [
      { find: /^graphql$/, replacement: 'graphql/index.js' },
      // The workspace package from its sources, as tsx runs it (tsconfig.json's paths); its
      // build (dist/) is what `node dist/index.js` loads.
      {
        find: /^graphql-lease-cache$/,
        replacement: fileURLToPath(new URL('./packages/graphql-lease-cache/src/index.ts', import.meta.url)),
      },
      {
        find: /^graphql-lease-cache\/(apollo|envelop|testing|write-behind)$/,
        replacement: fileURLToPath(new URL('./packages/graphql-lease-cache/src/$1/index.ts', import.meta.url)),
      },
    ],
  },
  test: {
    pool: 'forks',
    testTimeout: 30_000,
    reporters: ['default'],
    // Two projects, one run: the app's tests, and the caching package's own (its config, with
    // no MongoDB: `npm test --workspace packages/graphql-lease-cache` runs it alone).
    projects: [
      {
        extends: true,
        test: {
          name: 'app',
          include: ['test/**/*.test.ts'],
          // One MongoDB-compatible server and one Redis for the app's tests, started by the same
          // embedded-services code as `npm start`; each test file gets its own database.
          globalSetup: ['test/helpers/global-setup.ts'],
          // The first run on a fresh machine may build FerretDB (about two minutes).
          hookTimeout: 300_000,
        },
      },
      'packages/graphql-lease-cache/vitest.config.ts',
    ],
  },
});
