import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProductModel } from '../../src/models/index.js';
import type { ProductDoc } from '../../src/models/product.model.js';
import { startTestApp, type TestApp } from '../helpers/test-app.js';
import { until } from '../helpers/write-behind.js';

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
    let output = '';
    worker.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const metricsUrl = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no metrics line in: ${output}`)), 30_000);
      worker.stdout.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        const match = /worker metrics at (http:\/\/[\d.:]+\/metrics)/.exec(output);
        if (match?.[1]) {
          clearTimeout(timer);
          resolve(match[1]);
        }
      });
      worker.once('exit', (code) => reject(new Error(`exited ${code}: ${output}`)));
    });
    try {
      await until(async () => (await stored()) === before + 4, 'the worker to apply the views');
      // Counted once acknowledged, which follows the MongoDB write by a Redis round trip.
      let metrics = '';
      await until(async () => {
        metrics = await (await fetch(metricsUrl)).text();
        return /^write_behind_flushed_total\{type="Product"\} 4$/m.test(metrics);
      }, 'the worker to count the views it applied');
      expect(metrics).toMatch(/^write_behind_flushed_total\{type="Product"\} 4$/m);
      expect(metrics).toMatch(/^write_behind_queue_depth 0$/m);

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
