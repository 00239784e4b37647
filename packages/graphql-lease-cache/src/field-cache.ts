import { createHash } from 'node:crypto';
import { getDirective } from '@graphql-tools/utils';
import DataLoader from 'dataloader';
import { astFromValue, isObjectType, print, type GraphQLField, type GraphQLSchema } from 'graphql';
import type { CacheTrace } from './trace.js';
import { at } from './at.js';
import type { CacheCore } from './core.js';
import type { Keyspace } from './keys.js';

/** Apollo's cache scope: PRIVATE values are keyed per viewer as well. */
export type CacheScope = 'PUBLIC' | 'PRIVATE';

/** What the schema says of one `@cached` field. */
export interface FieldPolicy {
  /** `Type.field`, e.g. `Product.averageRating`. */
  coordinate: string;
  /** From the field's (else its type's) `@cacheControl(maxAge:)`, in milliseconds. */
  ttlMs: number;
  scope: CacheScope;
  /** The owner's tags whose invalidation drops the value (`@cached(dependsOn:)`). */
  dependsOn: readonly string[];
}

/** The entity a field value belongs to: its key and tags live in this slot. */
export interface FieldOwner {
  /** A slot type: a GraphQL type (`Product`) or a collection name (`ProductList`). */
  type: string;
  id: string;
}

/** One value to resolve. */
export interface FieldItem<P, A> {
  parent: P;
  args: A;
  /** The viewer, for PRIVATE fields; undefined for PUBLIC ones. */
  viewerId: string | undefined;
}

/**
 * How the domain computes one cached field (the cache decides when). `P` is the parent, `A` the
 * arguments, `V` the value and `S` what `load` gets from the request (its loaders). A definition
 * is also the field's handle: see {@link FieldHandle}.
 */
export interface FieldDefinition<P, A, V, S> {
  coordinate: string;
  /** The slot type of every owner of this field (checked against the known tags at start-up). */
  ownerType: string;
  /**
   * The version of `load`'s computation, a positive integer; default 1. Bump it when a deploy
   * changes what `load` returns for the same data: the values cached by the older build are then
   * never read again (they expire with their TTL). A non-integer or one below 1 fails at start-up.
   */
  version?: number;
  /** The owner of the value for a parent and arguments; for a type's field, usually the parent itself. */
  owner(parent: P, args: A): FieldOwner;
  /**
   * The values of many items at once (one source query per batch): one per item, in order. Any
   * other length rejects every item of the batch with a TypeError naming the coordinate and the
   * counts, and nothing of the batch is cached.
   */
  load(items: readonly FieldItem<P, A>[], scope: S): Promise<V[]>;
}

/** Options of {@link FieldCache}. */
export interface FieldCacheOptions<S> {
  core: CacheCore;
  keys: Keyspace;
  schema: GraphQLSchema;
  definitions: readonly FieldDefinition<never, never, unknown, S>[];
  /** The tags the application invalidates, per owner type, e.g. `{ Product: ['reviews'] }`. */
  knownTags: Readonly<Record<string, readonly string[]>>;
}

/** A tag of an owner to invalidate. */
export interface TagRef extends FieldOwner {
  tag: string;
}

/** Thrown at start-up when the schema's caching declarations and the code disagree. */
export class FieldCacheConfigError extends Error {
  override readonly name = 'FieldCacheConfigError';
  readonly code = 'E_FIELD_CACHE_CONFIG';
}

type AnyDefinition<S> = FieldDefinition<unknown, unknown, unknown, S>;

/** What the cache knows of one `@cached` field, looked up once per load. */
interface Field<S> {
  policy: FieldPolicy;
  definition: AnyDefinition<S>;
  /** The field's name (the part of the coordinate after the dot), a key part. */
  name: string;
  /** The hash of the field's definition and version, a key part: see {@link definitionHash}. */
  hash: string;
}

/** One value to resolve, with its key built once. */
interface Request<S> {
  key: string;
  field: Field<S>;
  owner: FieldOwner;
  parent: unknown;
  args: unknown;
  viewerId: string | undefined;
}

const NO_TAGS: readonly string[] = [];

