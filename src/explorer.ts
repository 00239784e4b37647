/**
 * GET /explorer: GraphiQL served entirely from this server, for when Apollo Sandbox (GET /graphql,
 * which loads from Apollo's CDN) cannot be reached. The page and its boot script are ours; React 18
 * and GraphiQL 3 are their packages' prebuilt UMD files, sent straight from node_modules (no
 * bundler). The fonts are inlined in GraphiQL's CSS, and the Content-Security-Policy lets the page
 * load and fetch from its own origin only: no request leaves the machine.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Router } from 'express';

const require = createRequire(import.meta.url);

/** The directory of an installed package (each of these exports its package.json). */
function packageDir(name: string): string {
  return dirname(require.resolve(`${name}/package.json`));
}

function packageVersion(name: string): string {
  return (require(`${name}/package.json`) as { version: string }).version;
}

/** Where the page is served. */
export const EXPLORER_PATH = '/explorer';

/** The files the page loads, by the name it loads them under; `?v=` carries the package's version. */
const ASSETS = {
  'react.js': { file: join(packageDir('react'), 'umd', 'react.production.min.js'), version: packageVersion('react') },
  'react-dom.js': { file: join(packageDir('react-dom'), 'umd', 'react-dom.production.min.js'), version: packageVersion('react-dom') },
  'graphiql.js': { file: join(packageDir('graphiql'), 'graphiql.min.js'), version: packageVersion('graphiql') },
  'graphiql.css': { file: join(packageDir('graphiql'), 'graphiql.min.css'), version: packageVersion('graphiql') },
} as const;

function assetUrl(name: keyof typeof ASSETS): string {
  return `${EXPLORER_PATH}/assets/${name}?v=${ASSETS[name].version}`;
}

/** The demo operations, one tab each (GraphiQL keeps a visitor's tabs in localStorage after that, without headers or variables). */
export const DEMO_TABS = [
  {
    query: `# A catalog page: the newest products, with a few reviews.
# extensions.cache, first in the result, is what this
# request cost: cache hits and misses, MongoDB commands
# and Redis round trips. Run it twice: warm, it is cheap.
query CatalogPage {
  products(first: 20) {
    edges {
      node {
        id
        name
        priceCents
        category
        reviewCount
        averageRating
        reviews(first: 3) { rating author { name } }
      }
    }
    pageInfo { hasNextPage endCursor }
  }
}
`,
  },
  {
    query: `# Hit rates since start, per entity type and per
# cached field coordinate (such as Product.reviews).
query CacheStats {
  cacheStats { hits misses hitRate byType { name hits misses hitRate } }
}
`,
  },
  {
    query: `# Demo logins: admin@example.com / admin-password
# (an ADMIN), user1@example.com … user200@example.com /
# password123. Then send the token in the Headers pane:
# {"Authorization": "Bearer <token>"} (see the Viewer tab).
mutation Login($email: String!, $password: String!) {
  login(email: $email, password: $password) {
    token
    expiresAt
    user { id name role }
  }
}
`,
    variables: JSON.stringify({ email: 'admin@example.com', password: 'admin-password' }, null, 2),
  },
  {
    query: `# The user of the session in the Authorization header
# (null without one): paste the token from the Login tab
# into the Headers pane below.
query Viewer {
  viewer { id name email role }
}
`,
    headers: JSON.stringify({ Authorization: 'Bearer <token from the Login tab>' }, null, 2),
  },
];

/**
 * The boot script, as the browser runs it (plain ES2020: it is not compiled). The fetcher puts
 * `extensions` first in the result, so that the cost of a long result shows without scrolling.
 *
 * GraphiQL's storage is a wrapper over localStorage that never writes headers nor variables:
 * GraphiQL keeps its tabs, its history and favorites (`graphiql:queries`, `graphiql:favorites`)
 * and the last `graphiql:headers` and `graphiql:variables` there, and its history keeps the
 * headers whatever `shouldPersistHeaders` says. The bearer token (headers) and the Login tab's
 * password (variables) would outlive the session in the browser for the next user of it. The
 * wrapper drops those two keys, and sets every `headers` and `variables` in a JSON value it
 * saves to null (GraphiQL's own way of not keeping headers: its tab check wants the keys); the
 * queries, the tabs and the theme stay. What an earlier version of the page saved is cleaned
 * the same way when the page loads.
 */
