// The bench's Varnish part: the shipped VCL (deploy/varnish/default.vcl) in front of the
// project's response-cache contender, loaded with the catalog as a GET, and Varnish's hit rate.
import autocannon from 'autocannon';
import { haveVarnish, startVarnish, VARNISHD } from '../../src/dev/varnish.js';
import type { Contender } from './contenders.js';
import { CATALOG } from './queries.js';

/** What the Varnish part measured; null when varnishd is missing. */
export interface VarnishResult {
  seconds: number;
  requests: number;
  reqPerSec: number;
  /** Varnish's cache hits and misses during the load (varnishstat). */
  hits: number;
  misses: number;
  /** hits / (hits + misses). */
  hitRate: number;
}

/**
 * Starts varnishd in front of `contender` (which must send xkey surrogate keys), loads the
 * catalog GET through it for `seconds` over `connections` connections, and stops it. Fails on
 * any non-2xx or connection error; null (with a message) when varnishd is missing.
 */
export async function runVarnishCatalog(options: {
  contender: Contender;
  seconds: number;
  connections: number;
}): Promise<VarnishResult | null> {
  if (!haveVarnish()) {
    console.log(`varnish: skipped, no ${VARNISHD} (apt-get install varnish varnish-modules)`);
    return null;
  }
  const varnish = await startVarnish({ backendPort: Number(new URL(options.contender.url).port) });
  try {
    const url = `${varnish.url}/graphql?query=${encodeURIComponent(CATALOG)}`;
    const headers = { 'apollo-require-preflight': 'true' };
    // Warm: the response stored in Redis, then kept by Varnish (a Redis hit carries its keys).
    for (let i = 0; i < 2; i += 1) await (await fetch(url, { headers })).text();
    const before = await varnish.stats();
    const start = performance.now();
    let last = start;
    let answered = 0;
    const instance = autocannon({
      url,
      method: 'GET',
      headers,
      connections: options.connections,
      duration: options.seconds,
    }) as unknown as autocannon.Instance & PromiseLike<autocannon.Result>;
    instance.on('response', () => {
      answered += 1;
      last = performance.now();
    });
    const result = await instance;
    if (result.non2xx || result.errors) throw new Error(`varnish load: ${result.non2xx} non-2xx, ${result.errors} errors`);
    const after = await varnish.stats();
    const hits = after.hits - before.hits;
    const misses = after.misses - before.misses;
    const seconds = (last - start) / 1_000;
    return {
      seconds,
      requests: answered,
      reqPerSec: answered / Math.max(seconds, 1e-3),
      hits,
      misses,
      hitRate: hits / Math.max(hits + misses, 1),
    };
  } finally {
    await varnish.stop();
  }
}
