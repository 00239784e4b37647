import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { createCacheMetrics } from 'graphql-lease-cache';
import { createWriteBehindMetrics } from 'graphql-lease-cache';

describe('metric names', () => {
  it('carry the configured prefix, every one of them', async () => {
    const registry = new Registry();
    createCacheMetrics(registry, 'shop_');
    createWriteBehindMetrics(registry, 'shop_');
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
