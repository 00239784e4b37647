import { execFile, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import calculateSlot from 'cluster-key-slot';
import { Redis } from 'ioredis';
import { freePort, spawnChild, stopChild } from '../../src/dev/processes.js';
import { until } from './wait.js';

const run = promisify(execFile);

/** Options of {@link startRedisCluster}. */
export interface TestRedisClusterOptions {
  /** Replicas per master: 0 (three nodes, the default) or 1 (three masters and three replicas). */
  replicas?: 0 | 1;
  /** `cluster-node-timeout`, in milliseconds: how long a silent master takes to be failed over; default 1000. */
  nodeTimeoutMs?: number;
}

/** A small Redis Cluster of a test's own, on loopback. */
export interface TestRedisCluster {
  /** `host:port` of every node started (masters and replicas). */
  nodes: string[];
  /** The master serving `key`'s slot now (`host:port`), as the cluster says. */
  masterOf(key: string): Promise<string>;
  /** The replicas of `master` (`host:port`) that are up and in sync with it. */
  replicasOf(master: string): Promise<string[]>;
  /** The pid of a node's redis-server. */
  pidOf(node: string): number;
  /** SIGKILLs a node and resolves once it is gone. */
  kill(node: string): Promise<void>;
  /** Resolves once a replica of the killed master `dead` serves its slots and every live node says cluster_state:ok; returns the new master. */
  failedOver(dead: string, slotKey: string): Promise<string>;
  /** Restarts a killed node with its cluster config (it rejoins, as a replica of whoever took its slots), and waits until it is in sync. */
  restart(node: string): Promise<void>;
  stop(): Promise<void>;
}

interface Node {
  port: number;
  child: ChildProcess;
}

/**
 * Starts `redis-server --cluster-enabled yes` nodes and joins them with `redis-cli --cluster
 * create`: three masters, and with `replicas: 1` one replica each, and waits until every node
 * says cluster_state:ok and every replica's link to its master is up.
 */
export async function startRedisCluster(options: TestRedisClusterOptions = {}): Promise<TestRedisCluster> {
  const replicas = options.replicas ?? 0;
  const dir = await mkdtemp(join(tmpdir(), 'gfc-cluster-'));
  const ports = await Promise.all(Array.from({ length: 3 * (1 + replicas) }, () => freePort()));
  const spawnNode = (port: number): Node => ({
    port,
    child: spawnChild('redis-server', [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--cluster-enabled',
      'yes',
      '--cluster-config-file',
      join(dir, `nodes-${port}.conf`),
      '--cluster-node-timeout',
      String(options.nodeTimeoutMs ?? 1_000),
      '--dir',
      dir,
      '--save',
      '',
      '--appendonly',
      'no',
      // A replica's first sync starts at once (Redis waits 5 s by default for more replicas).
      '--repl-diskless-sync-delay',
      '0',
    ]).child,
  });
  const nodes = new Map<string, Node>(ports.map((port) => [`127.0.0.1:${port}`, spawnNode(port)]));
  const stop = async (): Promise<void> => {
    for (const node of nodes.values()) node.child.kill('SIGCONT');
    await Promise.all([...nodes.values()].map((node) => stopChild(node.child)));
    await rm(dir, { recursive: true, force: true });
  };
  const live = (): string[] => [...nodes].filter(([, n]) => n.child.exitCode === null && n.child.signalCode === null).map(([k]) => k);
  try {
    for (const port of ports) await until(() => ping(port), { what: `cluster node ${port}`, timeoutMs: 30_000, intervalMs: 100 });
    await run('redis-cli', ['--cluster', 'create', ...nodes.keys(), '--cluster-replicas', String(replicas), '--cluster-yes']);
    await settled(live());
  } catch (error) {
    await stop();
    throw error;
  }
  const cluster: TestRedisCluster = {
    nodes: [...nodes.keys()],
    masterOf: async (key) => masterOfSlot(await clusterNodes(live()), calculateSlot(key)),
    replicasOf: async (master) => {
      const table = await clusterNodes(live());
      const id = table.find((row) => row.address === master)?.id;
      const replicaRows = table.filter((row) => row.master === id && !row.flags.includes('fail'));
      const inSync = await Promise.all(replicaRows.map(async (row) => ((await linkUp(row.address)) ? row.address : null)));
      return inSync.filter((address): address is string => address !== null);
    },
    pidOf: (node) => nodeOf(nodes, node).child.pid ?? 0,
    kill: async (node) => {
      const { child } = nodeOf(nodes, node);
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
    },
    failedOver: async (dead, slotKey) => {
      let master = dead;
      await until(
        async () => {
          try {
            master = masterOfSlot(await clusterNodes(live()), calculateSlot(slotKey));
          } catch {
            return false; // the slot has no live master until the replica is promoted
          }
          return master !== dead && (await allOk(live()));
        },
        { what: `a replica of ${dead} promoted`, timeoutMs: 30_000, intervalMs: 50 },
      );
      return master;
    },
    restart: async (node) => {
      const port = nodeOf(nodes, node).port;
      nodes.set(node, spawnNode(port));
      await until(() => ping(port), { what: `node ${port} restarted`, timeoutMs: 30_000, intervalMs: 100 });
      await until(() => linkUp(node), { what: `node ${port} in sync as a replica`, timeoutMs: 30_000, intervalMs: 100 });
      await settled(live());
    },
    stop,
  };
  return cluster;
}

function nodeOf(nodes: Map<string, Node>, key: string): Node {
  const node = nodes.get(key);
  if (!node) throw new Error(`no cluster node ${key}`);
  return node;
}

/** Waits until every node says cluster_state:ok and every replica's link to its master is up. */
async function settled(live: string[]): Promise<void> {
  await until(() => allOk(live), { what: 'cluster state ok on every node', timeoutMs: 30_000, intervalMs: 100 });
  await until(
    async () => {
      const table = await clusterNodes(live);
      const replicas = table.filter((row) => row.flags.includes('slave') && !row.flags.includes('fail'));
      return (await Promise.all(replicas.map((row) => linkUp(row.address)))).every(Boolean);
    },
    { what: 'every replica in sync', timeoutMs: 30_000, intervalMs: 100 },
  );
  // And listed by every node in CLUSTER SLOTS, which is where clients learn the replicas from.
  await until(
    async () => {
      try {
        const listed = await Promise.all(live.map((address) => slotsNodes(address)));
        return listed.every((count) => count === live.length);
      } catch {
        return false;
      }
    },
    { what: 'every node listing every replica in CLUSTER SLOTS', timeoutMs: 30_000, intervalMs: 100 },
  );
}

/** How many distinct nodes (masters and replicas) a node's CLUSTER SLOTS names. */
async function slotsNodes(address: string): Promise<number> {
  const [host = '127.0.0.1', port = '6379'] = address.split(':');
  const client = new Redis(Number(port), host, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  client.on('error', () => undefined);
  try {
    await client.connect();
    const ranges = (await client.call('CLUSTER', 'SLOTS')) as [number, number, ...[string, number][]][];
    return new Set(ranges.flatMap(([, , ...nodes]) => nodes.map(([ip, p]) => `${ip}:${p}`))).size;
  } finally {
    client.disconnect();
  }
}

/** One row of CLUSTER NODES. */
interface NodeRow {
  id: string;
  address: string;
  flags: string[];
  master: string;
  slots: [number, number][];
}

async function command(address: string, ...args: string[]): Promise<string> {
  const [host = '127.0.0.1', port = '6379'] = address.split(':');
  const client = new Redis(Number(port), host, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return String(await client.call(args[0] ?? 'PING', ...args.slice(1)));
  } finally {
    client.disconnect();
  }
}

async function ping(port: number): Promise<boolean> {
  try {
    return (await command(`127.0.0.1:${port}`, 'PING')) === 'PONG';
  } catch {
    return false; // not listening yet
  }
}

async function allOk(live: string[]): Promise<boolean> {
  try {
    const infos = await Promise.all(live.map((address) => command(address, 'CLUSTER', 'INFO')));
    return infos.every((info) => /cluster_state:ok/.test(info));
  } catch {
    return false;
  }
}

async function linkUp(address: string): Promise<boolean> {
  try {
    return /master_link_status:up/.test(await command(address, 'INFO', 'replication'));
  } catch {
    return false;
  }
}

/** CLUSTER NODES as the first live node that answers sees it. */
async function clusterNodes(live: string[]): Promise<NodeRow[]> {
  for (const address of live) {
    try {
      return parseNodes(await command(address, 'CLUSTER', 'NODES'));
    } catch {
      // try the next one
    }
  }
  throw new Error('no cluster node answered CLUSTER NODES');
}

function parseNodes(text: string): NodeRow[] {
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const [id = '', address = '', flags = '', master = '', , , , , ...slots] = line.trim().split(' ');
      return {
        id,
        address: address.split('@')[0] ?? '',
        flags: flags.split(','),
        master,
        slots: slots
          .filter((range) => !range.startsWith('['))
          .map((range) => {
            const [from = '0', to = from] = range.split('-');
            return [Number(from), Number(to)] as [number, number];
          }),
      };
    });
}

function masterOfSlot(table: NodeRow[], slot: number): string {
  const row = table.find(
    (r) => r.flags.includes('master') && !r.flags.includes('fail') && r.slots.some(([a, b]) => slot >= a && slot <= b),
  );
  if (!row) throw new Error(`no live master serves slot ${slot}`);
  return row.address;
}
