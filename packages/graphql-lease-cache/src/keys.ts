import { createHash } from 'node:crypto';

/**
 * Every Redis key the application uses is built here, and nowhere else.
 *
 *   {ns}:v{n}:{User:65f0…}                      an entity
 *   {ns}:v{n}:{User:65f0…}:lease                 its fill lease
 *   {ns}:v{n}:{Product:65f0…}:f:reviews:{definition}:{argsHash}[:u:{viewerId}]   a field value
 *   {ns}:v{n}:{Product:65f0…}:t:{tag}            a tag version (what depends on it stores the version it saw)
 *   {ns}:{Product:65f0…}:wb                      its write-behind changes not yet in the source
 *   {ns}:{wb}:writes, :dead, :leader             the write-behind stream, dead letters, worker lease
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
  /** The write-behind stream, its dead letters, the worker leader's lease, and a key for entries too broken to name their entity. */
  readonly writeQueue: { stream: string; dead: string; leader: string; unnamed: string };
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
  return {
    prefix,
    entity: slot,
    field(type, id, field, definition, argsHash, viewerId) {
      const key = `${slot(type, id)}:f:${part(field, 'field')}:${part(definition, 'field definition hash')}:${part(argsHash, 'args hash')}`;
      return viewerId === undefined ? key : `${key}:u:${part(viewerId, 'viewer id')}`;
    },
    tag: (type, id, tag) => `${slot(type, id)}:t:${part(tag, 'tag')}`,
    pending: (type, id) => `${namespace}:{${part(type, 'type')}:${part(id, 'id')}}:wb`,
    writeQueue: {
      stream: `${namespace}:{wb}:writes`,
      dead: `${namespace}:{wb}:dead`,
      leader: `${namespace}:{wb}:leader`,
      unnamed: `${namespace}:{wb}:unnamed`,
    },
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
