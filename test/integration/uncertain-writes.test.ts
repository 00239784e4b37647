import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProductModel } from '../../src/models/index.js';
import { startTestApp, type TestApp } from '../helpers/test-app.js';
import { until } from '../helpers/wait.js';

// Issue 9, defect 7: after a write whose outcome is unknown (MongoDB did not answer in time),
// the keys it may have changed bypass the cache until the write has surely landed or been
// abandoned, and are then invalidated again: a write that lands late leaves nothing stale.
let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(async () => {
  await t.stop();
});

const READ = 'query($id: ID!) { product(id: $id) { name } }';

describe('keys held after a write of unknown outcome', () => {
  it('are read from MongoDB while held, so a write that lands late shows at once and is never cached stale', async () => {
    const id = '5eed00010000000000000021';
    const products = t.app.cache.entity('Product');
    await t.gql(READ, { id }); // cached
    // What the product service does when findOneAndUpdate times out:
    await products.invalidate([id], { holdMs: 600 });
    expect(t.app.cache.core.pendingInvalidations).toBe(1);

    // While held: a read goes to MongoDB and fills nothing.
    const held = await t.countMongoCommands(() => t.gql(READ, { id }));
    expect(held.commands).toBe(1);
    expect(await t.app.redis?.exists(products.key(id))).toBe(0);
    // The write lands late, in MongoDB only (as a hung server would apply it).
    await ProductModel.updateOne({ _id: id }, { $set: { name: 'Landed late' } }).exec();
    expect((await t.gql(READ, { id })).body.data?.product.name).toBe('Landed late');

    // After the hold: invalidated again, then cached as usual.
    await until(() => t.app.cache.core.pendingInvalidations === 0, { what: 'the hold to end', timeoutMs: 5_000 });
    expect((await t.gql(READ, { id })).body.data?.product.name).toBe('Landed late');
    const warm = await t.countMongoCommands(() => t.gql(READ, { id }));
    expect(warm.commands).toBe(0);
    expect(warm.result.body.data?.product.name).toBe('Landed late');
  });

  it('a value another instance filled during the hold is dropped when it ends', async () => {
    const id = '5eed00010000000000000022';
    const products = t.app.cache.entity<{ _id: { toHexString(): string }; version: number }>('Product');
    await products.invalidate([id], { holdMs: 300 });
    // Another server instance (no hold there) fills the old document meanwhile…
    const old = await ProductModel.findById(id).lean().exec();
    if (!old) throw new Error('no product');
    await products.refresh([old]);
    expect(await t.app.redis?.exists(products.key(id))).toBe(1);
    // …then the write lands (version + 1), and the hold's end drops the old value.
    await ProductModel.updateOne({ _id: id }, { $set: { name: 'Landed late too' } }).exec();
    await until(() => t.app.cache.core.pendingInvalidations === 0, { what: 'the hold to end', timeoutMs: 5_000 });
    expect(await t.app.redis?.exists(products.key(id))).toBe(0);
    expect((await t.gql(READ, { id })).body.data?.product.name).toBe('Landed late too');
  });

  it('delivery goes on after a run with nothing to deliver (a reconnect) or only held entries (a timer during a hold)', async () => {
    // Found by a hostile review: such a run left a settled promise that answered every later
    // call, and nothing pending was ever delivered again (keys bypassed for the life of the process).
    const core = t.app.cache.core;
    const products = t.app.cache.entity('Product');
    await core.deliverPending(); // nothing pending, as on an ioredis 'ready'
    await products.invalidate(['5eed00010000000000000023'], { holdMs: 1_500 });
    await core.deliverPending(); // only held entries, as the 1 s timer during a 10 s hold
    expect(core.pendingInvalidations).toBe(1);
    await until(() => core.pendingInvalidations === 0, { what: 'the held key to be delivered', timeoutMs: 6_000 });
    // And a later one is delivered too.
    await products.invalidate(['5eed00010000000000000024'], { holdMs: 200 });
    await until(() => core.pendingInvalidations === 0, { what: 'the second held key to be delivered', timeoutMs: 4_000 });
  });
});
