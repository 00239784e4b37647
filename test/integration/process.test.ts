import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { readFileSync } from 'node:fs';
import { describe, expect, inject, it } from 'vitest';
import { failedServerStart, startServerProcess } from '../helpers/server-process.js';

/** The server's service children (ferretdb, redis-server); tsx's own esbuild helpers are not ours to check. */
function serviceChildrenOf(pid: number): number[] {
  try {
    return execFileSync('ps', ['-o', 'pid=,comm=', '--ppid', String(pid)], { encoding: 'utf8' })
      .split('\n')
      .map((line) => line.trim().split(/\s+/))
      .filter(([, command]) => command === 'ferretdb' || command === 'redis-server')
      .map(([child]) => Number(child));
  } catch {
    return []; // ps exits 1 when there are none
  }
}

/** Running (not exited; an exited orphan may linger as a zombie until PID 1 reaps it). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

describe('the server process (npm start without MONGODB_URI and REDIS_URL)', () => {
  it('starts embedded services, seeds, serves, and on SIGTERM leaves no child process behind', async () => {
    const started = await startServerProcess(
      { NODE_ENV: 'development', EMBEDDED_MONGODB: 'ferretdb', MONGODB_URI: '', REDIS_URL: '' },
      120_000,
    );
    const { process: server, url } = started;

    const res = await fetch(`${url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ products(first: 1) { edges { node { id } } } }' }),
    });
    const body = (await res.json()) as { data: { products: { edges: unknown[] } } };
    expect(body.data.products.edges).toHaveLength(1);
    // The ready line gives the embedded services' addresses, for `npm run seed` or `npm run worker` against them.
    const ready = JSON.parse(
      started
        .output()
        .split('\n')
        .find((line) => line.includes('GraphQL server ready')) ?? '{}',
    ) as Record<string, string>;
    expect(ready).toMatchObject({ embedded: 'ferretdb, redis-server' });
    expect(ready.MONGODB_URI).toMatch(/^mongodb:\/\/127\.0\.0\.1:\d+\/app$/);
    expect(ready.REDIS_URL).toMatch(/^redis:\/\/127\.0\.0\.1:\d+$/);
    expect(await (await fetch(`${url}/readyz`)).json()).toMatchObject({ status: 'ready', redis: 'up' });

    const children = serviceChildrenOf(server.pid ?? 0);
    expect(children).toHaveLength(2); // ferretdb and redis-server
    const exited = once(server, 'exit');
    server.kill('SIGTERM');
    const [code] = await exited;
    expect(code).toBe(0);
    expect(children.filter(alive)).toEqual([]);
  }, 180_000);
});

describe('a start on a port already in use', () => {
  it('fails at once with one line naming the port, and exit code 1', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const { port } = taken.address() as { port: number };
    try {
      const { code, output } = await failedServerStart({
        NODE_ENV: 'development',
        HOST: '127.0.0.1',
        PORT: String(port),
        MONGODB_URI: `${inject('mongoBaseUri')}/process-port-in-use`,
        REDIS_URL: inject('redisUrl'),
      });
      expect(code).toBe(1);
      expect(output.trim()).toBe(`port ${port} is already in use (PORT=${port}): stop the other server or set PORT`);
    } finally {
      taken.close();
    }
  }, 60_000);

  it("a MongoDB that does not answer is one line naming its address, not the driver's topology dump", async () => {
    const { code, output } = await failedServerStart({
      NODE_ENV: 'development',
      LOG_LEVEL: 'warn',
      MONGODB_URI: 'mongodb://127.0.0.1:1/process-unreachable',
      MONGODB_TIMEOUT_MS: '1000',
      REDIS_URL: inject('redisUrl'),
    });
    expect(code).toBe(1);
    expect(output.trim()).toBe(
      'MongoDB at mongodb://127.0.0.1:1/process-unreachable did not answer: check MONGODB_URI and that the server runs',
    );
  }, 60_000);
});
