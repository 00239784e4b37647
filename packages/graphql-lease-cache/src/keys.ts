import { createHash } from 'node:crypto';
import calculateSlot from 'cluster-key-slot';

/**
 * Every Redis key the application uses is built here, and nowhere else.
 *
 *   {ns}:v{n}:{User:65f0…}                      an entity
 *   {ns}:v{n}:{User:65f0…}:lease                 its fill lease
 *   {ns}:v{n}:{Product:65f0…}:f:reviews:{definition}:{argsHash}[:u:{viewerId}]   a field value
 *   {ns}:v{n}:{Product:65f0…}:t:{tag}            a tag version (what depends on it stores the version it saw)
 *   {ns}:{Product:65f0…}:wb                      its write-behind changes not yet in the source
 *   {ns}:{wb}:writes, :dead, :leader             the write-behind stream, dead letters, worker lease
 *   {ns}:{wb~<tag>}:writes, :dead, :fence         on a Cluster, the write-behind stream of one slot, its
 *                                                dead letters, the worker's fence there (`<tag>` lands in the slot)
 *   {ns}:{wb}:streams                            on a Cluster, the registry of the slot streams
 *   {ns}:{lock}:<name>                           a lock or lease of the application's (e.g. `products:65f0…`)
 *   {ns}:v{n}:{<kind>:<id>}                      a keyed value (cache.values(kind)), e.g. the app's sessions
 *   {ns}:v{n}:{apq:<sha256 of Apollo's key>}     an automatic persisted query
 *   {ns}:v{n}:{resp:<shard>}                     a response shard: its incarnation, clock and dependency epochs
 *   {ns}:v{n}:{resp:<shard>}:r:<hash>            a whole response, in its shard's slot
 *   {ns}:{fleet}, {ns}:{fleet}:log                the fleet's members and leases, and its log of invalidations
 *   {ns}:fleet:inv, {ns}:fleet:ack                not keys: the fleet's pub/sub channels
 *   {ns}:v{n}:{Product:65f0…}#viewCount          not a key: a response dependency on one field of an entity
 *
 * The `{…}` part is a Redis Cluster hash tag: an entity, its lease, its fields and its tags
 * share one slot, so the Lua scripts that touch them together stay atomic under Cluster. The
 * prefix carries a namespace and the stored-shape version, so a deploy that changes what is
 * stored bumps the version and never reads old values (they expire on their own). Write-behind
 * keys have no version: they hold changes the source does not have yet, which a deploy that
 * changes the cached shape must still find and apply.
 */
export interface Keyspace {
  /** `{ns}:v{n}`: everything this application stores starts with it. */
  readonly prefix: string;
  /** The key of an entity `type` (e.g. `User`) with id `id`. */
  entity(type: string, id: string): string;
  /**
   * The key of a field of an entity: `definition` is the hash of the field's definition (SDL and
   * resolver version, see field-cache.ts), so a deploy that changes either reads none of the old
   * values; `viewerId` for PRIVATE fields, keyed per viewer.
   */
  field(type: string, id: string, field: string, definition: string, argsHash: string, viewerId?: string): string;
  /** A tag of an entity (the slot of `type:id`): a version key that its dependants compare with. */
  tag(type: string, id: string, tag: string): string;
  /** The hash of an entity's write-behind changes that the database does not have yet (no expiry, no version). */
  pending(type: string, id: string): string;
  /**
   * Write-behind's queue: on one Redis, the stream, its dead letters and a key for entries too
   * broken to name their entity; everywhere, the worker leader's lease; on a Cluster, one
   * {@link WriteQueueShard} per slot, the registry of their streams and the pattern that finds them.
   */
  readonly writeQueue: WriteQueueKeys;
  /** The lease of any value key. */
  lease(key: string): string;
  /**
   * The fleet's hash (members, leases, incarnation), its log of invalidations, and its pub/sub
   * channels (fleet/): no version, so that instances of two deploys are one fleet.
   */
  readonly fleet: { hash: string; log: string; channel: string; ackChannel: string };
  /**
   * A cross-process lock or lease the application names (`:`-separated parts, e.g.
   * `products:65f0…`): all in one slot, so that a script can take several at once; no version,
   * so that instances of two deploys share them.
   */
  lock(name: string): string;
  /** An automatic persisted query, by Apollo's cache key (`apq:<sha256>`), hashed to stay key-safe. */
  persistedQuery(key: string): string;
  /** The hash of response shard `shard` (see response-store.ts). */
  responseShard(shard: number): string;
  /** A whole response, by the hash of what it answers, in the slot of its shard. */
  response(shard: number, hash: string): string;
  /**
   * A response dependency finer than an entity: the field `field` of the entity `entityKey`
   * (`<entity key>#<field>`). Not a Redis key: a name the response store hashes into a bucket.
   */
  fieldDependency(entityKey: string, field: string): string;
  /**
   * The type of an entity key (`User` of `{ns}:v{n}:{User:65f0…}`), or null for any other key.
   * Keys of the same layout (`{session:…}`, `{lock}`) answer their slot type.
   */
  entityType(key: string): string | null;
}

