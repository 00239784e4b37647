import type { RedisClient } from '../../redis-client.js';
import { ENQUEUE } from './enqueue.js';
import { LEAD, READ, RESIGN } from './leader.js';
import { READ_FENCED } from './read-fenced.js';
import { SETTLE } from './settle.js';

/** A stream's entries as XREADGROUP replies them: `[id, [field, value, …]]` (null fields: deleted). */
export type StreamEntries = [string, string[] | null][];

/** A consumer group's reply: per stream, its entries. */
export type StreamReply = [string, StreamEntries][];

/** The write-behind scripts as client commands (each script's module states its KEYS, ARGV and reply). */
export interface WriteBehindCommands {
  /** (stream, hash, entity key, type, id, change, max pending, deadline); null when refused. */
  glcEnqueue(...args: string[]): Promise<string | null>;
  /** (number of keys, keys…, args…). */
  glcSettle(numKeys: number, ...args: (string | number)[]): Promise<number>;
  /** (leader key, consumer, ttl ms). */
  glcLead(...args: (string | number)[]): Promise<number>;
  /** (leader key, stream, consumer, group, count, from id). */
  glcRead(...args: (string | number)[]): Promise<StreamReply | 0>;
  /** (leader key, consumer). */
  glcResign(...args: string[]): Promise<number>;
  /** (fence, stream, consumer, group, count, from id, fence ttl ms, also new: '1' | '0'). */
  glcReadFenced(...args: (string | number)[]): Promise<[StreamEntries, StreamEntries, number] | 0>;
}

/** Defines the producer's script on `client` (idempotent). */
export function defineQueueCommands(client: RedisClient): RedisClient & Pick<WriteBehindCommands, 'glcEnqueue'> {
  client.defineCommand('glcEnqueue', { numberOfKeys: 3, lua: ENQUEUE });
  return client as RedisClient & Pick<WriteBehindCommands, 'glcEnqueue'>;
}

/** Defines the worker's scripts on `client` (idempotent). */
export function defineWorkerCommands(client: RedisClient): RedisClient & WriteBehindCommands {
  client.defineCommand('glcSettle', { lua: SETTLE });
  client.defineCommand('glcLead', { numberOfKeys: 1, lua: LEAD });
  client.defineCommand('glcResign', { numberOfKeys: 1, lua: RESIGN });
  client.defineCommand('glcRead', { numberOfKeys: 2, lua: READ });
  client.defineCommand('glcReadFenced', { numberOfKeys: 2, lua: READ_FENCED });
  return client as RedisClient & WriteBehindCommands;
}
