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
     * VARNISH_PURGE_URL with an `xkey-purge` header), `webhook` (a POST of `{"keys": [...]}` to
     * PURGE_WEBHOOK_URL), or `off` (default).
     */
    PURGE_ADAPTER: z.enum(['varnish', 'webhook', 'off']).default('off'),
    /** The Varnish to purge (PURGE_ADAPTER=varnish), e.g. `http://127.0.0.1:6081/`. */
    VARNISH_PURGE_URL: z.url().optional(),
    /** The URL purges are POSTed to (PURGE_ADAPTER=webhook). */
    PURGE_WEBHOOK_URL: z.url().optional(),
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
  })
  .transform((env) => ({
    sharedCache: {
      surrogateKeyHeader: env.SURROGATE_KEY_HEADER,
      purge:
        env.PURGE_ADAPTER === 'varnish' && env.VARNISH_PURGE_URL
          ? ({ adapter: 'varnish', url: env.VARNISH_PURGE_URL } as const)
          : env.PURGE_ADAPTER === 'webhook' && env.PURGE_WEBHOOK_URL
            ? ({ adapter: 'webhook', url: env.PURGE_WEBHOOK_URL } as const)
            : null,
      purgeRepeatMs: env.PURGE_REPEAT_MS,
    },
  }));
