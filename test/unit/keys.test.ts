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

  it("keeps write-behind keys out of the versioned prefix, the hash in its entity's slot", () => {
    expect(keys.pending('Product', 'p1')).toBe('shop:{Product:p1}:wb');
    expect(hashTag(keys.pending('Product', 'p1'))).toBe(hashTag(keys.entity('Product', 'p1')));
    expect(keys.writeQueue).toEqual({
      stream: 'shop:{wb}:writes',
      dead: 'shop:{wb}:dead',
      leader: 'shop:{wb}:leader',
      unnamed: 'shop:{wb}:unnamed',
    });
    expect(createKeyspace({ namespace: 'shop', version: 4 }).pending('Product', 'p1')).toBe(keys.pending('Product', 'p1'));
  });

  it('refuses parts that could break the layout', () => {
    expect(() => keys.entity('User', 'a}b')).toThrow(TypeError);
    expect(() => keys.entity('User:x', '1')).toThrow(/type/);
    expect(() => createKeyspace({ namespace: 'a b' })).toThrow(/namespace/);
    expect(() => createKeyspace({ version: 0 })).toThrow(/version/);
  });
});
