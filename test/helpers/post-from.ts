import { request } from 'node:http';

/** What {@link postFrom} received: the status, `Retry-After`, and the parsed JSON body. */
export interface PostedFrom<B> {
  status: number;
  retryAfter: string | undefined;
  body: B;
}

/**
 * POSTs `payload` as JSON to `<baseUrl><path>` (default /graphql) from the local address `from`
 * (any 127.x.y.z reaches the server on Linux), so that a test is a client address of its own, as
 * `req.ip` sees it (rate limits, the response cache's per-client budget).
 */
export function postFrom<B>(
  baseUrl: string,
  from: string,
  payload: unknown,
  headers: Record<string, string> = {},
  path = '/graphql',
): Promise<PostedFrom<B>> {
  const url = new URL(`${baseUrl}${path}`);
  const text = JSON.stringify(payload);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: url.hostname,
        port: url.port,
        path: url.pathname,
        method: 'POST',
        localAddress: from,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          resolve({
            status: res.statusCode ?? 0,
            retryAfter: res.headers['retry-after'],
            body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as B,
          });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(text);
  });
}
