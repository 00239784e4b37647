import { createHash } from 'node:crypto';
import type { StoredResponse } from 'graphql-lease-cache/apollo';
import type { Config } from '../config.js';

/** The header form of surrogate keys (SURROGATE_KEY_HEADER). */
export type SurrogateKeyHeader = Config['sharedCache']['surrogateKeyHeader'];

/** Characters of a surrogate key: 48 bits of SHA-256; two dependencies sharing one only cost a needless purge. */
const KEY_CHARS = 8;

/**
 * The longest surrogate-key header sent, in bytes. Varnish refuses a response with a header over
 * its `http_resp_hdr_len` (8 KiB by default); a response with more keys is not cached there.
 */
const MAX_HEADER_BYTES = 6_000;

/**
 * The surrogate key of a dependency (an entity, field or tag key of the cache): 8 base64url
 * characters of its SHA-256. The one function of both sides: the keys a response is sent with,
 * and the keys an invalidation purges.
 */
export function surrogateKey(dependency: string): string {
  return createHash('sha256').update(dependency).digest('base64url').slice(0, KEY_CHARS);
}

/** `Surrogate-Control` of a response a shared cache must not keep (graphql-route.ts sends it unless a stored response's keys replace it). */
export const SURROGATE_NO_STORE = { 'surrogate-control': 'no-store' } as const;

/**
 * The surrogate keys of a response about to be stored (`responseCachePlugin`'s `surrogateKeys`,
 * kept with it so that a hit names them too): its dependencies' keys, each once. Empty (the
 * response is sent with `Surrogate-Control: no-store`) when they are too many for a header.
 */
export function surrogateKeysOf(dependencies: ReadonlySet<string>): string[] {
  const keys = [...new Set([...dependencies].map(surrogateKey))];
  // Each key and one separator: the header's length in either form.
  return keys.length * (KEY_CHARS + 1) - 1 > MAX_HEADER_BYTES ? [] : keys;
}

/**
 * The headers that let a shared cache keep a stored response, just stored or a hit (see
 * `responseCachePlugin`'s `storedHeaders`): `Surrogate-Control: max-age=<hint>` and the
 * surrogate keys stored with it, in the chosen form. Null (the response keeps
 * `Surrogate-Control: no-store`) when the form is `off`, for anything but a GET, a PRIVATE or
 * uncacheable response, or one stored without keys (too many for a header, or by a build that
 * did not store them).
 */
export function surrogateHeaders(form: SurrogateKeyHeader, stored: StoredResponse): Record<string, string> | null {
  const { policy, method, surrogateKeys } = stored;
  if (form === 'off' || method !== 'GET' || policy.maxAge <= 0 || (policy.scope ?? 'PUBLIC') !== 'PUBLIC') return null;
  if (surrogateKeys.length === 0) return null;
  const value = surrogateKeys.join(form === 'cache-tag' ? ',' : ' ');
  if (value.length > MAX_HEADER_BYTES) return null;
  return { 'surrogate-control': `max-age=${policy.maxAge}`, [form]: value };
}
