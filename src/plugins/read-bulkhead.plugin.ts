import type { ApolloServerPlugin } from '@apollo/server';

/** What {@link readBulkheadPlugin} needs of the context. */
export interface ExemptableContext {
  /** Lets the request's reads skip the read bulkhead (context.ts). */
  exemptFromReadBulkhead(): void;
}

/**
 * A mutation's reads skip the read bulkhead (loaders/read-bulkhead.ts): they are part of a
 * write (requireAdmin's viewer, the entity it checks, the answer), and a storm of queries must
 * not make a write fail. Decided once the operation is known, before any resolver runs.
 */
export function readBulkheadPlugin<C extends ExemptableContext>(): ApolloServerPlugin<C> {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ operation, contextValue }) {
          if (operation?.operation === 'mutation') contextValue.exemptFromReadBulkhead();
        },
      };
    },
  };
}