const BOOT_SCRIPT = `'use strict';
(function () {
  var settings = ${JSON.stringify({ endpoint: '/graphql', tabs: DEMO_TABS })};
  function graphiqlKeys() {
    var keys = [];
    for (var i = 0; i < localStorage.length; i += 1) {
      var key = localStorage.key(i);
      if (key !== null && key.indexOf('graphiql:') === 0) keys.push(key);
    }
    return keys;
  }
  /** The value to keep under key, or null to keep nothing. */
  function withoutSecrets(key, value) {
    if (key === 'graphiql:headers' || key === 'graphiql:variables') return null;
    var parsed;
    try {
      parsed = JSON.parse(value);
    } catch (error) {
      return value;
    }
    if (parsed === null || typeof parsed !== 'object') return value;
    return JSON.stringify(parsed, function (name, inner) {
      return name === 'headers' || name === 'variables' ? null : inner;
    });
  }
  var storage = {
    getItem: function (key) {
      return localStorage.getItem(key);
    },
    setItem: function (key, value) {
      var kept = withoutSecrets(key, String(value));
      if (kept === null) localStorage.removeItem(key);
      else localStorage.setItem(key, kept);
    },
    removeItem: function (key) {
      localStorage.removeItem(key);
    },
    key: function (index) {
      return graphiqlKeys()[index] ?? null;
    },
    clear: function () {
      graphiqlKeys().forEach(function (key) {
        localStorage.removeItem(key);
      });
    },
    get length() {
      return graphiqlKeys().length;
    },
  };
  graphiqlKeys().forEach(function (key) {
    storage.setItem(key, localStorage.getItem(key));
  });
  var fetchGraphQL = GraphiQL.createFetcher({
    url: new URL(settings.endpoint, location.href).href,
    // One JSON response per request (the server has no @defer/@stream), which the fetcher below can reorder.
    enableIncrementalDelivery: false,
  });
  function fetcher(params, options) {
    return Promise.resolve(fetchGraphQL(params, options)).then(function (result) {
      if (!result || typeof result !== 'object' || Symbol.asyncIterator in result || !('extensions' in result)) return result;
      return Object.assign({ extensions: result.extensions }, result);
    });
  }
  var h = React.createElement;
  var root = ReactDOM.createRoot(document.getElementById('explorer'));
  root.render(
    h(
      GraphiQL,
      {
        fetcher: fetcher,
        defaultTabs: settings.tabs,
        defaultEditorToolsVisibility: true,
        shouldPersistHeaders: false,
        storage: storage,
      },
      h(GraphiQL.Logo, null, 'Explorer'),
      h(
        GraphiQL.Footer,
        null,
        h('div', { className: 'explorer-footer' }, 'extensions.cache: this request\\u2019s cache hits and misses, MongoDB commands and Redis round trips (not in production).'),
      ),
    ),
  );
})();
`;

const PAGE = `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <title>GraphQL explorer</title>
    <link rel="icon" href="data:," />
    <link rel="stylesheet" href="${assetUrl('graphiql.css')}" />
    <style>
      html, body, #explorer { height: 100%; margin: 0; }
      .explorer-footer { padding: 4px 8px; font-size: 12px; opacity: 0.7; }
    </style>
  </head>
  <body>
    <div id="explorer">Loading the explorer…</div>
    <script src="${assetUrl('react.js')}"></script>
    <script src="${assetUrl('react-dom.js')}"></script>
    <script src="${assetUrl('graphiql.js')}"></script>
    <script src="${EXPLORER_PATH}/boot.js"></script>
  </body>
</html>
`;

/**
 * Same origin only: scripts and the GraphQL fetches. Styles may be inline (React sets style
 * attributes); fonts and images may be data: URLs (GraphiQL's CSS inlines its fonts).
 */
const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "font-src 'self' data:",
  "img-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** The explorer's routes: the page, its boot script and the package files it loads. */
export function explorerRouter(): Router {
  const router = Router();
  router.get(EXPLORER_PATH, (_req, res) => {
    res.set({ 'Content-Security-Policy': CONTENT_SECURITY_POLICY, 'Cache-Control': 'no-cache' }).type('html').send(PAGE);
  });
  router.get(`${EXPLORER_PATH}/boot.js`, (_req, res) => {
    res.set('Cache-Control', 'no-cache').type('js').send(BOOT_SCRIPT);
  });
  for (const [name, { file }] of Object.entries(ASSETS)) {
    // Versioned URLs: a browser may keep them a day without asking again.
    router.get(`${EXPLORER_PATH}/assets/${name}`, (_req, res, next) => {
      res.sendFile(file, { maxAge: '1d' }, (error) => error && next(error));
    });
  }
  return router;
}