/**
 * Field-level caching declared in the schema: `@cached(dependsOn:)` with Apollo's
 * `@cacheControl(maxAge:, scope:)`. Each field value lives at
 * `{Owner:id}:f:<field>:<definition hash>:<args hash>[:u:<viewer>]`, in its owner's Cluster
 * slot (a deploy that changes the field's definition or version reads none of the older values),
 * and its owner's tags' versions are read into its lease and stored with it, so that
 * invalidating a tag (the product's reviews changed) drops every value that depends on it,
 * including one being computed.
 *
 * Per request, one DataLoader gathers every cached field resolved in the same tick — 50
 * products' `reviewCount`, `averageRating` and `reviews` — into one get-or-lease call, and
 * the misses of each field into one batch load.
 */
export class FieldCache<S> {
  readonly policies: ReadonlyMap<string, FieldPolicy>;
  /**
   * Per coordinate, the hash of its definition (the field's SDL, its policy and its definition's
   * `version`) that its keys carry: a deploy that changes either never reads the older values.
   */
  readonly definitionHashes: ReadonlyMap<string, string>;
  readonly #core: CacheCore;
  readonly #keys: Keyspace;
  readonly #fields: ReadonlyMap<string, Field<S>>;

  constructor(options: FieldCacheOptions<S>) {
    this.#core = options.core;
    this.#keys = options.keys;
    const policies = readFieldPolicies(options.schema);
    const definitions = new Map(options.definitions.map((d) => [d.coordinate, d as unknown as AnyDefinition<S>]));
    validate(policies, definitions, options.knownTags);
    this.policies = policies;
    const hashes = new Map<string, string>();
    const fields = new Map<string, Field<S>>();
    for (const [coordinate, policy] of policies) {
      const definition = definitions.get(coordinate) as AnyDefinition<S>;
      const hash = definitionHash(options.schema, policy, definition.version);
      hashes.set(coordinate, hash);
      fields.set(coordinate, { policy, definition, name: coordinate.slice(coordinate.indexOf('.') + 1), hash });
    }
    this.definitionHashes = hashes;
    this.#fields = fields;
  }

  /**
   * The cached-field loader of one request; `viewerId` resolves the viewer for PRIVATE fields;
   * `trace` counts its hits, misses and Redis round trips.
   */
  createLoader(scope: S, viewerId: () => Promise<string | undefined>, trace?: CacheTrace): FieldLoader {
    const loader = new DataLoader<Request<S>, unknown, string>((requests) => this.#fetch(requests, scope, trace), {
      cacheKeyFn: (request) => request.key,
    });
    const request = (field: Field<S>, parent: unknown, args: unknown, viewer: string | undefined): Request<S> => {
      const owner = field.definition.owner(parent, args);
      const key = this.#keys.field(owner.type, owner.id, field.name, field.hash, hashArgs(args), viewer);
      return { key, field, owner, parent, args, viewerId: viewer };
    };
    return {
      load: <P, A, V>(handle: FieldHandle<P, A, V>, parent: P, args: A): Promise<V> => {
        const field = this.#field(handle.coordinate);
        if (field.policy.scope !== 'PRIVATE') return loader.load(request(field, parent, args, undefined)) as Promise<V>;
        return viewerId().then((viewer) => loader.load(request(field, parent, args, viewer ?? '_')) as Promise<V>);
      },
    };
  }

  /**
   * Drops every field value that depends on these tags (after the write that changed them
   * committed). With `holdMs`, after a write of unknown outcome, see {@link CacheCore.invalidate}.
   */
  invalidate(tags: readonly TagRef[], options: { holdMs?: number } = {}): Promise<void> {
    return this.#core.invalidate(
      [],
      tags.map((t) => this.#keys.tag(t.type, t.id, t.tag)),
      options,
    );
  }

  async #fetch(requests: readonly Request<S>[], scope: S, trace: CacheTrace | undefined): Promise<unknown[]> {
    return this.#core.fetch<unknown>({
      name: (i) => at(requests, i, 'the batch').field.policy.coordinate,
      trace,
      keys: requests.map((r) => r.key),
      tags: requests.map(({ field, owner }) =>
        field.policy.dependsOn.length === 0 ? NO_TAGS : field.policy.dependsOn.map((tag) => this.#keys.tag(owner.type, owner.id, tag)),
      ),
      load: async (indexes) => {
        // Group the misses by field: one batch load each.
        const byField = new Map<Field<S>, number[]>();
        for (const index of indexes) {
          const field = at(requests, index, 'the batch').field;
          const group = byField.get(field);
          if (group) group.push(index);
          else byField.set(field, [index]);
        }
        const values = new Map<number, unknown>();
        await Promise.all(
          [...byField].map(async ([field, group]) => {
            const items = group.map((index) => {
              const r = at(requests, index, 'the batch');
              return { parent: r.parent, args: r.args, viewerId: r.viewerId };
            });
            const loaded: unknown = await field.definition.load(items, scope);
            // DataLoader's contract: a missing value must not pass for null and be cached as such.
            if (!Array.isArray(loaded) || loaded.length !== items.length) {
              const got = Array.isArray(loaded)
                ? `${loaded.length} values`
                : `${loaded === null ? 'null' : typeof loaded} instead of an array`;
              throw new TypeError(
                `the field loader of ${field.policy.coordinate} returned ${got} for ${items.length} items: it must return one per item, in order; nothing of this batch was cached`,
              );
            }
            group.forEach((index, i) => values.set(index, at(loaded, i, 'the loaded values')));
          }),
        );
        return indexes.map((index) => {
          const value = values.get(index);
          if (value === undefined && !values.has(index)) throw new RangeError(`the field batch: no value loaded for item ${index}`);
          // An undefined the loader returned counts as null, as it always has.
          return value ?? null;
        });
      },
      versionOf: () => 0,
      ttlMs: (_value, index) => at(requests, index, 'the batch').field.policy.ttlMs,
      // Kept past the TTL for the grace, and refreshed early near its end (see CacheCoreOptions).
      grace: true,
      refreshTtlMs: (index) => at(requests, index, 'the batch').field.policy.ttlMs,
    });
  }

  #field(coordinate: string): Field<S> {
    const field = this.#fields.get(coordinate);
    if (!field) throw new FieldCacheConfigError(`${coordinate} is not a @cached field`);
    return field;
  }
}

