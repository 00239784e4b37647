import { GraphQLError, GraphQLScalarType, Kind } from 'graphql';
import type { Resolvers } from '../generated/graphql.js';

function toDate(value: unknown): Date {
  const date = typeof value === 'string' || typeof value === 'number' ? new Date(value) : value;
  if (!(date instanceof Date) || Number.isNaN(date.getTime())) {
    throw new GraphQLError(`DateTime must be an ISO-8601 date-time, got ${JSON.stringify(value)}`, {
      extensions: { code: 'BAD_USER_INPUT' },
    });
  }
  return date;
}

/** The `DateTime` scalar: Date inside, ISO-8601 UTC strings outside. */
export const scalarResolvers: Resolvers = {
  DateTime: new GraphQLScalarType<Date, string>({
    name: 'DateTime',
    description: 'An ISO-8601 date-time in UTC.',
    serialize: (value) => toDate(value).toISOString(),
    parseValue: (value) => toDate(value),
    parseLiteral: (ast) => {
      if (ast.kind !== Kind.STRING) throw new GraphQLError('DateTime must be a string', { extensions: { code: 'BAD_USER_INPUT' } });
      return toDate(ast.value);
    },
  }),
};
