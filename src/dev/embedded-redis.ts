import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort, spawnChild, stopChild, waitUntil } from './processes.js';

/** A private redis-server started by {@link startEmbeddedRedis}. */
export interface EmbeddedRedis {
  url: string;
  port: number;
  /** The redis-server process id (tests pause it to simulate a hung Redis). */
  pid: number;
  /** Stops the server and removes its directory. */
  stop(): Promise<void>;
}

/** Options of {@link startEmbeddedRedis}. */
export interface EmbeddedRedisOptions {
  /** Port to listen on; default a free one. */
  port?: number;
  /** Append-only persistence, `appendfsync everysec`, in its temporary directory (as write-behind needs); default true. */
  appendOnly?: boolean;
  /** `maxmemory`, e.g. `256mb` (EMBEDDED_REDIS_MAXMEMORY for `npm start`); default 256mb. */
  maxMemory?: string;
  /** Extra `--name value` arguments for redis-server. */
  extraArgs?: string[];
}

/** True when a `redis-server` binary is on PATH. */
export function redisServerAvailable(): boolean {
  return spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;
}

/**
 * Starts a private `redis-server` on 127.0.0.1 in a temporary directory, set as docs/write-policies.md asks
 * of production (AOF with `appendfsync everysec`, a `maxmemory` with the `volatile-lru` policy,
 * which never evicts queued write-behind changes), and resolves once it answers PING. Its data
 * lives as long as it does: {@link EmbeddedRedis.stop} removes the directory, AOF included.
 */
export async function startEmbeddedRedis(options: EmbeddedRedisOptions = {}): Promise<EmbeddedRedis> {
  const port = options.port ?? (await freePort());
  const dir = await mkdtemp(join(tmpdir(), 'gfc-redis-'));
  const args = [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--dir',
    dir,
    '--save',
    '',
    '--appendonly',
    options.appendOnly === false ? 'no' : 'yes',
    '--appendfsync',
    'everysec',
    '--maxmemory',
    options.maxMemory ?? '256mb',
    '--maxmemory-policy',
    'volatile-lru',
    ...(options.extraArgs ?? []),
  ];
  const { child, output } = spawnChild('redis-server', args);
  const url = `redis://127.0.0.1:${port}`;
  try {
    await waitUntil(`redis-server on port ${port}`, async () => {
      if (child.exitCode !== null) throw new Error(`redis-server exited: ${output()}`);
      const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      client.on('error', () => undefined); // not up yet: the next try will tell
      try {
        await client.connect();
        return (await client.ping()) === 'PONG';
      } finally {
        client.disconnect();
      }
    });
  } catch (error) {
    await stopChild(child);
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    url,
    port,
    pid: child.pid ?? 0,
    async stop() {
      await stopChild(child);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