/**
 * A cached field as call sites name it: its definition (from {@link defineField}), whose types
 * give {@link FieldLoader.load} its parent, arguments and value. The cache finds the field by the
 * handle's coordinate, so a handle loads whatever definition the cache was configured with for it.
 */
export type FieldHandle<P, A, V> = FieldDefinition<P, A, V, never>;

/** What resolvers and services call: the value of a cached field for a parent and its arguments. */
export interface FieldLoader {
  /**
   * E.g. `fields.load(fields.productReviews, product, { first })`: `parent` and `args` are
   * checked against the handle's types (not inferred from them), and the value has its type.
   */
  load<P, A, V>(field: FieldHandle<P, A, V>, parent: NoInfer<P>, args: NoInfer<A>): Promise<V>;
}

/**
 * A definition with its types kept: the field's handle. Handles of different types fit in one
 * `FieldCacheOptions.definitions` list as they are.
 */
export function defineField<P, A, V, S>(definition: FieldDefinition<P, A, V, S>): FieldDefinition<P, A, V, S> {
  return definition;
}

/** Every `@cached` field of the schema with its TTL and scope from `@cacheControl`. */
export function readFieldPolicies(schema: GraphQLSchema): Map<string, FieldPolicy> {
  const policies = new Map<string, FieldPolicy>();
  for (const type of Object.values(schema.getTypeMap())) {
    if (!isObjectType(type) || type.name.startsWith('__')) continue;
    const typeHint = getDirective(schema, type, 'cacheControl')?.[0] as CacheControlArgs | undefined;
    for (const field of Object.values(type.getFields())) {
      const cached = getDirective(schema, field, 'cached')?.[0] as { dependsOn: string[] } | undefined;
      if (!cached) continue;
      const coordinate = `${type.name}.${field.name}`;
      const hint = getDirective(schema, field, 'cacheControl')?.[0] as CacheControlArgs | undefined;
      const maxAge = hint?.maxAge ?? typeHint?.maxAge;
      if (!maxAge || maxAge <= 0) {
        throw new FieldCacheConfigError(`@cached field ${coordinate} needs a @cacheControl(maxAge:) above 0 (its TTL in seconds)`);
      }
      policies.set(coordinate, {
        coordinate,
        ttlMs: maxAge * 1_000,
        scope: hint?.scope ?? typeHint?.scope ?? 'PUBLIC',
        dependsOn: cached.dependsOn,
      });
    }
  }
  return policies;
}

interface CacheControlArgs {
  maxAge?: number;
  scope?: CacheScope;
}

