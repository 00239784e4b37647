// Import rules for `npm run check:structure` (docs/testing.md): what the caching package may
// import, the app's layering (docs/architecture.md) and no import cycles.
// CommonJS (.cjs) because package.json has "type": "module". Paths are relative to the repository root.

const PKG = '^packages/graphql-lease-cache/';
const PKG_SRC = '^packages/graphql-lease-cache/src/';

/** A regular expression for the app's folders (`src/<name>/`). */
const app = (...folders) => `^src/(${folders.join('|')})/`;
/** The app's composition roots and the request context: nothing below them imports them. */
const APP_ROOTS = '^src/(index|worker|app|server|apollo|graphql-route|schema|context)\\.ts$';
/**
 * The schema's @entity declarations as data (codegen writes it from schema/*.graphql, and it imports
 * nothing): every layer may read it, as it reads the SDL's contract. The rest of generated/ (the
 * resolver types) belongs to the GraphQL layer.
 */
const GENERATED_DATA = '^src/generated/entities\\.ts$';

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    // ---- the caching package (packages/graphql-lease-cache): no app, no mongoose, no pino
    {
      name: 'package-no-app',
      severity: 'error',
      comment:
        'The caching package imports nothing outside packages/graphql-lease-cache (no ../../src/...): the app depends on the package, never the reverse.',
      from: { path: PKG },
      to: {
        dependencyTypesNot: ['npm', 'npm-dev', 'npm-peer', 'npm-optional', 'npm-no-pkg', 'npm-unknown', 'core'],
        pathNot: PKG,
        // an import that resolves to nothing is reported by not-to-unresolvable
        couldNotResolve: false,
      },
    },
    {
      name: 'package-no-mongoose-or-pino',
      severity: 'error',
      comment:
        'The caching package knows neither MongoDB (mongoose) nor the logger of the app (pino): logger.ts is the interface the app satisfies.',
      from: { path: PKG },
      to: { path: '(^|/)node_modules/(mongoose|pino)/|^(mongoose|pino)(/|$)' },
    },
    {
      name: 'package-src-declared-deps-only',
      severity: 'error',
      // dependency-cruiser reads each module's closest package.json: here the package's own.
      comment:
        'The src of the package imports only node: builtins, its own files and what packages/graphql-lease-cache/package.json lists in dependencies or peerDependencies.',
      from: { path: PKG_SRC },
      to: { dependencyTypesNot: ['local', 'core', 'npm', 'npm-peer'] },
    },

    // ---- the app's layering, top to bottom:
    //   index/worker/app/server/schema, dev/ > resolvers/, plugins/ > context.ts, generated/ >
    //   services/ > caching/ > loaders/ > models/ > config, logger, trace, errors, metrics, db
    // caching/ sits above loaders/: fields.ts computes a cached field on a miss through the loaders.
    {
      name: 'layer-models',
      severity: 'error',
      comment: 'models/ (mongoose schemas) is the bottom of the app: it imports no other layer.',
      from: { path: app('models') },
      to: { path: app('caching', 'loaders', 'services', 'resolvers', 'plugins', 'dev', 'generated'), pathNot: GENERATED_DATA },
    },
    {
      name: 'layer-loaders',
      severity: 'error',
      comment: 'loaders/ (per-request DataLoaders) import models/ only, never the layers above them.',
      from: { path: app('loaders') },
      to: { path: app('caching', 'services', 'resolvers', 'plugins', 'dev', 'generated'), pathNot: GENERATED_DATA },
    },
    {
      name: 'layer-caching',
      severity: 'error',
      comment: 'caching/ (the cache schema of the domain) may use loaders/ and models/, never services/ or the GraphQL layer.',
      from: { path: app('caching') },
      to: { path: app('services', 'resolvers', 'plugins', 'dev', 'generated'), pathNot: GENERATED_DATA },
    },
    {
      name: 'layer-services',
      severity: 'error',
      comment: 'services/ (domain operations) never import the GraphQL layer (resolvers/, plugins/).',
      from: { path: app('services') },
      to: { path: app('resolvers', 'plugins', 'dev', 'generated'), pathNot: GENERATED_DATA },
    },
    {
      name: 'generated-data-imports-nothing',
      severity: 'error',
      comment: 'src/generated/entities.ts is data that every layer reads: it imports nothing of the app.',
      from: { path: GENERATED_DATA },
      to: { path: '^src/' },
    },
    {
      name: 'layer-resolvers-plugins',
      severity: 'error',
      comment: 'resolvers/ and plugins/ are siblings: neither imports the other.',
      from: { path: '^src/(resolvers|plugins)/' },
      to: { path: '^src/(resolvers|plugins)/', pathNot: '^src/$1/' },
    },
    {
      name: 'layer-no-roots',
      severity: 'error',
      comment:
        'Below the GraphQL layer nothing imports the composition roots or the request context (index, worker, app, server, apollo, graphql-route, schema, context).',
      from: { path: app('models', 'loaders', 'caching', 'services') },
      to: { path: APP_ROOTS },
    },
    {
      name: 'app-package-entry-only',
      severity: 'error',
      comment:
        'The app imports the caching package through its public entries (graphql-lease-cache, graphql-lease-cache/<entry>: src/index.ts, src/<entry>/index.ts), never its files.',
      from: { path: '^src/' },
      to: { path: PKG, pathNot: `${PKG_SRC}(index|apollo/index|envelop/index|testing/index|write-behind/index)\\.ts$` },
    },

    // ---- cycles, in the package and the app. Type-only imports are erased at compile time
    // and so cannot make a cycle at run time: a cycle is reported when none of its steps is
    // type-only.
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'Import cycle (ignoring type-only imports).',
      from: {},
      to: { circular: true, viaOnly: { dependencyTypesNot: ['type-only'] } },
    },
    {
      name: 'not-to-unresolvable',
      severity: 'error',
      comment: 'An import that resolves to no file or package.',
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // Type-only imports count for the layering and the package rules.
    tsPreCompilationDeps: true,
    // Resolves 'graphql-lease-cache' to packages/graphql-lease-cache/src/index.ts (paths).
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      mainFields: ['module', 'main', 'types', 'typings'],
    },
  },
};
