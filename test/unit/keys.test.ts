import { describe, expect, it } from 'vitest';
import { createKeyspace } from '../../src/cache/keys.js';

const hashTag = (key: string): string => /\{([^}]*)\}/.exec(key)?.[1] ?? '';

describe('keyspace', () => {
  const keys = createKeyspace({ namespace: 'shop', version: 3 });

  it('prefixes every key with the namespace and version', () => {
    expect(keys.entity('User', 'abc')).toBe('shop:v3:{User:abc}');
    expect(keys.session('h_1')).toBe('shop:v3:{session:h_1}');
    expect(keys.field('Product', 'p1', 'averageRating', 'x1')).toBe('shop:v3:{Product:p1}:f:averageRating:x1');
    expect(keys.field('User', 'u1', 'orders', 'x2', 'u1')).toBe('shop:v3:{User:u1}:f:orders:x2:u:u1');
  });

  it('puts an entity, its lease, its fields and its tags in one Cluster slot', () => {
    const entity = keys.entity('Product', 'p1');
    const related = [keys.lease(entity), keys.field('Product', 'p1', 'reviewCount', 'a'), keys.tag('Product', 'p1', 'reviews')];
    for (const key of related) expect(hashTag(key)).toBe(hashTag(entity));
  });

  it('refuses parts that could break the layout', () => {
    expect(() => keys.entity('User', 'a}b')).toThrow(TypeError);
    expect(() => keys.entity('User:x', '1')).toThrow(/type/);
    expect(() => createKeyspace({ namespace: 'a b' })).toThrow(/namespace/);
    expect(() => createKeyspace({ version: 0 })).toThrow(/version/);
  });
});
