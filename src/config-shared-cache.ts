import { z } from 'zod';

/** configAreas.sharedCache: a CDN or reverse proxy in front (docs/http-caching.md, "A shared cache in front"). */
export const sharedCacheArea = z
  .object({
    /**
     * How a stored GET response names its dependencies for a shared cache, beside
     * `Surrogate-Control: max-age=<hint>` (every other response says `Surrogate-Control: no-store`):
     * `surrogate-key` (default; Fastly, space-separated), `xkey` (Varnish's xkey module,
     * space-separated), `cache-tag` (Cloudflare, comma-separated), or `off` (no surrogate headers).
     */
    SURROGATE_KEY_HEADER: z.enum(['surrogate-key', 'xkey', 'cache-tag', 'off']).default('surrogate-key'),
    /**
     * Where each invalidation's surrogate keys are purged: `varnish` (a PURGE to
     * VARNISH_PURGE_URL with an `xkey-purge` header), `fastly` (Fastly's purge by surrogate key,
     * FASTLY_SERVICE_ID and FASTLY_API_TOKEN), `cloudflare` (Cloudflare's purge by cache tag,
     * CLOUDFLARE_ZONE_ID and CLOUDFLARE_API_TOKEN), `webhook` (a POST of `{"keys": [...]}` to
     * PURGE_WEBHOOK_URL), or `off` (default).
     */
    PURGE_ADAPTER: z.enum(['varnish', 'fastly', 'cloudflare', 'webhook', 'off']).default('off'),
    /** The Varnish to purge (PURGE_ADAPTER=varnish), e.g. `http://127.0.0.1:6081/`. */
    VARNISH_PURGE_URL: z.url().optional(),
    /** The URL purges are POSTed to (PURGE_ADAPTER=webhook). */
    PURGE_WEBHOOK_URL: z.url().optional(),
    /** The Fastly service whose cache is purged (PURGE_ADAPTER=fastly). */
    FASTLY_SERVICE_ID: z.string().min(1).optional(),
    /** A Fastly API token with purge rights on that service, sent as `Fastly-Key` (PURGE_ADAPTER=fastly). */
    FASTLY_API_TOKEN: z.string().min(1).optional(),
    /** Fastly's API; default `https://api.fastly.com` (another value is for tests). */
    FASTLY_API_URL: z.url().default('https://api.fastly.com'),
    /** The Cloudflare zone whose cache is purged (PURGE_ADAPTER=cloudflare). */
    CLOUDFLARE_ZONE_ID: z.string().min(1).optional(),
    /** A Cloudflare API token with the Cache Purge permission on that zone, sent as a Bearer token (PURGE_ADAPTER=cloudflare). */
    CLOUDFLARE_API_TOKEN: z.string().min(1).optional(),
    /** Cloudflare's API; default `https://api.cloudflare.com/client/v4` (another value is for tests). */
    CLOUDFLARE_API_URL: z.url().default('https://api.cloudflare.com/client/v4'),
    /**
     * Purge each invalidation's keys once more this many milliseconds later; default 2000, 0 for
     * never. A response computed before a write but received by the shared cache after its purge
     * is removed by the second one: the bound on its staleness.
     */
    PURGE_REPEAT_MS: z.coerce.number().int().min(0).default(2_000),
  })
  .superRefine((env, ctx) => {
    if (env.PURGE_ADAPTER === 'varnish' && !env.VARNISH_PURGE_URL)
      ctx.addIssue({ code: 'custom', path: ['VARNISH_PURGE_URL'], message: 'is required when PURGE_ADAPTER=varnish' });
    if (env.PURGE_ADAPTER === 'webhook' && !env.PURGE_WEBHOOK_URL)
      ctx.addIssue({ code: 'custom', path: ['PURGE_WEBHOOK_URL'], message: 'is required when PURGE_ADAPTER=webhook' });
    for (const [adapter, names] of [
      ['fastly', ['FASTLY_SERVICE_ID', 'FASTLY_API_TOKEN']],
      ['cloudflare', ['CLOUDFLARE_ZONE_ID', 'CLOUDFLARE_API_TOKEN']],
    ] as const)
      for (const name of names)
        if (env.PURGE_ADAPTER === adapter && !env[name])
          ctx.addIssue({ code: 'custom', path: [name], message: `is required when PURGE_ADAPTER=${adapter}` });
  })
  .transform((env) => ({
    sharedCache: {
      surrogateKeyHeader: env.SURROGATE_KEY_HEADER,
      purge: purgeTarget(env),
      purgeRepeatMs: env.PURGE_REPEAT_MS,
    },
  }));

/** The purge target of PURGE_ADAPTER, with the URL and credentials its API takes; null when off. */
function purgeTarget(env: {
  PURGE_ADAPTER: string;
  VARNISH_PURGE_URL?: string | undefined;
  PURGE_WEBHOOK_URL?: string | undefined;
  FASTLY_SERVICE_ID?: string | undefined;
  FASTLY_API_TOKEN?: string | undefined;
  FASTLY_API_URL: string;
  CLOUDFLARE_ZONE_ID?: string | undefined;
  CLOUDFLARE_API_TOKEN?: string | undefined;
  CLOUDFLARE_API_URL: string;
}): { adapter: 'varnish' | 'webhook'; url: string } | { adapter: 'fastly' | 'cloudflare'; url: string; token: string } | null {
  const base = (url: string) => url.replace(/\/+$/, '');
  switch (env.PURGE_ADAPTER) {
    case 'varnish':
      return env.VARNISH_PURGE_URL ? { adapter: 'varnish', url: env.VARNISH_PURGE_URL } : null;
    case 'webhook':
      return env.PURGE_WEBHOOK_URL ? { adapter: 'webhook', url: env.PURGE_WEBHOOK_URL } : null;
    case 'fastly':
      return env.FASTLY_SERVICE_ID && env.FASTLY_API_TOKEN
        ? {
            adapter: 'fastly',
            url: `${base(env.FASTLY_API_URL)}/service/${encodeURIComponent(env.FASTLY_SERVICE_ID)}/purge`,
            token: env.FASTLY_API_TOKEN,
          }
        : null;
    case 'cloudflare':
      return env.CLOUDFLARE_ZONE_ID && env.CLOUDFLARE_API_TOKEN
        ? {
            adapter: 'cloudflare',
            url: `${base(env.CLOUDFLARE_API_URL)}/zones/${encodeURIComponent(env.CLOUDFLARE_ZONE_ID)}/purge_cache`,
            token: env.CLOUDFLARE_API_TOKEN,
          }
        : null;
    default:
      return null;
  }
}
