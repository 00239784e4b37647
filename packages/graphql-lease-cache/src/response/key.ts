import { createHash } from 'node:crypto';
import { getOperationAST, getVariableValues, parse, type GraphQLSchema, type OperationDefinitionNode } from 'graphql';
import { stableStringify } from '../field-cache.js';

/**
 * What a stored response is the answer to, and nothing more: the document (its SHA-256, as
 * Apollo's `queryHash`), the operation name, the values of the variables the operation declares
 * (coerced as execution coerces them, defaults applied, undeclared ones dropped), and the id of
 * a live session. Anything else a client sends (a junk variable, `1.0` for `1`, a token that
 * opens no session) names the same response, so it cannot make the server store another one.
 */
export interface ResponseKeyInput {
  /** The document's SHA-256 in hex (Apollo's `queryHash`). */
  queryHash: string;
  operationName: string | null;
  operation: OperationDefinitionNode;
  /** The request's raw `variables`. */
  variables: unknown;
  /** The id of the request's session when it is live (the `sessionId` hook's); null for anyone else (anonymous). */
  sessionId: string | null;
}

/**
 * The key of a response (see {@link ResponseKeyInput}), or null when the request cannot be a
 * stored query: variables that do not coerce (execution answers with an error, never stored),
 * or nested deeper than the stack allows.
 */
export function responseKey(schema: GraphQLSchema, input: ResponseKeyInput): string | null {
  const raw = input.variables ?? {};
  if (typeof raw !== 'object' || Array.isArray(raw)) return null;
  try {
    const coerced = getVariableValues(schema, input.operation.variableDefinitions ?? [], raw as Record<string, unknown>, {
      maxErrors: 1,
    });
    if ('errors' in coerced) return null;
    // Through JSON first: a custom scalar's value (a Date) is compared by what it serializes to.
    const variables = JSON.parse(JSON.stringify(coerced.coerced)) as unknown;
    return createHash('sha256')
      .update(stableStringify([input.queryHash, input.operationName, variables, input.sessionId]))
      .digest('base64url');
  } catch {
    return null;
  }
}

/** How many operations {@link OperationShapes} remembers before it starts afresh. */
const SHAPES_MEMO = 1_000;
/** Longer documents are parsed each time rather than remembered (the memo stays small). */
const SHAPE_MEMO_MAX_QUERY_LENGTH = 16_384;

/**
 * The operations of documents the fast path has seen, parsed without locations (so that a
 * remembered one keeps no copy of the text), by document hash and operation name. Parsing with
 * the server's token limit; a document that does not parse, or whose operation cannot be chosen,
 * is the server's to answer (null).
 */
export class OperationShapes {
  readonly #memo = new Map<string, OperationDefinitionNode | null>();
  readonly #maxTokens: number | undefined;

  /** `maxTokens`: graphql-js's parse limit, as the server parses with it; default none. */
  constructor(options: { maxTokens?: number } = {}) {
    this.#maxTokens = options.maxTokens;
  }

  /** The operation of `query` named `operationName` (or its only one), or null. */
  operation(queryHash: string, query: string, operationName: string | null): OperationDefinitionNode | null {
    const memoKey = `${queryHash}\u0000${operationName ?? ''}`;
    const known = this.#memo.get(memoKey);
    if (known !== undefined) return known;
    let operation: OperationDefinitionNode | null;
    try {
      const document = parse(query, { noLocation: true, ...(this.#maxTokens === undefined ? {} : { maxTokens: this.#maxTokens }) });
      operation = getOperationAST(document, operationName) ?? null;
    } catch {
      operation = null;
    }
    if (query.length <= SHAPE_MEMO_MAX_QUERY_LENGTH) {
      if (this.#memo.size >= SHAPES_MEMO) this.#memo.clear();
      this.#memo.set(memoKey, operation);
    }
    return operation;
  }
}
