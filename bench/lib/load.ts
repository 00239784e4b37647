// Load with autocannon: a fixed number of requests over N connections, timed from the first
// request to the last response. A fixed amount rather than a fixed window: a contender at 4
// req/s with 10 connections answers its first requests only after ~2.5 s, so a short window
// would count almost nothing, while the time to finish K requests measures it at any speed.
import autocannon from 'autocannon';

/** One load run's figures. */
export interface LoadResult {
  requests: number;
  seconds: number;
  reqPerSec: number;
  p50Ms: number;
  p99Ms: number;
  /** True when the run hit its time cap before all requests were answered. */
  capped: boolean;
}

/** Options of {@link loadAmount}. */
export interface LoadOptions {
  /** The contender's base URL. */
  url: string;
  /** The GraphQL request body (JSON text). */
  body: string;
  connections: number;
  /** Requests in all, at least `connections`. */
  amount: number;
  /** Stop after this long even if not all requests were answered, in seconds; default 60. */
  capSeconds?: number;
}

/** Sends `amount` requests over `connections` connections; fails on any non-2xx, connection error or GraphQL error. */
export async function loadAmount(options: LoadOptions): Promise<LoadResult> {
  const amount = Math.max(options.amount, options.connections);
  const cap = { stop: () => undefined as void };
  const timer = setTimeout(() => cap.stop(), (options.capSeconds ?? 60) * 1_000);
  const { result, answered, seconds } = await run(
    {
      url: options.url,
      body: options.body,
      connections: options.connections,
      amount,
      timeout: 60,
      // A cheap check of every answer: data and no errors (a 200 can carry errors).
      verifyBody: (body) => String(body).startsWith('{"data":') && !String(body).includes('"errors":'),
    },
    cap,
  );
  clearTimeout(timer);
  if (result.non2xx || result.errors || result.mismatches) {
    throw new Error(
      `load on ${options.url}: ${result.non2xx} non-2xx, ${result.errors} errors, ${result.mismatches} answers with GraphQL errors`,
    );
  }
  return {
    requests: answered,
    seconds,
    reqPerSec: answered / Math.max(seconds, 1e-3),
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    capped: answered < amount,
  };
}

/**
 * Round 0: warms the contender (JIT, caches) and estimates its req/s for sizing the rounds. A
 * contender slower than 100 ms a request (one waiting on MongoDB) is estimated from one request:
 * its rounds get the least amount anyway, and a load would only cost time. Others are loaded
 * for `seconds` with `connections` connections.
 */
export async function calibrate(options: { url: string; body: string; connections: number; seconds: number }): Promise<number> {
  // The second of two: a cache fills some children (a list's items) only on the second read.
  let singleMs = 0;
  for (let i = 0; i < 2; i += 1) {
    const single = performance.now();
    await fetch(`${options.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: options.body });
    singleMs = performance.now() - single;
  }
  if (singleMs > 100) return 1_000 / singleMs;
  const counts = await run({ url: options.url, body: options.body, connections: options.connections, duration: options.seconds });
  // The few requests still in flight finish in milliseconds at this speed (and are counted).
  await new Promise((resolve) => setTimeout(resolve, 100));
  return counts.answered / Math.max(counts.seconds, 1e-3);
}

/**
 * One autocannon run of POSTs to `/graphql`, with the answers counted and timed to the last
 * one (autocannon's own rate counts whole seconds). `cap.stop` is set to stop it early.
 */
async function run(
  options: Pick<autocannon.Options, 'connections' | 'amount' | 'duration' | 'timeout' | 'verifyBody'> & { url: string; body: string },
  cap: { stop: () => void } = { stop: () => undefined },
): Promise<{ result: autocannon.Result; answered: number; seconds: number }> {
  const { url, body, ...rest } = options;
  const start = performance.now();
  let last = start;
  let answered = 0;
  // Without a callback, autocannon returns its event emitter made thenable (its types say only a Promise).
  const instance = autocannon({
    url: `${url}/graphql`,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
    ...rest,
  }) as unknown as autocannon.Instance & PromiseLike<autocannon.Result>;
  cap.stop = () => instance.stop();
  instance.on('response', () => {
    answered += 1;
    last = performance.now();
  });
  const result = await instance;
  // Getters: the counts stay live after the run ends (calibrate counts the last few in flight).
  return {
    result,
    get answered() {
      return answered;
    },
    get seconds() {
      return (last - start) / 1_000;
    },
  };
}

/** One GraphQL request; returns `data`, throws on an HTTP or GraphQL error. */
export async function graphql<T = Record<string, unknown>>(
  url: string,
  query: string,
  variables?: Record<string, unknown>,
  headers: Record<string, string> = {},
): Promise<T> {
  const response = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ query, variables }),
  });
  const text = await response.text();
  let body: { data?: T; errors?: unknown[] };
  try {
    body = JSON.parse(text) as typeof body;
  } catch {
    throw new Error(`${url}: HTTP ${response.status}: ${text.slice(0, 300)}`);
  }
  if (!response.ok || body.errors || !body.data)
    throw new Error(`${url}: HTTP ${response.status}: ${JSON.stringify(body.errors ?? body).slice(0, 500)}`);
  return body.data;
}

/** The median of a non-empty list. */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}
