/**
 * graphql-lease-cache/envelop: the response cache as an Envelop plugin, for GraphQL Yoga, Hive
 * Gateway and any other Envelop server: `useResponseCache(options)`, and the `@cached` fields'
 * per-request loader: `useFieldCache(options)`.
 */
import { createHash } from 'node:crypto';
import type { Plugin } from '@envelop/core';
import { getOperationAST, print, type DocumentNode, type GraphQLSchema } from 'graphql';
import { ResponseRequests, type ExecutedResult, type ResponseCacheOptions } from '../response/cached-response.js';
import { cacheControlPolicy } from '../response/policy.js';
import type { CachePolicy } from '../response/stored.js';
import type { FieldCache, FieldLoader } from '../field-cache.js';
import type { CacheTrace } from '../trace.js';

export { ResponseFlights } from '../response/flights.js';
export { RESPONSE_STATS_NAME, type ExecutedResult, type ResponseCacheOptions, type ResponseOutcome } from '../response/cached-response.js';
export type { NotStoredReason, ResponseBudgetSettings } from '../response/budget.js';
export { cacheControlPolicy } from '../response/policy.js';
export type { CachePolicy } from '../response/stored.js';

/** Options of {@link useResponseCache}: the hooks of {@link ResponseCacheOptions}, and the policy of a response. */
export interface UseResponseCacheOptions<C> extends ResponseCacheOptions<C> {
  /**
   * The cache policy of an executed response (maxAge in seconds, scope), null: not stored.
   * Default: {@link cacheControlPolicy} from the schema's `@cacheControl` hints, with
   * `defaultMaxAgeSeconds` for what has none.
   */
  policy?(args: { ctx: C; schema: GraphQLSchema; document: DocumentNode; result: ExecutedResult }): CachePolicy | null;
  /** The maxAge of root and object fields without a `@cacheControl` hint, in seconds; default 0 (not cacheable), as Apollo's. */
  defaultMaxAgeSeconds?: number;
}

/**
 * Whole responses of queries, never stale, in an Envelop server: looked up before execution (a
 * hit is the stored `data`, and execution stops), stored after it when the response has no
 * errors and a policy with `maxAge > 0`. Streams (defer, subscriptions) are not stored. See
 * `responseCachePlugin` of `graphql-lease-cache/apollo` for what the key is and what is stored.
 * The per-request state is kept by the execution's context object.
 */
export function useResponseCache<C extends object>(options: UseResponseCacheOptions<C>): Plugin<C> {
  const requests = new ResponseRequests<C>(options);
  const documentHashes = new WeakMap<DocumentNode, string>();
  const hashOf = (document: DocumentNode): string => {
    let hash = documentHashes.get(document);
    if (hash === undefined) {
      hash = createHash('sha256').update(print(document)).digest('hex');
      documentHashes.set(document, hash);
    }
    return hash;
  };
  const policyOf = options.policy ?? ((args) => cacheControlPolicy(args.schema, args.document, options.defaultMaxAgeSeconds ?? 0));
  if (!requests.enabled) return {};
  return {
    async onExecute({ args, setResultAndStopExecution }) {
      const operationName = args.operationName ?? null;
      const operation = getOperationAST(args.document, operationName);
      if (operation?.operation !== 'query') return;
      const ctx = args.contextValue;
      const { schema, document } = args;
      const queryHash = hashOf(document);
      const hit = await requests.begin(ctx, { schema, queryHash, operationName, operation, variables: args.variableValues });
      if (hit) {
        setResultAndStopExecution({ data: hit.data });
        return;
      }
      return {
        async onExecuteDone({ result }) {
          const single = Symbol.asyncIterator in result ? null : (result as ExecutedResult);
          await requests.finish(ctx, {
            schema,
            document,
            queryHash,
            result: single ?? { errors: ['a stream'] },
            policy: single ? policyOf({ ctx, schema, document, result: single }) : null,
          });
        },
      };
    },
  };
}

/** Options of {@link useFieldCache}. */
export interface UseFieldCacheOptions<C, S> {
  /** The field cache, built once from the schema's `@cached` declarations (it fails at start-up on a mismatch). */
  fieldCache: FieldCache<S>;
  /** What the fields' computations are given for this request (its loaders, say). */
  scope(ctx: C): S;
  /** The viewer's id, for PRIVATE fields (kept per viewer); undefined when anonymous. */
  viewerId(ctx: C): Promise<string | undefined>;
  /** The CacheTrace of the request (the response cache collects the fields' keys and tags in it). */
  trace?(ctx: C): CacheTrace | undefined;
}

/**
 * The `@cached` fields in an Envelop server: each request's context gets `fields`, a per-request
 * loader (`ctx.fields.load(handle, parent, args)` in a resolver) that batches the fields' cache
 * reads and computes the misses under leases. In Apollo Server, build the same loader in the
 * context function: `fields: fieldCache.createLoader(scope, viewerId, trace)`.
 */
export function useFieldCache<C extends object, S>(options: UseFieldCacheOptions<C, S>): Plugin<C & { fields?: FieldLoader }> {
  return {
    onContextBuilding({ context, extendContext }) {
      const ctx = context as C;
      const trace = options.trace?.(ctx);
      extendContext({ fields: options.fieldCache.createLoader(options.scope(ctx), () => options.viewerId(ctx), trace) } as Partial<
        C & { fields?: FieldLoader }
      >);
    },
  };
}
