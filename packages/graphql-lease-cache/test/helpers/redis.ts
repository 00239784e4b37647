/**
 * Private Redis servers for the package's own tests: one `redis-server`, or a three-node
 * cluster, on free loopback ports in a temporary directory. Only `redis-server` and
 * `redis-cli` on PATH are needed; nothing of the app is.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';

export { sleep };

/** A private redis-server and a plain client to inspect it. */
export interface TestRedis {
  url: string;
  client: Redis;
  /** Freezes the server (SIGSTOP): connections stay open, nothing is answered. */
  pause(): void;
  /** Thaws it (SIGCONT): it answers what was queued. */
  resume(): void;
  stop(): Promise<void>;
}

/** A three-master cluster, with a replica each when asked. */
export interface TestRedisCluster {
  /** `host:port` of every node (masters first). */
  nodes: string[];
  stop(): Promise<void>;
}

/** Starts one `redis-server` without persistence. */
export async function startRedis(): Promise<TestRedis> {
  const dir = await mkdtemp(join(tmpdir(), 'lease-cache-redis-'));
  const port = await freePort();
  const child = startServer(port, dir, []);
  const stop = async (): Promise<void> => {
    await stopChild(child);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await until(() => answers(port), `redis-server on ${port}`);
  } catch (error) {
    await stop();
    throw error;
  }
  const client = new Redis(port, '127.0.0.1', { maxRetriesPerRequest: 1 });
  return {
    url: `redis://127.0.0.1:${port}`,
    client,
    pause: () => void child.kill('SIGSTOP'),
    resume: () => void child.kill('SIGCONT'),
    async stop() {
      child.kill('SIGCONT');
      client.disconnect();
      await stop();
    },
  };
}

/**
 * Starts three `--cluster-enabled` nodes (six with `replicas: 1`) and joins them with
 * `redis-cli --cluster create`; with replicas, returns once each replica's link is up.
 */
export async function startRedisCluster(options: { replicas?: 0 | 1 } = {}): Promise<TestRedisCluster> {
  const replicas = options.replicas ?? 0;
  const dir = await mkdtemp(join(tmpdir(), 'lease-cache-cluster-'));
  const ports: number[] = [];
  for (let i = 0; i < 3 * (1 + replicas); i += 1) ports.push(await freePort());
  const children = ports.map((port) =>
    startServer(port, dir, ['--cluster-enabled', 'yes', '--cluster-config-file', join(dir, `nodes-${port}.conf`)]),
  );
  const stop = async (): Promise<void> => {
    await Promise.all(children.map(stopChild));
    await rm(dir, { recursive: true, force: true });
  };
  try {
    for (const port of ports) await until(() => answers(port), `cluster node ${port}`);
    const nodes = ports.map((port) => `127.0.0.1:${port}`);
    execFileSync('redis-cli', ['--cluster', 'create', ...nodes, '--cluster-replicas', String(replicas), '--cluster-yes'], {
      stdio: 'ignore',
    });
    for (const port of ports) {
      const info = (): string => execFileSync('redis-cli', ['-p', String(port), 'cluster', 'info'], { encoding: 'utf8' });
      await until(async () => info().includes('cluster_state:ok'), `cluster state ok on ${port}`);
    }
    const replication = (port: number): string =>
      execFileSync('redis-cli', ['-p', String(port), 'info', 'replication'], { encoding: 'utf8' });
    const linked = (): number => ports.filter((port) => /master_link_status:up/.test(replication(port))).length;
    // Generous: a loaded machine running other test files can take long over the first syncs.
    await until(async () => linked() === 3 * replicas, 'every replica linked to its master', 90_000);
    // And every node lists them in CLUSTER SLOTS (what clients learn the replicas from).
    if (replicas > 0) await until(async () => (await Promise.all(ports.map(listsReplicas))).every(Boolean), 'replicas in CLUSTER SLOTS');
    return { nodes, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

function startServer(port: number, dir: string, extra: string[]): ChildProcess {
  // A replica's first sync starts at once (Redis waits 5 s by default for more replicas).
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
    'no',
    '--repl-diskless-sync-delay',
    '0',
    ...extra,
  ];
  const child = spawn('redis-server', args, { stdio: 'ignore' });
  const kill = (): void => void child.kill('SIGKILL');
  process.once('exit', kill);
  child.once('exit', () => process.removeListener('exit', kill));
  return child;
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

/** True when every slot range of the node's CLUSTER SLOTS has a replica besides its master. */
async function listsReplicas(port: number): Promise<boolean> {
  const client = new Redis(port, '127.0.0.1', { maxRetriesPerRequest: 1 });
  try {
    const ranges = (await client.call('CLUSTER', 'SLOTS')) as unknown[][];
    return ranges.length > 0 && ranges.every((range) => range.length > 3);
  } finally {
    client.disconnect();
  }
}

async function answers(port: number): Promise<boolean> {
  const client = new Redis(port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  client.on('error', () => undefined); // not listening yet: the next try tells
  try {
    await client.connect();
    return (await client.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

async function until(probe: () => Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/**
 * Moves slot `slot` to the next master, keys and all, as `redis-cli --cluster reshard` does
 * (IMPORTING/MIGRATING, MIGRATE, then every node told), and returns the ids of the old and new owner.
 */
export async function moveSlot(slot: number, nodes: readonly string[]): Promise<{ from: string; to: string }> {
  const clients = nodes.map((node) => {
    const [host = '127.0.0.1', port = '0'] = node.split(':');
    return new Redis(Number(port), host, { maxRetriesPerRequest: 1 });
  });
  try {
    const ids = await Promise.all(clients.map(async (c) => String(await c.call('CLUSTER', 'MYID'))));
    const ranges = (await clients[0]?.call('CLUSTER', 'SLOTS')) as [number, number, [string, number, string]][];
    const owner = ranges.find(([first, last]) => slot >= first && slot <= last)?.[2][2];
    const from = ids.findIndex((id) => id === owner);
    if (from < 0) throw new Error(`no owner of slot ${slot}`);
    const to = (from + 1) % clients.length;
    const [source, target] = [clients[from] as Redis, clients[to] as Redis];
    await target.call('CLUSTER', 'SETSLOT', slot, 'IMPORTING', ids[from] as string);
    await source.call('CLUSTER', 'SETSLOT', slot, 'MIGRATING', ids[to] as string);
    const keys = (await source.call('CLUSTER', 'GETKEYSINSLOT', slot, 1000)) as string[];
    const [host = '127.0.0.1', port = '0'] = (nodes[to] ?? '').split(':');
    if (keys.length > 0) await source.call('MIGRATE', host, port, '', 0, 5000, 'KEYS', ...keys);
    for (const c of clients) await c.call('CLUSTER', 'SETSLOT', slot, 'NODE', ids[to] as string);
    return { from: ids[from] as string, to: ids[to] as string };
  } finally {
    for (const c of clients) c.disconnect();
  }
}
