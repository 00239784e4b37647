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

/**
 * A stored response: its policy as JSON on the first line, then the HTTP body exactly as Apollo
 * sends it in production (`{"data":…}` and a newline), so that a hit before the server's pipeline
 * (the fast path) writes it as it is, with neither parsing nor serializing.
 */
export function encodeStored(policy: StoredPolicy, data: unknown): string {
  return `${JSON.stringify(policy)}\n${JSON.stringify({ data })}\n`;
}

/** The policy and the HTTP body of a stored response; throws when it is unreadable (corrupt, or another version's). */
export function decodeStored(stored: Buffer | string): { policy: StoredPolicy; body: string } {
  const text = stored.toString();
  const newline = text.indexOf('\n');
  if (newline < 0) throw new SyntaxError('a stored response has no policy line');
  const policy = JSON.parse(text.slice(0, newline)) as Partial<StoredPolicy> | null;
  if (typeof policy?.maxAge !== 'number' || (policy.scope !== 'PUBLIC' && policy.scope !== 'PRIVATE'))
    throw new SyntaxError('a stored response has no valid policy');
  return { policy: { maxAge: policy.maxAge, scope: policy.scope }, body: text.slice(newline + 1) };
}

/**
 * The stored form of an executed response and its time to live in milliseconds, or null when it
 * may not be stored: errors, no cacheable policy, or a PRIVATE one without a live session.
 * `sessionExpiresAt` is when the request's session ends (ms since the epoch; null: none): a hit
 * does not resolve the session, so a private response must end with it, and an anonymous or
 * signed-out request never stores one.
 */
export function storedForm(
  result: { data?: unknown; errors?: readonly unknown[] },
  policy: CachePolicy | null,
  session: { id: string | null; expiresAt: number | null },
): { stored: string; ttlMs: number } | null {
  if (result.errors?.length || !policy || policy.maxAge <= 0) return null;
  const scope = policy.scope ?? 'PUBLIC';
  let ttlMs = policy.maxAge * 1_000;
  if (scope === 'PRIVATE') {
    if (session.id === null || session.expiresAt === null) return null;
    ttlMs = Math.min(ttlMs, session.expiresAt - Date.now());
    if (ttlMs <= 0) return null;
  }
  return { stored: encodeStored({ maxAge: policy.maxAge, scope }, result.data ?? null), ttlMs };
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