/** The write-behind queue of one Cluster slot: every key in that slot (see {@link Keyspace.writeQueue}). */
export interface WriteQueueShard {
  /** The slot's stream of queued changes. */
  stream: string;
  /** Its dead letters. */
  dead: string;
  /** The worker leader's fence on the stream (its consumer; a new leader claims what the old one left). */
  fence: string;
  /** A placeholder for entries too broken to name their entity. */
  unnamed: string;
}

/** The keys of write-behind's queue (see {@link Keyspace.writeQueue}). */
export interface WriteQueueKeys {
  /** The stream on one Redis (all entities). */
  stream: string;
  /** Its dead letters. */
  dead: string;
  /** The worker leader's lease (one Redis and Cluster alike). */
  leader: string;
  /** A placeholder for entries too broken to name their entity (one Redis). */
  unnamed: string;
  /** On a Cluster: the set of slot streams producers have written to (a hint; a SCAN finds the others). */
  registry: string;
  /** On a Cluster: a `SCAN MATCH` pattern of the slot streams. */
  streamPattern: string;
  /** On a Cluster: the queue of the slot of entity `type:id` (its write-behind hash's slot). */
  ofEntity(type: string, id: string): WriteQueueShard;
  /** On a Cluster: the queue whose stream is `stream`, or null when `stream` is no slot stream of this namespace. */
  ofStream(stream: string): WriteQueueShard | null;
}

/** Options of {@link createKeyspace}. */
export interface KeyspaceOptions {
  /** Application namespace; default `app`. Letters, digits, `-`, `_` and `.` only. */
  namespace?: string;
  /** Stored-shape version; bump it when the cached shape changes. Default 1. */
  version?: number;
}

const SAFE = /^[A-Za-z0-9_.-]+$/;
/** The most entity slots remembered per type by a keyspace. */
const SLOT_MEMO_SIZE = 50_000;

/** True when `value` may stand as a part of a key (a type, an id, a field name). */
export function isKeyPart(value: string): boolean {
  return SAFE.test(value);
}

function shardNumber(shard: number): number {
  if (!Number.isInteger(shard) || shard < 0) throw new TypeError(`a response shard is a non-negative integer, got ${shard}`);
  return shard;
}

