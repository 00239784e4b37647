import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort, spawnChild, stopChild } from '../../src/dev/processes.js';
import { until } from './wait.js';

/** A small Redis Cluster (three masters, no replicas) of a test's own, on loopback. */
export interface TestRedisCluster {
  /** `host:port` of every node. */
  nodes: string[];
  stop(): Promise<void>;
}

/** Starts three `redis-server --cluster-enabled yes` nodes and joins them with `redis-cli --cluster create`. */
export async function startRedisCluster(): Promise<TestRedisCluster> {
  const dir = await mkdtemp(join(tmpdir(), 'gfc-cluster-'));
  const ports = [await freePort(), await freePort(), await freePort()];
  const children = ports.map(
    (port) =>
      spawnChild('redis-server', [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        join(dir, `nodes-${port}.conf`),
        '--dir',
        dir,
        '--save',
        '',
        '--appendonly',
        'no',
      ]).child,
  );
  const stop = async (): Promise<void> => {
    await Promise.all(children.map((child) => stopChild(child)));
    await rm(dir, { recursive: true, force: true });
  };
  try {
    for (const port of ports) {
      await until(
        async () => {
          const client = new Redis(port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
          client.on('error', () => undefined);
          try {
            await client.connect();
            return (await client.ping()) === 'PONG';
          } catch {
            return false; // not listening yet
          } finally {
            client.disconnect();
          }
        },
        { what: `cluster node ${port}`, timeoutMs: 30_000, intervalMs: 100 },
      );
    }
    const nodes = ports.map((port) => `127.0.0.1:${port}`);
    execFileSync('redis-cli', ['--cluster', 'create', ...nodes, '--cluster-replicas', '0', '--cluster-yes'], { stdio: 'ignore' });
    for (const port of ports) {
      await until(
        () => {
          try {
            return /cluster_state:ok/.test(execFileSync('redis-cli', ['-p', String(port), 'cluster', 'info'], { encoding: 'utf8' }));
          } catch {
            return false;
          }
        },
        { what: `cluster state ok on ${port}`, timeoutMs: 30_000, intervalMs: 100 },
      );
    }
    return { nodes, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
