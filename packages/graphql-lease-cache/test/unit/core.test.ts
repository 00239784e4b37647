import diagnostics from 'node:diagnostics_channel';
import { describe, expect, it } from 'vitest';
import { createCodec } from '../../src/codec.js';
import { CacheCore } from '../../src/core.js';
import { CACHE_CHANNELS, CacheEvents, type LookupEvent } from '../../src/events.js';
import { CacheStats } from '../../src/stats.js';
import { SILENT_LOGGER } from '../../src/logger.js';

const make = (options: Partial<ConstructorParameters<typeof CacheCore>[0]> = {}) =>
  new CacheCore({
    store: null,
    codec: createCodec(),
    events: new CacheEvents('test', new CacheStats()),
    logger: SILENT_LOGGER,
    ...options,
  });

describe('CacheCore without Redis', () => {
  it('jitters TTLs within ±10%, spread over the whole range', () => {
    const core = make();
    const samples = Array.from({ length: 2_000 }, () => core.jitter(100_000));
    expect(Math.min(...samples)).toBeGreaterThanOrEqual(90_000);
    expect(Math.max(...samples)).toBeLessThanOrEqual(110_000);
    expect(Math.min(...samples)).toBeLessThan(91_000);
    expect(Math.max(...samples)).toBeGreaterThan(109_000);
  });

  it('loads everything from the source, counts the misses and publishes them on the lookup channel', async () => {
    const stats = new CacheStats();
    const events = new CacheEvents('test', stats);
    const core = make({ events });
    const published: LookupEvent[] = [];
    const collect = (message: unknown): void => {
      const event = message as LookupEvent;
      if (event.cache === events.id) published.push(event);
    };
    diagnostics.subscribe(CACHE_CHANNELS.lookup, collect);
    const loaded: number[][] = [];
    const values = await core.fetch({
      name: 'Thing',
      keys: ['a', 'b', 'c'],
      load: async (indexes) => {
        loaded.push([...indexes]);
        return indexes.map((i) => (i === 1 ? null : { i }));
      },
      versionOf: () => 1,
      ttlMs: () => 1_000,
    });
    expect(values).toEqual([{ i: 0 }, null, { i: 2 }]);
    expect(loaded).toEqual([[0, 1, 2]]);
    diagnostics.unsubscribe(CACHE_CHANNELS.lookup, collect);
    expect(stats.snapshot()).toEqual([{ name: 'Thing', hits: 0, misses: 3 }]);
    expect(published).toEqual([{ cache: events.id, name: 'Thing', hits: 0, misses: 3, trace: undefined }]);
  });

  it('validates its options with the bad value in the message', () => {
    expect(() => make({ leaseTtlMs: 0 })).toThrow(/leaseTtlMs must be a positive number, got 0/);
    expect(() => make({ ttlJitter: 1 })).toThrow(/ttlJitter/);
    expect(() => make({ leaseRetries: -1 })).toThrow(/leaseRetries/);
  });
});
