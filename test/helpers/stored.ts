import { type ABSENT, createCodec } from 'graphql-lease-cache';
import { payloadOf, versionOf } from 'graphql-lease-cache/testing';
import { objectIdReviver } from '../../src/models/object-id-reviver.js';

/** A client that reads a key as bytes: an ioredis Redis or Cluster (e.g. `t.app.redis`, `inspectRedis()`). */
export interface BufferReader {
  getBuffer(key: string): Promise<Buffer | null>;
}

/** A value as the cache stored it (`<version>|<stamp>|<etag>|<codec payload>`, or a floor `<version>|`). */
export interface StoredValue<T = unknown> {
  /** The version it was stored with. */
  version: number;
  /** The codec payload as stored (its marker byte first); null for a floor. */
  payload: Buffer | null;
  /** The decoded payload: `ABSENT` for a cached "no such document"; null for a floor (a version, no value). */
  value: T | typeof ABSENT | null;
}

// The codec as the app builds it (src/app.ts): its revivers are what decoding needs; the
// compression settings only choose how values are written.
const codec = createCodec({ revivers: [objectIdReviver] });

/**
 * What the cache stored at `key`, decoded with the app's codec; null when the key does not
 * exist. `T` is what the caller knows the value to be (nothing checks it).
 */
export async function storedValue<T = unknown>(redis: BufferReader | null | undefined, key: string): Promise<StoredValue<T> | null> {
  if (!redis) throw new Error('no Redis to read the cache from');
  const raw = await redis.getBuffer(key);
  if (!raw) return null;
  const version = versionOf(raw);
  if (version === null) throw new Error(`${key} holds no cached value: ${JSON.stringify(raw.subarray(0, 40).toString())}`);
  const payload = payloadOf(raw);
  return { version, payload, value: payload ? (codec.decode(payload) as T | typeof ABSENT) : null };
}
