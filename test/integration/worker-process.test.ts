import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProductModel } from '../../src/models/index.js';
import type { ProductDoc } from '../../src/models/product.model.js';
import { startTestApp, type TestApp } from '../helpers/test-app.js';
import { metricValue, metricsText } from '../helpers/metrics.js';
import { until, untilOutput } from '../helpers/wait.js';

let t: TestApp;
beforeAll(async () => {
  // The server queues; only the separate worker process applies.
  t = await startTestApp({ env: { WRITE_BEHIND_WORKER: 'false' } });
});
afterAll(() => t.stop());

describe('npm run worker', () => {
  it('applies what the servers queued, serves its metrics, and drains on SIGTERM', { timeout: 60_000 }, async () => {
    const id = '5eed00010000000000000001';
    const stored = async () => (await ProductModel.findById(id).lean<ProductDoc>().exec())?.viewCount ?? -1;
    const before = await stored();
    for (let i = 0; i < 4; i += 1) await t.gql('mutation($id: ID!) { recordProductView(id: $id) { viewCount } }', { id });
    expect(await stored()).toBe(before);

    const worker = spawn(process.execPath, ['--import', 'tsx', 'src/worker.ts'], {
      env: {
        ...process.env,
        NODE_ENV: 'test',
        LOG_LEVEL: 'info',
        MONGODB_URI: t.config.mongodbUri,
        REDIS_URL: t.config.redisUrl,
        CACHE_NAMESPACE: t.config.cache.namespace,
        WORKER_METRICS_PORT: '0',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const metricsUrl = await untilOutput(worker, /worker metrics at (http:\/\/[\d.:]+\/metrics)/, {
      what: 'the metrics line',
      timeoutMs: 30_000,
    });
    try {
      await until(async () => (await stored()) === before + 4, { what: 'the worker to apply the views' });
      // Counted once acknowledged, which follows the MongoDB write by a Redis round trip.
      let metrics = '';
      await until(
        async () => {
          metrics = await metricsText(metricsUrl);
          return (await metricValue(metrics, 'write_behind_flushed_total', { type: 'Product' })) === 4;
        },
        { what: 'the worker to count the views it applied' },
      );
      expect(await metricValue(metrics, 'write_behind_flushed_total', { type: 'Product' })).toBe(4);
      expect(await metricValue(metrics, 'write_behind_queue_depth')).toBe(0);

      // Queued while it runs, applied before it exits on SIGTERM (or by its next batch).
      for (let i = 0; i < 3; i += 1) await t.gql('mutation($id: ID!) { recordProductView(id: $id) { viewCount } }', { id });
    } finally {
      const exited = once(worker, 'exit');
      worker.kill('SIGTERM');
      const [code] = (await exited) as [number | null];
      expect(code).toBe(0);
    }
    expect(await stored()).toBe(before + 7);
  });
});
