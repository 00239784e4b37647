import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort, spawnChild, stopChild } from '../../src/dev/processes.js';
import { until } from './wait.js';

/** A small Redis Cluster (three masters, and a replica each when asked) of a test's own, on loopback. */
export interface TestRedisCluster {
  /** `host:port` of every node (the masters first, as `redis-cli --cluster create` assigns them). */
  nodes: string[];
  stop(): Promise<void>;
}

/** Options of {@link startRedisCluster}. */
export interface TestRedisClusterOptions {
  /** Replicas per master: 0 (default) or 1 (six nodes). */
  replicas?: 0 | 1;
}

/**
 * Starts three `redis-server --cluster-enabled yes` nodes (six with `replicas: 1`) and joins them
 * with `redis-cli --cluster create`; with replicas, returns once every replica's link to its master is up.
 */
export async function startRedisCluster(options: TestRedisClusterOptions = {}): Promise<TestRedisCluster> {
  const replicas = options.replicas ?? 0;
  const dir = await mkdtemp(join(tmpdir(), 'gfc-cluster-'));
  const ports: number[] = [];
  for (let i = 0; i < 3 * (1 + replicas); i += 1) ports.push(await freePort());
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
    execFileSync('redis-cli', ['--cluster', 'create', ...nodes, '--cluster-replicas', String(replicas), '--cluster-yes'], {
      stdio: 'ignore',
    });
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
    if (replicas > 0) await untilReplicasLinked(ports);
    return { nodes, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** Waits until the cluster has three replicas, each with its link to its master up. */
async function untilReplicasLinked(ports: readonly number[]): Promise<void> {
  const info = (port: number): string => execFileSync('redis-cli', ['-p', String(port), 'info', 'replication'], { encoding: 'utf8' });
  await until(
    () => {
      try {
        const linked = ports.filter((port) => /role:slave/.test(info(port)) && /master_link_status:up/.test(info(port)));
        // Linked, and listed by every node in CLUSTER SLOTS (what clients learn the replicas from).
        const slots = (port: number): string => execFileSync('redis-cli', ['-p', String(port), 'cluster', 'slots'], { encoding: 'utf8' });
        return linked.length === ports.length / 2 && ports.every((port) => replicasListed(slots(port)));
      } catch {
        return false;
      }
    },
    { what: 'every replica linked to its master', timeoutMs: 30_000, intervalMs: 100 },
  );
}

/** True when redis-cli's CLUSTER SLOTS output lists six node addresses (three masters and three replicas). */
function replicasListed(output: string): boolean {
  const nodeIds = output.split('\n').filter((line) => /^[0-9a-f]{40}$/.test(line.trim()));
  return nodeIds.length >= 6;
}
