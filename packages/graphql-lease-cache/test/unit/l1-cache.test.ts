import { describe, expect, it } from 'vitest';
import { CacheEvents } from '../../src/events.js';
import { L1Cache, type L1CacheOptions } from '../../src/l1-cache.js';
import { CacheStats } from '../../src/stats.js';
import { collect } from '../helpers/cache.js';
import { until } from '../helpers/wait.js';

// L1Cache (src/l1-cache.ts) on its own: LRU by bytes, drops by dependency, by `K#field` and by
// response bucket, fills refused when they raced an invalidation or a flush, the gate, freezing.

const OPEN = { l1Servable: () => true };

function l1(options: Partial<L1CacheOptions> = {}): L1Cache {
  return new L1Cache({ maxBytes: 1_000, gate: OPEN, ...options });
}

/** Sets `key` as read now (no race), `bytes` bytes. */
function put(cache: L1Cache, key: string, value: unknown, more: { bytes?: number; dependencies?: string[]; buckets?: number[] } = {}) {
  return cache.set(key, value, { startedAt: cache.generation, bytes: more.bytes ?? 10, ...more });
}

describe('L1Cache', () => {
  it('serves what it holds, and evicts the least recently used to stay within its bytes', () => {
    const cache = l1({ maxBytes: 300 });
    put(cache, 'a', 1, { bytes: 100 });
    put(cache, 'b', 2, { bytes: 100 });
    put(cache, 'c', 3, { bytes: 100 });
    expect(cache.get('a')?.value).toBe(1); // now the most recently used: b is the oldest
    put(cache, 'd', 4, { bytes: 150 });
    expect(cache.get('b')).toBeUndefined();
    expect(cache.get('c')).toBeUndefined(); // 100 + 100 + 150 > 300: b, then c
    expect([cache.get('a')?.value, cache.get('d')?.value]).toEqual([1, 4]);
    expect(cache.bytes).toBe(250);
    expect(cache.stats()).toMatchObject({ evictions: 2, entries: 2, bytes: 250, hits: 3, misses: 2 });
  });

  it('refuses a value larger than its bytes, and replaces a key’s value in place', () => {
    const cache = l1({ maxBytes: 100 });
    expect(put(cache, 'big', 'x', { bytes: 101 })).toBe(false);
    put(cache, 'a', 1, { bytes: 60 });
    put(cache, 'a', 2, { bytes: 70 });
    expect(cache.get('a')?.value).toBe(2);
    expect(cache.bytes).toBe(70);
  });

  it('stops serving an entry older than maxAgeMs, or than its own TTL', async () => {
    const cache = l1({ maxAgeMs: 60_000 });
    cache.set('short', 1, { startedAt: 0, bytes: 1, ttlMs: 1 });
    put(cache, 'long', 2);
    await until(() => cache.get('short') === undefined, { what: 'the 1 ms entry to stop being served' });
    expect(cache.get('long')?.value).toBe(2);
  });

  it('drops entries keyed by, or depending on, an invalidated dependency', () => {
    const cache = l1();
    put(cache, 'e:User:1', 'ada', { dependencies: [] });
    put(cache, 'f:Product.reviewCount:p1', 3, { dependencies: ['t:reviews:p1'] });
    put(cache, 'f:Product.reviewCount:p2', 4, { dependencies: ['t:reviews:p2'] });
    cache.invalidate(['e:User:1', 't:reviews:p1']);
    expect(cache.get('e:User:1')).toBeUndefined();
    expect(cache.get('f:Product.reviewCount:p1')).toBeUndefined();
    expect(cache.get('f:Product.reviewCount:p2')?.value).toBe(4);
  });

  it('drops an entity K on a change of one of its fields, K#field', () => {
    const cache = l1();
    put(cache, 'app:e:Product:1', { views: 1 });
    put(cache, 'app:e:Product:2', { views: 2 });
    cache.invalidate(['app:e:Product:1#viewCount']);
    expect(cache.get('app:e:Product:1')).toBeUndefined();
    expect(cache.get('app:e:Product:2')?.value).toEqual({ views: 2 });
  });

  it('drops the responses in the buckets of an invalidated dependency', () => {
    const bucketOf = (dependency: string) => (dependency.endsWith('1') ? 1 : 2);
    const cache = l1({ bucketOf });
    put(cache, 'response:a', Buffer.from('a'), { buckets: [1] });
    put(cache, 'response:b', Buffer.from('b'), { buckets: [2] });
    // A dependency the response never named, sharing its bucket: a stored response only knows its buckets.
    cache.invalidate(['e:Other:11']);
    expect(cache.get('response:a')).toBeUndefined();
    expect(cache.get('response:b')?.value).toEqual(Buffer.from('b'));
  });

  it('refuses a fill that began before an invalidation of its key, a dependency or a bucket', () => {
    const cache = l1({ bucketOf: () => 7 });
    const startedAt = cache.generation;
    cache.invalidate(['k1']);
    expect(cache.set('k1', 'old', { startedAt, bytes: 1 })).toBe(false);
    cache.invalidate(['tag']);
    expect(cache.set('k2', 'old', { startedAt, bytes: 1, dependencies: ['tag'] })).toBe(false);
    expect(cache.set('response:x', 'old', { startedAt, bytes: 1, buckets: [7] })).toBe(false);
    expect(cache.set('k1', 'old', { startedAt, bytes: 1, dependencies: [] })).toBe(false);
    cache.invalidate(['app:e:P:1#views']);
    expect(cache.set('app:e:P:1', 'old', { startedAt: cache.generation - 1, bytes: 1 })).toBe(false);
    // Began after them: held.
    expect(cache.set('k1', 'new', { startedAt: cache.generation, bytes: 1 })).toBe(true);
    expect(cache.set('k3', 'other', { startedAt, bytes: 1, dependencies: ['untouched'] })).toBe(true);
  });

  it('flush drops everything and refuses every fill that began before it; counted by reason', () => {
    const events = new CacheEvents('l1-test', new CacheStats());
    const seen = collect('l1', events);
    const cache = l1({ events });
    put(cache, 'a', 1);
    const startedAt = cache.generation;
    cache.flush('gate');
    expect(cache.get('a')).toBeUndefined();
    expect(cache.set('b', 2, { startedAt, bytes: 1 })).toBe(false);
    expect(put(cache, 'b', 2)).toBe(true);
    expect(cache.stats()).toMatchObject({ flushes: { gate: 1 }, entries: 1 });
    seen.stop();
    expect(seen.map((e) => e.kind)).toEqual(['fill', 'flush', 'miss', 'fill']);
  });

  it('publishes flushes with their reason and the bytes held', () => {
    const events = new CacheEvents('l1-test', new CacheStats());
    const seen = collect('l1', events);
    const cache = l1({ events });
    put(cache, 'a', 1, { bytes: 12 });
    cache.flush('reconnect');
    seen.stop();
    expect(seen.map(({ kind, bytes, reason }) => ({ kind, bytes, reason }))).toEqual([
      { kind: 'fill', bytes: 12, reason: undefined },
      { kind: 'flush', bytes: 0, reason: 'reconnect' },
    ]);
  });

  it('keeps its record of invalidations bounded: past it, a floor refuses what began before', () => {
    const cache = l1({ maxRecorded: 3 });
    const early = cache.generation;
    cache.invalidate(['a', 'b']);
    const middle = cache.generation;
    cache.invalidate(['c', 'd']); // 4 recorded > 3: forgotten, floor raised
    expect(cache.set('x', 1, { startedAt: middle, bytes: 1 })).toBe(false);
    expect(cache.set('x', 1, { startedAt: early, bytes: 1 })).toBe(false);
    expect(cache.set('a', 1, { startedAt: cache.generation, bytes: 1 })).toBe(true);
  });

  it('never serves, nor holds, while its gate is closed (the default)', () => {
    let open = true;
    const cache = l1({ gate: { l1Servable: () => open } });
    put(cache, 'a', 1);
    open = false;
    expect(cache.get('a')).toBeUndefined();
    expect(put(cache, 'b', 2)).toBe(false);
    const closed = new L1Cache({ maxBytes: 100 });
    expect(put(closed, 'a', 1)).toBe(false);
    expect(closed.get('a')).toBeUndefined();
  });

  it('deep-freezes what it holds with `freeze`', () => {
    const cache = l1({ freeze: true });
    const value = { name: 'Ada', tags: ['x'], at: new Date(0) };
    put(cache, 'a', value);
    expect(() => {
      (cache.get('a')?.value as { tags: string[] }).tags.push('y');
    }).toThrow(TypeError);
    expect(Object.isFrozen(value.at)).toBe(false); // class instances are left alone
  });

  it('validates its options', () => {
    expect(() => new L1Cache({ maxBytes: 0 })).toThrow(/maxBytes must be a positive integer, got 0/);
    expect(() => new L1Cache({ maxBytes: 10, maxAgeMs: 1.5 })).toThrow(/maxAgeMs/);
  });
});
