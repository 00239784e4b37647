/** A response's cache policy, as Apollo's cache-control plugin computes it; scope PUBLIC when missing. */
export interface CachePolicy {
  /** In seconds; 0 is not cacheable. */
  maxAge: number;
  scope?: 'PUBLIC' | 'PRIVATE';
}

/** The cache policy a stored response was computed with. */
export interface StoredPolicy {
  /** In seconds. */
  maxAge: number;
  scope: 'PUBLIC' | 'PRIVATE';
}

/** The first line of a stored response: its policy and, when there are any, its surrogate keys. */
interface PolicyLine extends StoredPolicy {
  keys?: readonly string[];
}

/**
 * A stored response: its policy as JSON on the first line (with the surrogate keys the app
 * computed for it, when any: a hit names them as the executed response did), then the HTTP body
 * exactly as Apollo sends it in production (`{"data":…}` and a newline), so that a hit before the
 * server's pipeline (the fast path) writes it as it is, with neither parsing nor serializing.
 */
export function encodeStored(policy: StoredPolicy, data: unknown, surrogateKeys: readonly string[] = []): string {
  const line: PolicyLine = surrogateKeys.length > 0 ? { ...policy, keys: surrogateKeys } : policy;
  return `${JSON.stringify(line)}\n${JSON.stringify({ data })}\n`;
}

/**
 * The policy and the HTTP body of a stored response, for a hit that does not name its surrogate
 * keys (a POST): the body is the stored bytes after the policy line, shared, not copied (a hit
 * writes them as they are), and the keys are not read (a catalog's are most of the line). Throws
 * when the policy is unreadable, as {@link decodeStored} does.
 */
export function decodeStoredBody(stored: Buffer): { policy: StoredPolicy; body: Buffer } {
  const newline = stored.indexOf(NEWLINE);
  if (newline < 0) throw new SyntaxError('a stored response has no policy line');
  // The line as encodeStored writes it begins with the policy; anything else is read whole.
  const known = POLICY_PREFIX.exec(stored.toString('latin1', 0, Math.min(newline + 1, POLICY_PREFIX_MAX_LENGTH)));
  const policy = known
    ? { maxAge: Number(known[1]), scope: known[2] as StoredPolicy['scope'] }
    : policyLine(stored.toString('utf8', 0, newline)).policy;
  return { policy, body: stored.subarray(newline + 1) };
}

const NEWLINE = 0x0a;
/** The start of a policy line as {@link encodeStored} writes it: `{"maxAge":60,"scope":"PUBLIC"` then `,` or `}`. */
const POLICY_PREFIX = /^\{"maxAge":(\d{1,12}),"scope":"(PUBLIC|PRIVATE)"[,}]/;
const POLICY_PREFIX_MAX_LENGTH = 64;

/**
 * The policy, the surrogate keys (empty: none stored) and the HTTP body of a stored response;
 * throws when it is unreadable (corrupt, or another version's).
 */
export function decodeStored(stored: Buffer | string): { policy: StoredPolicy; surrogateKeys: readonly string[]; body: string } {
  const text = stored.toString();
  const newline = text.indexOf('\n');
  if (newline < 0) throw new SyntaxError('a stored response has no policy line');
  return { ...policyLine(text.slice(0, newline)), body: text.slice(newline + 1) };
}

/** The policy and surrogate keys of a stored response's first line; throws when it is not one. */
function policyLine(text: string): { policy: StoredPolicy; surrogateKeys: readonly string[] } {
  const line = JSON.parse(text) as Partial<Record<keyof PolicyLine, unknown>> | null;
  if (typeof line?.maxAge !== 'number' || (line.scope !== 'PUBLIC' && line.scope !== 'PRIVATE'))
    throw new SyntaxError('a stored response has no valid policy');
  const keys = line.keys ?? [];
  if (!Array.isArray(keys) || !keys.every((key) => typeof key === 'string'))
    throw new SyntaxError('a stored response has invalid surrogate keys');
  return { policy: { maxAge: line.maxAge, scope: line.scope }, surrogateKeys: keys as string[] };
}

/**
 * The stored form of an executed response and its time to live in milliseconds, or null when it
 * may not be stored: errors, no cacheable policy, or a PRIVATE one without a live session.
 * `sessionExpiresAt` is when the request's session ends (ms since the epoch; null: none): a hit
 * does not resolve the session, so a private response must end with it, and an anonymous or
 * signed-out request never stores one. `surrogateKeys` is called only for a response stored
 * (default none).
 */
export function storedForm(
  result: { data?: unknown; errors?: readonly unknown[] },
  policy: CachePolicy | null,
  session: { id: string | null; expiresAt: number | null },
  surrogateKeys: () => readonly string[] = () => [],
): { stored: string; ttlMs: number; surrogateKeys: readonly string[] } | null {
  if (result.errors?.length || !policy || policy.maxAge <= 0) return null;
  const scope = policy.scope ?? 'PUBLIC';
  let ttlMs = policy.maxAge * 1_000;
  if (scope === 'PRIVATE') {
    if (session.id === null || session.expiresAt === null) return null;
    ttlMs = Math.min(ttlMs, session.expiresAt - Date.now());
    if (ttlMs <= 0) return null;
  }
  const keys = surrogateKeys();
  return { stored: encodeStored({ maxAge: policy.maxAge, scope }, result.data ?? null, keys), ttlMs, surrogateKeys: keys };
}

/**
 * The `Cache-Control` of a response with this policy (null: not cacheable, `no-store`), the
 * fast path's default: `no-cache, public` (kept, but every reuse revalidated: a max-age would let
 * a cache show a value a mutation has replaced); PRIVATE `private, no-cache` (a browser shared by
 * the next user must revalidate too); not cacheable `no-store`.
 */
export function cacheControlHeader(policy: CachePolicy | null): string {
  if (!policy || policy.maxAge <= 0) return 'no-store';
  return policy.scope === 'PRIVATE' ? 'private, no-cache' : 'no-cache, public';
}
