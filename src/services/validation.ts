import { Types } from 'mongoose';
import { z } from 'zod';
import { badInput } from '../errors.js';

/** The largest `first` any list accepts, and the most ids `users(ids:)` takes. */
export const MAX_PAGE_SIZE = 100;

/** The id as an ObjectId, or a BAD_USER_INPUT error naming `field` for anything but 24 hex digits. */
export function parseId(value: string, field = 'id'): Types.ObjectId {
  if (!/^[0-9a-fA-F]{24}$/.test(value))
    throw badInput(field, `${field}: must be an id of 24 hex digits (got ${JSON.stringify(value.slice(0, 40))})`, 'MALFORMED_ID');
  return new Types.ObjectId(value);
}

/** `first` checked against 1..{@link MAX_PAGE_SIZE}; BAD_USER_INPUT otherwise. */
export function parseFirst(value: number | null | undefined, fallback: number): number {
  const first = value ?? fallback;
  if (!Number.isInteger(first) || first < 1 || first > MAX_PAGE_SIZE) {
    throw badInput('first', `first: must be between 1 and ${MAX_PAGE_SIZE} (got ${first})`, 'OUT_OF_RANGE');
  }
  return first;
}

/**
 * Validates `value` with a zod schema and returns the parsed value; the first issue becomes a
 * BAD_USER_INPUT error whose `field` is the input path, e.g. `input.email`.
 */
export function parseInput<T extends z.ZodType>(schema: T, value: unknown, root: string): z.output<T> {
  const result = schema.safeParse(value, { error: mustMessage });
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const field = [root, ...(issue?.path ?? [])].join('.');
  throw badInput(field, `${field}: ${issue?.message ?? 'is invalid'}`, 'INVALID');
}

/**
 * Zod's own messages for the limits given without one, worded as the messages written out below
 * ("must …"): `input.name: must have at most 100 characters`, not "Too big: expected string to
 * have <=100 characters". A message given in the schema takes precedence; undefined keeps zod's.
 */
const mustMessage: z.core.$ZodErrorMap = (issue) => {
  const things = issue.origin === 'string' ? ' characters' : issue.origin === 'array' ? ' items' : '';
  switch (issue.code) {
    case 'too_big':
      if (issue.origin === 'number') return `must be ${issue.inclusive ? 'at most' : 'less than'} ${issue.maximum}`;
      return things ? `must have at most ${issue.maximum}${things}` : undefined;
    case 'too_small':
      if (issue.origin === 'number') return `must be ${issue.inclusive ? 'at least' : 'more than'} ${issue.minimum}`;
      if (!things) return undefined;
      return Number(issue.minimum) <= 1 ? 'must not be empty' : `must have at least ${issue.minimum}${things}`;
    case 'invalid_type':
      return issue.expected === 'int' ? 'must be an integer' : `must be ${/^[aeiou]/.test(issue.expected) ? 'an' : 'a'} ${issue.expected}`;
    case 'invalid_format':
      return `must be a valid ${issue.format === 'email' ? 'email address' : issue.format}`;
    default:
      return undefined;
  }
};

const nonNull = <T extends z.ZodType>(schema: T) => schema.optional().refine((v) => v !== null, 'must not be null');

/** Shapes and limits of each mutation input (the GraphQL types check only the types). */
export const inputs = {
  createUser: z.object({
    name: z.string().trim().min(1, 'must not be empty').max(100),
    email: z
      .email('must be a valid email address')
      .max(254)
      .transform((e) => e.toLowerCase()),
    password: z.string().min(8, 'must have at least 8 characters').max(200),
  }),
  updateUser: z
    .object({
      name: nonNull(z.string().trim().min(1, 'must not be empty').max(100).nullable()),
      email: nonNull(
        z
          .email('must be a valid email address')
          .max(254)
          .transform((e) => e.toLowerCase())
          .nullable(),
      ),
    })
    .refine((v) => Object.values(v).some((x) => x !== undefined), 'must have a field to change'),
  createProduct: z.object({
    name: z.string().trim().min(1, 'must not be empty').max(200),
    description: z.string().max(10_000).nullish(),
    priceCents: z.number().int().min(0, 'must not be negative'),
    category: z.string().trim().min(1, 'must not be empty').max(50),
    stock: z.number().int().min(0, 'must not be negative'),
  }),
  updateProduct: z
    .object({
      name: nonNull(z.string().trim().min(1, 'must not be empty').max(200).nullable()),
      description: z.string().max(10_000).nullish(),
      priceCents: nonNull(z.number().int().min(0, 'must not be negative').nullable()),
      category: nonNull(z.string().trim().min(1, 'must not be empty').max(50).nullable()),
      stock: nonNull(z.number().int().min(0, 'must not be negative').nullable()),
    })
    .refine((v) => Object.values(v).some((x) => x !== undefined), 'must have a field to change'),
  createReview: z.object({
    productId: z.string(),
    rating: z.number().int().min(1, 'must be between 1 and 5').max(5, 'must be between 1 and 5'),
    body: z.string().max(5_000).nullish(),
  }),
  orderItems: z
    .array(z.object({ productId: z.string(), quantity: z.number().int().min(1, 'must be at least 1').max(1_000) }))
    .min(1, 'must not be empty')
    .max(50),
  /** The catalog's filters: as long as a product's category may be, and a cursor of ours (at most ~60 characters). */
  productPage: z.object({ category: z.string().max(50).nullish(), after: z.string().max(100).nullish() }),
  login: z.object({ email: z.string().max(254), password: z.string().max(200) }),
};

/**
 * Refuses an address no account may take: any under the `.invalid` top-level domain (RFC 2606,
 * never deliverable), the form erased accounts were once given. BAD_USER_INPUT naming `field`,
 * `reason: RESERVED_EMAIL`. (Erased accounts now hold `deleted:<id>`, which is no address at all.)
 */
export function refuseReservedEmail(email: string, field: string): void {
  const domain = email.slice(email.lastIndexOf('@') + 1).toLowerCase();
  if (domain === 'invalid' || domain.endsWith('.invalid'))
    throw badInput(field, `${field}: must not be under the .invalid domain (reserved)`, 'RESERVED_EMAIL');
}

/** Drops the keys whose value is undefined (absent from a GraphQL input). */
export function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
