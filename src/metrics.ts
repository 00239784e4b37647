import { Counter, Registry, collectDefaultMetrics } from 'prom-client';

/** The Prometheus metrics of one server (a registry each, so tests can run several). */
export interface Metrics {
  registry: Registry;
  /** MongoDB commands sent, by command name. */
  mongoCommands: Counter<'command'>;
  /** GraphQL operations served, by operation type and outcome (ok, error). */
  graphqlOperations: Counter<'type' | 'outcome'>;
}

/** A registry with Node's default metrics and the server's own counters. */
export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return {
    registry,
    mongoCommands: new Counter({
      name: 'mongodb_commands_total',
      help: 'MongoDB commands sent, by command name.',
      labelNames: ['command'],
      registers: [registry],
    }),
    graphqlOperations: new Counter({
      name: 'graphql_operations_total',
      help: 'GraphQL operations served, by operation type and outcome.',
      labelNames: ['type', 'outcome'],
      registers: [registry],
    }),
  };
}
