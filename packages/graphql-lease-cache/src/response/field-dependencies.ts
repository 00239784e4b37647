import { TypeInfo, isAbstractType, visit, visitWithTypeInfo, type DocumentNode, type GraphQLSchema } from 'graphql';
import type { Cache } from '../create-cache.js';

/** How many documents' selected fields are remembered before the memo starts afresh. */
const SELECTED_FIELDS_MEMO = 1_000;

/**
 * `Type.field` of every field a document selects (for an interface or union, on each of its
 * types), remembered by document hash (a small memo per process).
 */
export class SelectedFields {
  readonly #memo = new Map<string, ReadonlySet<string>>();

  /** The fields of `document`, whose hash is `documentHash`. */
  of(schema: GraphQLSchema, document: DocumentNode, documentHash: string): ReadonlySet<string> {
    const known = this.#memo.get(documentHash);
    if (known) return known;
    const fields = new Set<string>();
    const typeInfo = new TypeInfo(schema);
    visit(
      document,
      visitWithTypeInfo(typeInfo, {
        Field(node) {
          const parent = typeInfo.getParentType();
          if (!parent) return;
          const types = isAbstractType(parent) ? schema.getPossibleTypes(parent) : [parent];
          for (const type of types) fields.add(`${type.name}.${node.name.value}`);
        },
      }),
    );
    if (this.#memo.size >= SELECTED_FIELDS_MEMO) this.#memo.clear();
    this.#memo.set(documentHash, fields);
    return fields;
  }
}

/**
 * Field dependencies (`cache.responseFields`): for each entity type whose fields some writes
 * name (a product's `viewCount`), a response that selects such a field also records
 * `<entity key>#<field>` for each entity of the type it read. Those writes void only these: a
 * response that selects none of them survives them.
 */
export function addFieldDependencies(cache: Cache, dependencies: Set<string>, selected: ReadonlySet<string>): void {
  const wanted = new Map<string, string[]>();
  for (const [type, fields] of cache.responseFields) {
    const chosen = [...fields].filter((field) => selected.has(`${type}.${field}`));
    if (chosen.length > 0) wanted.set(type, chosen);
  }
  if (wanted.size === 0) return;
  for (const dependency of [...dependencies]) {
    const type = cache.keys.entityType(dependency);
    const fields = type === null ? undefined : wanted.get(type);
    if (fields) for (const field of fields) dependencies.add(cache.keys.fieldDependency(dependency, field));
  }
}
