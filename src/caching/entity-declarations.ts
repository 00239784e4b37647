import { getDirective } from '@graphql-tools/utils';
import { type GraphQLObjectType, type GraphQLSchema, isObjectType } from 'graphql';

// This file imports nothing generated: the codegen plugin (scripts/codegen-entities.ts) reads
// the schema with it to write src/generated/entities.ts, which must work while that file is stale.

/** How a type's updates reach the cache (see docs/write-policies.md). */
export const WRITE_POLICIES = ['invalidate', 'refresh', 'write-behind'] as const;
export type WritePolicy = (typeof WRITE_POLICIES)[number];

/** What the schema's `@entity` says of one entity type. */
export interface EntityPolicy {
  /** The write policy of its updates when `CACHE_WRITE_POLICIES` does not name the type. */
  default: WritePolicy;
  writeBehind: {
    /**
     * What a queued change may touch on its documents: the fields it may set and the counters it
     * may increment. The worker refuses anything else.
     */
    set: readonly string[];
    inc: readonly string[];
    /**
     * Under `write-behind`, what an update that writes MongoDB itself (a field that is never
     * written behind, or no queue: see services/entity-writers.ts) does to the cached document.
     */
    synchronous: 'refresh' | 'invalidate';
  };
}

/** The arguments of `@entity` as graphql-js coerces them (enum values by name). */
interface EntityArgs {
  writePolicy: 'INVALIDATE' | 'REFRESH' | 'WRITE_BEHIND';
  writeBehind: { set: string[]; inc: string[]; synchronous: 'INVALIDATE' | 'REFRESH' };
}

/** `WRITE_BEHIND` -> `write-behind`: the schema's enum value as `CACHE_WRITE_POLICIES` spells it. */
const policyOf = <P extends string>(value: P): Lowercase<P> => value.toLowerCase().replace('_', '-') as Lowercase<P>;

/** Every `@entity` type of `schema` with what it declares, in name order (as codegen writes them). */
export function readEntityDeclarations(schema: GraphQLSchema): Map<string, EntityPolicy> {
  const declared = new Map<string, EntityPolicy>();
  for (const type of Object.values(schema.getTypeMap()).sort((a, b) => a.name.localeCompare(b.name))) {
    if (!isObjectType(type)) continue;
    const args = entityArgs(schema, type);
    if (!args) continue;
    declared.set(type.name, {
      default: policyOf(args.writePolicy) as WritePolicy,
      writeBehind: { set: args.writeBehind.set, inc: args.writeBehind.inc, synchronous: policyOf(args.writeBehind.synchronous) },
    });
  }
  return declared;
}

/** The arguments of `type`'s `@entity`, if any; a value the SDL's types refuse throws an {@link EntityConfigError}. */
function entityArgs(schema: GraphQLSchema, type: GraphQLObjectType): EntityArgs | undefined {
  try {
    return getDirective(schema, type, 'entity')?.[0] as EntityArgs | undefined;
  } catch (error) {
    // makeExecutableSchema does not validate a directive's arguments: reading them does.
    throw new EntityConfigError(`@entity on ${type.name}: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/** Thrown at start-up by {@link checkEntityDeclarations}; its message names every mismatch. */
export class EntityConfigError extends Error {
  override readonly name = 'EntityConfigError';
}

/** What {@link checkEntityDeclarations} needs of an entity model: mongoose's schema paths. */
export interface EntityModel {
  schema: { path(name: string): { instance: string } | undefined };
}

/** Options of {@link checkEntityDeclarations}. */
export interface CheckEntityDeclarationsOptions {
  schema: GraphQLSchema;
  /** The code's entity types: the model of each, by type name (models/index.ts ENTITY_MODELS). */
  models: Readonly<Record<string, EntityModel>>;
  /** What the code was generated from (src/generated/entities.ts ENTITY_POLICIES). */
  generated: Readonly<Record<string, EntityPolicy>>;
}

/**
 * Checks the schema's `@entity` declarations against the code both ways, as the field cache checks
 * `@cached`: every declared type has an entity model whose documents have each field it may write
 * behind (each counter a number), every entity model is declared, and the generated constant is
 * what the schema says (else `npm run codegen` was not run). Throws an {@link EntityConfigError}
 * listing every mismatch, so that start-up stops before anything connects.
 */
export function checkEntityDeclarations(options: CheckEntityDeclarationsOptions): void {
  const { models, generated } = options;
  const declared = readEntityDeclarations(options.schema);
  const problems: string[] = [];
  const known = Object.keys(models).join(', ') || 'none';
  for (const [type, policy] of declared) {
    const model = models[type];
    if (!model) {
      problems.push(`@entity on ${type}: the code has no entity model ${type} (entity models: ${known})`);
      continue;
    }
    for (const field of policy.writeBehind.set) {
      if (!model.schema.path(field))
        problems.push(`@entity on ${type}: writeBehind.set names "${field}", which ${type} documents do not have`);
    }
    for (const field of policy.writeBehind.inc) {
      const instance = model.schema.path(field)?.instance;
      if (instance !== 'Number')
        problems.push(
          `@entity on ${type}: writeBehind.inc names "${field}", which ${type} documents ${instance ? `have as a ${instance}, not a number` : 'do not have'}`,
        );
    }
  }
  for (const type of Object.keys(models)) {
    if (!declared.has(type)) problems.push(`entity model ${type} has no @entity declaration in schema/*.graphql`);
  }
  const inSchema = JSON.stringify(Object.fromEntries(declared));
  if (inSchema !== JSON.stringify(generated)) {
    problems.push(`src/generated/entities.ts does not match the schema's @entity declarations: run \`npm run codegen\``);
  }
  if (problems.length) throw new EntityConfigError(`Entity declarations do not match the code:\n  ${problems.join('\n  ')}`);
}