/** The keyspace for a namespace and version (see the module comment for the layout). */
export function createKeyspace(options: KeyspaceOptions = {}): Keyspace {
  const namespace = options.namespace ?? 'app';
  const version = options.version ?? 1;
  if (!SAFE.test(namespace)) throw new TypeError(`cache namespace must match ${SAFE}, got ${JSON.stringify(namespace)}`);
  if (!Number.isInteger(version) || version < 1) throw new TypeError(`cache version must be a positive integer, got ${version}`);
  const prefix = `${namespace}:v${version}`;
  const part = (value: string, what: string): string => {
    if (!SAFE.test(value)) throw new TypeError(`cache key ${what} must match ${SAFE}, got ${JSON.stringify(value)}`);
    return value;
  };
  // A warm catalog page names a few hundred entity slots per request: each is checked and built
  // once, then remembered (bounded: the memo starts over past SLOT_MEMO_SIZE).
  const slots = new Map<string, Map<string, string>>();
  const entityStart = `${prefix}:{`;
  const slot = (type: string, id: string): string => {
    let byId = slots.get(type);
    const known = byId?.get(id);
    if (known !== undefined) return known;
    const built = `${prefix}:{${part(type, 'type')}:${part(id, 'id')}}`;
    if (!byId) slots.set(type, (byId = new Map()));
    if (byId.size >= SLOT_MEMO_SIZE) byId.clear();
    byId.set(id, built);
    return built;
  };
  const pending = (type: string, id: string): string => `${namespace}:{${part(type, 'type')}:${part(id, 'id')}}:wb`;
  return {
    prefix,
    entity: slot,
    field(type, id, field, definition, argsHash, viewerId) {
      const key = `${slot(type, id)}:f:${part(field, 'field')}:${part(definition, 'field definition hash')}:${part(argsHash, 'args hash')}`;
      return viewerId === undefined ? key : `${key}:u:${part(viewerId, 'viewer id')}`;
    },
    tag: (type, id, tag) => `${slot(type, id)}:t:${part(tag, 'tag')}`,
    pending,
    writeQueue: writeQueueKeys(namespace, pending),
    lease: (key) => `${key}:lease`,
    fleet: fleetNames(namespace),
    lock: (name) =>
      `${namespace}:{lock}:${name
        .split(':')
        .map((p) => part(p, 'lock name part'))
        .join(':')}`,
    persistedQuery: (key) => `${prefix}:{apq:${createHash('sha256').update(key).digest('base64url')}}`,
    responseShard: (shard) => `${prefix}:{resp:${shardNumber(shard)}}`,
    response: (shard, hash) => `${prefix}:{resp:${shardNumber(shard)}}:r:${part(hash, 'response hash')}`,
    fieldDependency: (entityKey, field) => `${entityKey}#${part(field, 'field')}`,
    entityType(key) {
      if (!key.startsWith(entityStart) || key.charCodeAt(key.length - 1) !== 0x7d) return null; // }
      const colon = key.indexOf(':', entityStart.length);
      if (colon < 0 || key.indexOf('}', colon) !== key.length - 1) return null;
      const type = key.slice(entityStart.length, colon);
      return SAFE.test(type) && SAFE.test(key.slice(colon + 1, -1)) ? type : null;
    },
  };
}

/** The fleet's names in `namespace` (Keyspace.fleet): its hash and log in one slot, its channels. */
function fleetNames(namespace: string): Keyspace['fleet'] {
  return {
    hash: `${namespace}:{fleet}`,
    log: `${namespace}:{fleet}:log`,
    channel: `${namespace}:fleet:inv`,
    ackChannel: `${namespace}:fleet:ack`,
  };
}

/** The number of Redis Cluster slots. */
const SLOTS = 16_384;

/** Write-behind's queue keys in `namespace` (Keyspace.writeQueue); `pending` names an entity's hash. */
function writeQueueKeys(namespace: string, pending: (type: string, id: string) => string): WriteQueueKeys {
  const shards = new Map<number, WriteQueueShard>();
  const shard = (slot: number): WriteQueueShard => {
    let known = shards.get(slot);
    if (!known) {
      const tag = `${namespace}:{wb~${slotTag(slot)}}`;
      known = { stream: `${tag}:writes`, dead: `${tag}:dead`, fence: `${tag}:fence`, unnamed: `${tag}:unnamed` };
      shards.set(slot, known);
    }
    return known;
  };
  const start = `${namespace}:{wb~`;
  return {
    stream: `${namespace}:{wb}:writes`,
    dead: `${namespace}:{wb}:dead`,
    leader: `${namespace}:{wb}:leader`,
    unnamed: `${namespace}:{wb}:unnamed`,
    registry: `${namespace}:{wb}:streams`,
    streamPattern: `${start}*}:writes`,
    ofEntity: (type, id) => shard(calculateSlot(pending(type, id))),
    ofStream(stream) {
      if (!stream.startsWith(start) || !stream.endsWith('}:writes')) return null;
      const found = shard(calculateSlot(stream));
      return found.stream === stream ? found : null;
    },
  };
}

/**
 * Per Cluster slot, the tag of its write-behind keys (`wb~<tag>` lands in the slot): the first
 * base-36 number that does. Computed once per process (about 80k CRC16s, tens of milliseconds).
 * Never change the rule: it names streams that hold changes the database does not have yet.
 */
let slotTags: string[] | undefined;

function slotTag(slot: number): string {
  if (!slotTags) {
    const tags = new Array<string>(SLOTS);
    let left = SLOTS;
    for (let n = 0; left > 0; n += 1) {
      const tag = n.toString(36);
      const at = calculateSlot(`wb~${tag}`);
      if (tags[at] === undefined) {
        tags[at] = tag;
        left -= 1;
      }
    }
    slotTags = tags;
  }
  const tag = slotTags[slot];
  if (tag === undefined) throw new RangeError(`not a Cluster slot: ${slot}`);
  return tag;
}
