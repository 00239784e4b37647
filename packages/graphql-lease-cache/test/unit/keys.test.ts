import { describe, expect, it } from 'vitest';
import { createKeyspace } from '../../src/keys.js';
import calculateSlot from 'cluster-key-slot';
import { changedDependencies } from '../../src/create-cache.js';

const hashTag = (key: string): string => /\{([^}]*)\}/.exec(key)?.[1] ?? '';

describe('keyspace', () => {
  const keys = createKeyspace({ namespace: 'shop', version: 3 });

  it('prefixes every key with the namespace and version', () => {
    expect(keys.entity('User', 'abc')).toBe('shop:v3:{User:abc}');
    expect(keys.entity('session', 'h_1')).toBe('shop:v3:{session:h_1}');
    expect(keys.field('Product', 'p1', 'averageRating', 'd1', 'x1')).toBe('shop:v3:{Product:p1}:f:averageRating:d1:x1');
    expect(keys.field('User', 'u1', 'orders', 'd2', 'x2', 'u1')).toBe('shop:v3:{User:u1}:f:orders:d2:x2:u:u1');
  });

  it('puts an entity, its lease, its fields and its tags in one Cluster slot', () => {
    const entity = keys.entity('Product', 'p1');
    const related = [keys.lease(entity), keys.field('Product', 'p1', 'reviewCount', 'd', 'a'), keys.tag('Product', 'p1', 'reviews')];
    for (const key of related) expect(hashTag(key)).toBe(hashTag(entity));
  });

  it("keeps write-behind keys out of the versioned prefix, the hash in its entity's slot", () => {
    expect(keys.pending('Product', 'p1')).toBe('shop:{Product:p1}:wb');
    expect(hashTag(keys.pending('Product', 'p1'))).toBe(hashTag(keys.entity('Product', 'p1')));
    expect(keys.writeQueue).toMatchObject({
      stream: 'shop:{wb}:writes',
      dead: 'shop:{wb}:dead',
      leader: 'shop:{wb}:leader',
      unnamed: 'shop:{wb}:unnamed',
      registry: 'shop:{wb}:streams',
      streamPattern: 'shop:{wb~*}:writes',
    });
    expect(createKeyspace({ namespace: 'shop', version: 4 }).pending('Product', 'p1')).toBe(keys.pending('Product', 'p1'));
  });

  it("on a Cluster, puts an entity's write-behind queue (stream, dead letters, fence) in the entity's slot", () => {
    for (const [type, id] of [
      ['Product', 'p1'],
      ['Product', '5eed00010000000000000003'],
      ['User', 'u9'],
    ] as const) {
      const shard = keys.writeQueue.ofEntity(type, id);
      const slot = calculateSlot(keys.pending(type, id));
      for (const key of [shard.stream, shard.dead, shard.fence, shard.unnamed]) expect(calculateSlot(key)).toBe(slot);
      expect(shard.stream).toMatch(/^shop:\{wb~[0-9a-z]+\}:writes$/);
      expect(keys.writeQueue.ofStream(shard.stream)).toEqual(shard);
    }
    // Stable names: they hold changes the database does not have yet.
    expect(keys.writeQueue.ofEntity('Product', 'p1').stream).toBe(
      createKeyspace({ namespace: 'shop', version: 9 }).writeQueue.ofEntity('Product', 'p1').stream,
    );
    expect(keys.writeQueue.ofStream('shop:{wb}:writes')).toBeNull();
    expect(keys.writeQueue.ofStream('shop:{wb~zzzzzz}:writes')).toBeNull(); // not the tag of its slot
    expect(keys.writeQueue.ofStream('other:{wb~0}:writes')).toBeNull();
  });

  it('names response dependencies on one field of an entity, and tells entity keys from others', () => {
    const entity = keys.entity('Product', 'p1');
    expect(keys.fieldDependency(entity, 'viewCount')).toBe('shop:v3:{Product:p1}#viewCount');
    expect(keys.entityType(entity)).toBe('Product');
    expect(keys.entityType(keys.entity('User', '5eed0000000000000000000a'))).toBe('User');
    for (const other of [
      keys.lease(entity),
      keys.field('Product', 'p1', 'reviews', 'd', 'a'),
      keys.tag('Product', 'p1', 'reviews'),
      keys.pending('Product', 'p1'),
      keys.response(0, 'abc'),
      keys.fieldDependency(entity, 'viewCount'),
      createKeyspace({ namespace: 'other', version: 3 }).entity('Product', 'p1'),
    ]) {
      expect({ other, type: keys.entityType(other) }).toEqual({ other, type: null });
    }
    // Keys of the same layout answer their slot type (no entity type is named so).
    expect(keys.entityType(keys.entity('session', 'h_1'))).toBe('session');
  });

  it('refuses parts that could break the layout', () => {
    expect(() => keys.entity('User', 'a}b')).toThrow(TypeError);
    expect(() => keys.entity('User:x', '1')).toThrow(/type/);
    expect(() => createKeyspace({ namespace: 'a b' })).toThrow(/namespace/);
    expect(() => createKeyspace({ version: 0 })).toThrow(/version/);
  });
});

describe('changedDependencies', () => {
  const keys = createKeyspace({ namespace: 'shop', version: 3 });
  const fields = { Product: { viewCount: ['viewCount'], ratingSum: ['averageRating', 'reviewCount'] } };
  const entity = keys.entity('Product', 'p1');

  it('names the fields that show a change when every changed field is declared', () => {
    expect(changedDependencies(keys, fields, 'Product', 'p1', ['viewCount'])).toEqual([`${entity}#viewCount`]);
    expect(changedDependencies(keys, fields, 'Product', 'p1', ['viewCount', 'ratingSum'])).toEqual([
      `${entity}#viewCount`,
      `${entity}#averageRating`,
      `${entity}#reviewCount`,
    ]);
  });

  it('falls back to the whole entity for anything else', () => {
    expect(changedDependencies(keys, fields, 'Product', 'p1', ['name', 'viewCount'])).toEqual([entity]);
    expect(changedDependencies(keys, fields, 'Product', 'p1', [])).toEqual([entity]);
    expect(changedDependencies(keys, fields, 'User', 'u1', ['name'])).toEqual([keys.entity('User', 'u1')]);
    expect(changedDependencies(keys, undefined, 'Product', 'p1', ['viewCount'])).toEqual([entity]);
    expect(changedDependencies(keys, fields, 'Product', 'p1', ['constructor', 'toString'])).toEqual([entity]);
  });
});
