import { Types } from 'mongoose';
import type { Reviver } from 'graphql-lease-cache';

/** Keeps mongoose's ObjectIds across the cache's JSON (`\0o:<hex>`), as documents hold them. */
export const objectIdReviver: Reviver<Types.ObjectId> = {
  tag: 'o',
  matches: (value): value is Types.ObjectId => value instanceof Types.ObjectId,
  toText: (id) => id.toHexString(),
  fromText: (hex) => new Types.ObjectId(hex),
};