function validate<S>(
  policies: ReadonlyMap<string, FieldPolicy>,
  definitions: ReadonlyMap<string, AnyDefinition<S>>,
  knownTags: Readonly<Record<string, readonly string[]>>,
): void {
  const problems: string[] = [];
  for (const coordinate of definitions.keys()) {
    if (!policies.has(coordinate))
      problems.push(`a field loader is registered for ${coordinate}, but the schema has no @cached field ${coordinate}`);
  }
  for (const policy of policies.values()) {
    const definition = definitions.get(policy.coordinate);
    if (!definition) {
      problems.push(`@cached field ${policy.coordinate} has no field loader`);
      continue;
    }
    const version = definition.version ?? 1;
    if (!Number.isInteger(version) || version < 1)
      problems.push(`the field loader of ${policy.coordinate} has version ${String(version)}: a version is a positive integer`);
    const known = knownTags[definition.ownerType] ?? [];
    for (const tag of policy.dependsOn) {
      if (!known.includes(tag)) {
        problems.push(
          `@cached(dependsOn: ["${tag}"]) on ${policy.coordinate}: ${definition.ownerType} has no tag "${tag}" (known: ${known.join(', ') || 'none'})`,
        );
      }
    }
  }
  if (problems.length) throw new FieldCacheConfigError(`Field cache declarations do not match the code:\n  ${problems.join('\n  ')}`);
}

/**
 * The hash of what a field's cached values depend on besides the data: its SDL (type, arguments
 * with their defaults, its directives as declared), its policy (which takes the type's
 * `@cacheControl` into account) and the `version` of its computation. 8 base64url characters
 * (48 bits, key-safe); computed once per field at construction.
 */
function definitionHash(schema: GraphQLSchema, policy: FieldPolicy, version = 1): string {
  const [typeName = '', fieldName = ''] = policy.coordinate.split('.');
  const type = schema.getType(typeName);
  const field = isObjectType(type) ? type.getFields()[fieldName] : undefined;
  const text = [policy.coordinate, field ? fieldSdl(field) : '', stableStringify(policy), `version ${version}`].join('\n');
  return createHash('sha256').update(text).digest('base64url').slice(0, 8);
}

/**
 * A field's definition as SDL without its descriptions (a documentation change keeps the cache):
 * `name(arg: Type = default, …): Type @directive(…) …`. The directives are the declared ones
 * (the field's AST); a schema built in code has none there, and its policy stands for them.
 */
function fieldSdl(field: GraphQLField<unknown, unknown>): string {
  const args = field.args.map((arg) => {
    const value = arg.defaultValue === undefined ? undefined : astFromValue(arg.defaultValue, arg.type);
    return `${arg.name}: ${String(arg.type)}${value ? ` = ${print(value)}` : ''}`;
  });
  const directives = (field.astNode?.directives ?? []).map((directive) => print(directive));
  return `${field.name}(${args.join(', ')}): ${String(field.type)} ${directives.join(' ')}`;
}

const argsHashes = new Map<string, string>();
/** Distinct argument sets remembered (a field's arguments take few values; the memo is dropped past this). */
const ARGS_HASHES_KEPT = 10_000;

/**
 * A stable, key-safe hash of field arguments (key order does not matter), memoized: a page of
 * 50 products asks for the same few argument sets hundreds of times.
 */
export function hashArgs(args: unknown): string {
  const text = stableStringify(args);
  let hash = argsHashes.get(text);
  if (hash === undefined) {
    hash = createHash('sha256').update(text).digest('base64url').slice(0, 16);
    if (argsHashes.size >= ARGS_HASHES_KEPT) argsHashes.clear();
    argsHashes.set(text, hash);
  }
  return hash;
}

/** JSON with object keys sorted (and undefined members left out), so that equal values give equal text. */
export function stableStringify(value: unknown): string {
  if (value === undefined) return 'null';
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(stableStringify).join(',')}]`;
  const keys = Object.keys(value);
  // The common case, `{ first: 3 }`: nothing to sort.
  if (keys.length === 1) {
    const key = at(keys, 0, 'the keys of the arguments');
    const only = (value as Record<string, unknown>)[key];
    return only === undefined ? '{}' : `{${JSON.stringify(key)}:${stableStringify(only)}}`;
  }
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableStringify(v)}`).join(',')}}`;
}
