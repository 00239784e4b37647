// The write-behind views benchmark (BENCH_ONLY=views npm run bench, or npm run bench:views):
// recordProductView under load, spread over 50 products, with the cache on: write-behind (the
// default) against a synchronous $inc per view (the path a view takes when the queue is
// unavailable, forced here), MongoDB writes counted until the queue is empty. In process
// (startApp), so that it can read the app's metrics and the queue directly.
import autocannon from 'autocannon';
import { startApp, type App } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { BENCH_VIEW_LIMITS } from './lib/contenders.js';
import type { Logger } from '../src/logger.js';
import { MIN_REQUESTS, rateText } from './lib/report.js';

/** One row of the views table. */
export interface ViewRow {
  scenario: string;
  views: number;
  /** Views per second; a note instead when the scenario completed too few to time (MIN_REQUESTS). */
  'req/s': number | string;
  'p50 ms': number;
  'p99 ms': number;
  /** update and findAndModify commands. */
  'MongoDB write cmds': number;
  'write cmds per 1,000 views': number;
  'documents written': number;
}

/** Options of {@link runViewsBenchmark}. */
export interface ViewsOptions {
  mongodbUri: string;
  redisUrl: string;
  seconds: number;
  connections: number;
  logger: Logger;
}

const VIEWED_PRODUCTS = 50;

/** Both scenarios, one app each (namespace bench-views); prints the table and returns its rows. */
export async function runViewsBenchmark(options: ViewsOptions): Promise<ViewRow[]> {
  const rows = [
    await withApp(options, {}, (app) => viewLoad(app, options, 'recordProductView, write-behind')),
    await withApp(options, { __testing__withoutWriteBehindQueue: true }, (app) =>
      viewLoad(app, options, 'recordProductView, synchronous $inc'),
    ),
  ];
  console.log(`\nrecordProductView over ${VIEWED_PRODUCTS} products, ${options.seconds} s, ${options.connections} connections`);
  console.table(rows);
  const [behind, sync] = rows;
  if (behind && sync && typeof behind['req/s'] === 'number' && typeof sync['req/s'] === 'number' && sync['req/s'] > 0)
    console.log(`views: write-behind / synchronous $inc throughput ${(behind['req/s'] / sync['req/s']).toFixed(1)}x`);
  else console.log('views: no throughput ratio (a scenario completed too few views to time)');
  return rows;
}

async function withApp<T>(
  options: ViewsOptions,
  appOptions: { __testing__withoutWriteBehindQueue?: boolean },
  fn: (app: App) => Promise<T>,
): Promise<T> {
  const config = loadConfig({
    NODE_ENV: 'production',
    METRICS_PORT: '0',
    ...BENCH_VIEW_LIMITS,
    PORT: '0',
    LOG_LEVEL: 'warn',
    MONGODB_URI: options.mongodbUri,
    REDIS_URL: options.redisUrl,
    CACHE_NAMESPACE: 'bench-views',
  });
  const app = await startApp({ config, logger: options.logger, mongodbUri: options.mongodbUri, redisUrl: options.redisUrl, ...appOptions });
  try {
    return await fn(app);
  } finally {
    await app.stop();
  }
}

/** Views spread over the first products under load; MongoDB updates counted until the queue is empty. */
async function viewLoad(app: App, options: ViewsOptions, scenario: string): Promise<ViewRow> {
  const count = async (metric: { get(): Promise<{ values: { labels: Record<string, unknown>; value: number }[] }> }, labels: string[]) =>
    (await metric.get()).values
      .filter((v) => labels.includes(String(v.labels.command ?? v.labels.type)))
      .reduce((sum, v) => sum + v.value, 0);
  const writeCommands = () => count(app.metrics.mongoCommands, ['update', 'findAndModify']);
  // Write-behind: documents the worker updated; synchronous: one findAndModify per view.
  const documents = async () =>
    (await count(app.cacheMetrics.writeBehind.write, ['Product'])) + (await count(app.metrics.mongoCommands, ['findAndModify']));
  const before = { commands: await writeCommands(), documents: await documents() };
  let next = 0;
  const result = await autocannon({
    url: `${app.url}/graphql`,
    connections: options.connections,
    duration: options.seconds,
    requests: [
      {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        setupRequest: (request) => {
          const id = `5eed0001${((next++ % VIEWED_PRODUCTS) + 1).toString(16).padStart(16, '0')}`;
          return {
            ...request,
            body: JSON.stringify({ query: 'mutation($id: ID!) { recordProductView(id: $id) { viewCount } }', variables: { id } }),
          };
        },
      },
    ],
  });
  if (result.non2xx || result.errors) throw new Error(`${scenario}: ${result.non2xx} non-2xx responses, ${result.errors} errors`);
  await sleep(options.seconds * 500);
  // Until the worker has applied every queued view.
  const client = app.cache.store?.client;
  while (client && (await client.xlen(app.cache.keys.writeQueue.stream)) > 0) await sleep(50);
  const views = result.requests.total;
  const commands = (await writeCommands()) - before.commands;
  return {
    scenario,
    views,
    // The views over the run's length (autocannon's own average counts whole seconds only).
    'req/s': views >= MIN_REQUESTS ? Math.round(views / Math.max(result.duration, 1e-3)) : rateText(0, views, 'views'),
    'p50 ms': result.latency.p50,
    'p99 ms': result.latency.p99,
    'MongoDB write cmds': commands,
    'write cmds per 1,000 views': Math.round((commands / Math.max(views, 1)) * 100_000) / 100,
    'documents written': (await documents()) - before.documents,
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
