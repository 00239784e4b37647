import { beforeAll, describe, expect, it } from 'vitest';
import { ProductModel } from '../../src/models/index.js';
import type { ProductDoc } from '../../src/models/product.model.js';
import { usePrivateRedisApp } from '../helpers/private-redis-app.js';
import { ADMIN } from '../helpers/test-app.js';
import { manualWorker } from '../helpers/write-behind.js';
import { until } from '../helpers/wait.js';

// Issue 9, defect 3(b): views acknowledged and still queued in Redis must show in every later
// read, also while Redis does not answer (reads are then served from MongoDB, which does not
// have them yet).
const VIEW = 'mutation($id: ID!) { recordProductView(id: $id) { viewCount } }';
const UPDATE = 'mutation($id: ID!, $input: UpdateProductInput!) { updateProduct(id: $id, input: $input) { stock viewCount } }';
const READ = 'query($id: ID!) { product(id: $id) { viewCount stock } }';

// FERRETDB_DOCUMENT_LOCK=process: one instance, whose synchronous writes need no Redis lock
// (with the default, a write on FerretDB while Redis is down is refused: two-instances.test.ts).
const { redis, t } = usePrivateRedisApp({
  env: { FERRETDB_DOCUMENT_LOCK: 'process', WRITE_BEHIND_WORKER: 'false', CACHE_BREAKER_OPEN_MS: '300' },
});
let admin: string;
beforeAll(async () => {
  admin = await t.login(ADMIN.email, ADMIN.password);
});

const stored = async (id: string) => (await ProductModel.findById(id).lean<ProductDoc>().exec())?.viewCount ?? Number.NaN;
const viewsRead = async (id: string) => (await t.gql(READ, { id })).body.data?.product.viewCount as number;

describe('write-behind reads while Redis is frozen (SIGSTOP)', () => {
  it('queued views still show in reads, synchronous writes and fallback views; MongoDB gets each exactly once', async () => {
    const id = '5eed00010000000000000003';
    const before = await stored(id);
    for (let i = 0; i < 3; i += 1) await t.gql(VIEW, { id });
    expect(await viewsRead(id)).toBe(before + 3);
    expect(await stored(id)).toBe(before);

    process.kill(redis.pid, 'SIGSTOP');
    try {
      expect(await viewsRead(id)).toBe(before + 3); // served from MongoDB, with the queued views
      const updated = await t.gql(UPDATE, { id, input: { stock: 42 } }, admin);
      expect(updated.body.errors).toBeUndefined();
      expect(updated.body.data?.updateProduct).toEqual({ stock: 42, viewCount: before + 3 });
      const view = await t.gql(VIEW, { id }); // written to MongoDB synchronously
      expect(view.body.data?.recordProductView.viewCount).toBe(before + 4);
      expect(await stored(id)).toBe(before + 1);
      expect(await viewsRead(id)).toBe(before + 4);
    } finally {
      process.kill(redis.pid, 'SIGCONT');
    }

    // Redis back: the queued views flush once; the one written synchronously is not queued again.
    const worker = manualWorker(t);
    try {
      // As the worker's loop does: a batch that meets the breaker still open is tried again.
      await until(async () => (await worker.runOnce().catch(() => ({ flushed: 0 }))).flushed > 0, { what: 'the queued views to flush' });
    } finally {
      await worker.stop();
    }
    expect(await stored(id)).toBe(before + 4);
    await until(async () => (await viewsRead(id)) === before + 4 && (await t.gql(READ, { id })).body.data?.product.stock === 42, {
      what: 'reads to agree',
    });
  });
});
