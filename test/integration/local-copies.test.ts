import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCodec } from 'graphql-lease-cache';
import { objectIdReviver } from '../../src/models/object-id-reviver.js';
import { ProductModel } from '../../src/models/index.js';
import { metricValue } from '../helpers/metrics.js';
import { startTestApp, type TestApp } from '../helpers/test-app.js';

// Local copies (CACHE_LOCAL_ENTRIES): a warm read sends the etag of the decoded copy it holds,
// and Redis answers "same" instead of the value while the stored value is still that one.
let t: TestApp;
beforeAll(async () => {
  // Copies serve the entity and field path, which the whole-response layer would answer for on repeats.
  t = await startTestApp({ env: { CACHE_RESPONSES: 'false' } });
});
afterAll(async () => {
  await t.stop();
});

const READ = 'query($id: ID!) { product(id: $id) { name priceCents } }';

describe('local copies of cached values', () => {
  it('a warm read is a hit with no payload sent, one round trip and no MongoDB command', async () => {
    const id = '5eed00010000000000000011';
    await t.gql(READ, { id }); // filled (and copied here)
    const bytes = await metricValue(t, 'cache_bytes_read_total', { name: 'Product' });
    const res = await t.gql(READ, { id });
    expect(res.body.extensions?.cache).toMatchObject({ hits: 1, misses: 0, mongoCommands: 0, redisRoundTrips: 1 });
    expect(await metricValue(t, 'cache_bytes_read_total', { name: 'Product' })).toBe(bytes);
  });

  it('is never served once Redis holds another value, as another instance would have written it', async () => {
    const id = '5eed00010000000000000012';
    await t.gql(READ, { id });
    await t.gql(READ, { id }); // served from the copy
    const doc = await ProductModel.findById(id).lean().exec();
    if (!doc) throw new Error('no product');
    // Another server instance refreshes the product (same bytes layout, its own etag).
    const changed = { ...doc, name: 'Written elsewhere', version: doc.version + 1 };
    const key = t.app.cache.keys.entity('Product', id);
    await t.app.redis?.set(
      key,
      Buffer.concat([Buffer.from(`${changed.version}||elsewhere-etag|`), createCodec({ revivers: [objectIdReviver] }).encode(changed)]),
      'PX',
      // As another instance stores it: its TTL and the grace (CACHE_GRACE_SECONDS) after it.
      60_000 + t.app.cache.core.expiry.policy.graceMs,
    );
    expect((await t.gql(READ, { id })).body.data?.product.name).toBe('Written elsewhere');
    // And when it is invalidated elsewhere, the copy is not a hit either.
    await t.app.redis?.del(key);
    const { result, commands } = await t.countMongoCommands(() => t.gql(READ, { id }));
    expect(commands).toBe(1);
    expect(result.body.data?.product.name).toBe(doc.name);
  });

  it('copies are frozen outside production: code that mutates a shared value fails loudly', async () => {
    const id = '5eed00010000000000000013';
    await t.gql(READ, { id });
    const [doc] = await t.app.cache.entity('Product').getMany([id], () => Promise.resolve([null]));
    expect(doc).not.toBeNull();
    expect(Object.isFrozen(doc)).toBe(true);
  });
});

describe('local copies and a value whose head does not fit the 256 bytes read first', () => {
  it('the value is read whole and judged as usual (here its stamp does not match: a miss), then "same" again', async () => {
    const id = '5eed00010000000000000014';
    await t.gql(READ, { id });
    const key = t.app.cache.keys.entity('Product', id);
    const raw = await t.app.redis?.getBuffer(key);
    if (!raw) throw new Error('not cached');
    // The same value with a stamp of 300 characters (as many tags would make).
    const first = raw.indexOf(0x7c);
    const rest = raw.subarray(raw.indexOf(0x7c, first + 1));
    await t.app.redis?.set(key, Buffer.concat([raw.subarray(0, first + 1), Buffer.from('x'.repeat(300)), rest]), 'PX', 60_000);
    // Untagged entities compare an empty stamp: a long one is a miss, refilled, and then "same" again.
    const { commands } = await t.countMongoCommands(() => t.gql(READ, { id }));
    expect(commands).toBe(1);
    const again = await t.gql(READ, { id });
    expect(again.body.extensions?.cache).toMatchObject({ hits: 1, mongoCommands: 0 });
  });
});
