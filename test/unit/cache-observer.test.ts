import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { createCache } from 'graphql-lease-cache';
import { createCacheMetrics, observeCache } from '../../src/cache-observer.js';
import { createTrace } from '../../src/trace.js';

const valueOf = async (registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> => {
  const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === name);
  const values = (metric?.values ?? []) as { labels: Record<string, string | number>; value: number }[];
  return values.filter((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l)).reduce((sum, v) => sum + v.value, 0);
};

describe('metric names', () => {
  it('carry the configured prefix, every one of them', async () => {
    const registry = new Registry();
    createCacheMetrics(registry, 'shop_');
    const names = (await registry.getMetricsAsJSON()).map((metric) => metric.name);
    expect(names).toContain('shop_cache_hits_total');
    expect(names).toContain('shop_write_behind_queue_depth');
    expect(names.filter((name) => !name.startsWith('shop_'))).toEqual([]);
  });

  it('have none by default', async () => {
    const registry = new Registry();
    createCacheMetrics(registry);
    expect((await registry.getMetricsAsJSON()).map((metric) => metric.name)).toContain('cache_hits_total');
  });
});

describe('observeCache (the cache events on diagnostics_channel)', () => {
  it("keeps one cache's metrics, ignoring another cache's events in the same process", async () => {
    const registry = new Registry();
    // Two caches in one process (no Redis needed to publish events).
    const [mine, other] = [createCache({ redis: null }).events, createCache({ redis: null }).events];
    const observer = observeCache({ cacheId: mine.id, registry });
    mine.lookup('User', 2, 1);
    other.lookup('User', 5, 5);
    mine.writeBehind('dead-letter', 'Product', 3);
    mine.breaker('open');
    observer.stop();
    mine.lookup('User', 7, 7);
    expect(await valueOf(registry, 'cache_hits_total', { name: 'User' })).toBe(2);
    expect(await valueOf(registry, 'cache_misses_total', { name: 'User' })).toBe(1);
    expect(await valueOf(registry, 'write_behind_dead_letters_total', { type: 'Product' })).toBe(3);
    expect(await valueOf(registry, 'cache_breaker_state')).toBe(2);
    // The stats count whether or not anyone listens.
    expect(mine.stats.snapshot()).toEqual([{ name: 'User', hits: 9, misses: 8 }]);
  });

  it('keeps the L1 metrics: hits, misses, evictions, flushes by reason and the bytes held', async () => {
    const registry = new Registry();
    const { events } = createCache({ redis: null });
    const observer = observeCache({ cacheId: events.id, registry });
    events.l1('hit', 3, 100);
    events.l1('miss', 2, 100);
    events.l1('eviction', 4, 60);
    events.l1('flush', 1, 0, 'gate');
    events.l1('fill', 1, 42);
    observer.stop();
    expect(await valueOf(registry, 'cache_l1_hits_total')).toBe(3);
    expect(await valueOf(registry, 'cache_l1_misses_total')).toBe(2);
    expect(await valueOf(registry, 'cache_l1_evictions_total')).toBe(4);
    expect(await valueOf(registry, 'cache_l1_flushes_total', { reason: 'gate' })).toBe(1);
    expect(await valueOf(registry, 'cache_l1_bytes')).toBe(42);
  });

  it('counts reads and round trips in the request they name, else in the current one, and never in a trace of no request', () => {
    const { events } = createCache({ redis: null });
    const [named, current] = [createTrace(), createTrace()];
    const observer = observeCache({ cacheId: events.id, registry: new Registry(), currentTrace: () => current });
    events.lookup('User', 3, 1, named);
    events.store('get', 0.5, true, named);
    events.lookup('User', 1, 0);
    events.store('invalidate', 0.5, false);
    events.lookup('Response', 1, 0, {});
    observer.stop();
    expect([named.cacheHits, named.cacheMisses, named.redisRoundTrips]).toEqual([3, 1, 1]);
    expect([current.cacheHits, current.cacheMisses, current.redisRoundTrips]).toEqual([1, 0, 1]);
  });
});
