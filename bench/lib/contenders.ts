// The contenders: each a child process on its own port, started once and stopped at the end.
// Every child is registered the moment it is spawned, so that stopAllChildren() (called on
// Ctrl-C, SIGTERM, an exception and at exit) leaves no process behind.
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, waitUntil } from '../../src/dev/processes.js';

/** The project root (bench/lib/../..). */
export const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The contenders, in the tables' order. */
export type ContenderKey =
  | 'project'
  | 'project-responses'
  | 'project-no-l1'
  | 'project-two'
  | 'project-no-cache'
  | 'apollo'
  | 'apollo-response-cache'
  | 'apollo-memory';

/** Every contender key, in the tables' order. */
export const CONTENDER_KEYS: readonly ContenderKey[] = [
  'project',
  'project-responses',
  'project-no-l1',
  'project-two',
  'project-no-cache',
  'apollo',
  'apollo-response-cache',
  'apollo-memory',
];

/** What a contender is and how to start it. */
export interface ContenderSpec {
  key: ContenderKey;
  /** As the tables and the chart name it. */
  label: string;
  /** True for the project (it has /metrics, sessions through login, and a cache namespace). */
  project: boolean;
  /** node arguments (after the executable). */
  args: string[];
  env: Record<string, string>;
  /** Server processes, each on its own port, sharing the database and the Redis; default 1. */
  instances?: number;
  /** True for a contender of the mixed workload only (not in the read rounds). */
  mixedOnly?: boolean;
}

/** A started contender. */
export interface Contender {
  spec: ContenderSpec;
  /** e.g. http://127.0.0.1:41234; the first instance's. */
  url: string;
  /** Every instance's base URL (one, or two for `project-two`): load alternates between them. */
  urls: string[];
  /** Where the project serves /metrics (production: METRICS_PORT, a port of its own); the first instance's. */
  metricsUrl: string;
  /** Every instance's /metrics base URL. */
  metricsUrls: string[];
  /** The last lines the process printed (for error messages). */
  output(): string;
}

/** Where the contenders get their data and cache. */
export interface ContenderEnv {
  /**
   * Each contender's own database, seeded alike: the mixed workload writes, and a contender's
   * writes must not reach another's data behind its cache (see {@link contenderDatabaseUri}).
   */
  mongodbUri: (key: ContenderKey) => string;
  redisUrl: string;
  /** How the project runs: its build (`node dist/index.js`) or its sources (`node --import tsx src/index.ts`). */
  projectRuntime: 'dist' | 'tsx';
  /** The project's CACHE_NAMESPACE. */
  projectNamespace: string;
  /** The response-cache peer's Keyv namespace. */
  responseCacheNamespace: string;
}

/**
 * The V8 flags every contender runs with, the peers as well as the project: the young
 * generation the project's production start uses (package.json `start:prod`, the Dockerfile).
 * Requests that wait on I/O keep their objects alive across a scavenge or two; with the default
 * 16 MB semi-space they are copied and promoted, and garbage collection took 18% of the project's
 * busy time on the warm catalog. 64 MB gives the project about a fifth more throughput there and
 * the in-memory peer about 2% (measured one after the other on this machine).
 */
export const NODE_FLAGS = ['--max-semi-space-size=64'];

/** `uri` (a MongoDB connection string) with its database renamed `<name>-<key>`. */
export function contenderDatabaseUri(uri: string, key: ContenderKey): string {
  const url = new URL(uri);
  url.pathname = `/${url.pathname.replace(/^\//, '') || 'bench'}-${key}`;
  return url.toString();
}

/** The contenders of issues 10, 11 and 23, in order. */
export function contenderSpecs(env: ContenderEnv): ContenderSpec[] {
  // BENCH_PROFILE_DIR: the project's contenders write a CPU profile there when they stop.
  const profile = process.env.BENCH_PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE_DIR}`] : [];
  const projectArgs = [
    ...NODE_FLAGS,
    ...profile,
    ...(env.projectRuntime === 'dist'
      ? [join(projectRoot, 'dist', 'index.js')]
      : ['--import', 'tsx', join(projectRoot, 'src', 'index.ts')]),
  ];
  const peerArgs = [...NODE_FLAGS, '--import', 'tsx', join(projectRoot, 'bench', 'peers', 'apollo-peer.ts')];
  const common = (key: ContenderKey) => ({ NODE_ENV: 'production', MONGODB_URI: env.mongodbUri(key), LOG_LEVEL: 'warn' });
  // The peers have no MongoDB deadline; the project's default (5 s) fails requests that queue that
  // long behind FerretDB's scans under 10 connections without a cache, so it gets a minute too.
  // The bench's connections stand for many clients behind one address: every view they send counts.
  // Its reads also wait for a slot of the read bulkhead (MONGODB_MAX_CONCURRENT_READS) as long,
  // rather than be refused SERVER_BUSY after 1 s: the peers have no bulkhead either.
  const projectEnv = (key: ContenderKey) => ({
    ...common(key),
    MONGODB_TIMEOUT_MS: '60000',
    MONGODB_READ_QUEUE_MS: '60000',
    ...BENCH_VIEW_LIMITS,
  });
  // Every layer on: the whole-response cache and the in-process L1 (issue 23), each project
  // contender in a namespace of its own.
  const everyLayer = (key: ContenderKey, namespace: string, l1: boolean) => ({
    ...projectEnv(key),
    REDIS_URL: env.redisUrl,
    CACHE_NAMESPACE: namespace,
    CACHE_RESPONSES: 'true',
    CACHE_L1: String(l1),
    // The bench's connections stand for many users behind one address: the per-client bound on
    // what responses may be stored would otherwise cap the mixed workload's re-stores.
    CACHE_RESPONSE_CLIENT_BYTES_PER_MINUTE: '0',
    // Surrogate keys in Varnish's form, for the Varnish part (bench/lib/varnish.ts); the POSTs of the other parts carry none.
    SURROGATE_KEY_HEADER: 'xkey',
  });
  return [
    // The entity and field path that serves every miss (issue 10's figures, with the L1 of
    // issue 23), then the same server with every layer (issues 11 and 23).
    {
      key: 'project',
      label: 'this project, entity path (L1)',
      project: true,
      args: projectArgs,
      env: {
        ...projectEnv('project'),
        REDIS_URL: env.redisUrl,
        CACHE_NAMESPACE: env.projectNamespace,
        CACHE_RESPONSES: 'false',
        CACHE_L1: 'true',
      },
    },
    {
      key: 'project-responses',
      label: 'this project, every layer (responses, L1)',
      project: true,
      args: projectArgs,
      env: everyLayer('project-responses', `${env.projectNamespace}-responses`, true),
    },
    // The mixed workload's references for the L1: the same without it, and two instances of it.
    {
      key: 'project-no-l1',
      label: 'this project, responses, CACHE_L1=false',
      project: true,
      args: projectArgs,
      env: everyLayer('project-no-l1', `${env.projectNamespace}-no-l1`, false),
      mixedOnly: true,
    },
    {
      key: 'project-two',
      label: 'this project, every layer, two instances (round-robin)',
      project: true,
      args: projectArgs,
      env: everyLayer('project-two', `${env.projectNamespace}-two`, true),
      instances: 2,
      mixedOnly: true,
    },
    // Production without REDIS_URL runs without a cache (config.ts, backing-services.ts).
    { key: 'project-no-cache', label: 'this project, no cache', project: true, args: projectArgs, env: projectEnv('project-no-cache') },
    { key: 'apollo', label: 'Apollo + DataLoader', project: false, args: peerArgs, env: { ...common('apollo'), PEER_MODE: 'mongo' } },
    {
      key: 'apollo-response-cache',
      label: 'Apollo + response cache',
      project: false,
      args: peerArgs,
      env: {
        ...common('apollo-response-cache'),
        PEER_MODE: 'response-cache',
        REDIS_URL: env.redisUrl,
        PEER_CACHE_NAMESPACE: env.responseCacheNamespace,
      },
    },
    {
      key: 'apollo-memory',
      label: 'Apollo in memory (floor)',
      project: false,
      args: peerArgs,
      env: { ...common('apollo-memory'), PEER_MODE: 'memory' },
    },
  ];
}

/** recordProductView limits that count every view of the bench's one client address (the defaults count one per product a minute). */
export const BENCH_VIEW_LIMITS = { VIEW_DEDUP_WINDOW_SECONDS: '0', VIEWS_PER_CLIENT_PER_MINUTE: '100000000' } as const;

const children = new Set<ChildProcess>();

/** Starts a contender's instances, each on a free port, and resolves once each /healthz answers; throws with its output if one dies or times out. */
export async function startContender(spec: ContenderSpec): Promise<Contender> {
  const instances = await Promise.all(Array.from({ length: spec.instances ?? 1 }, () => startInstance(spec)));
  const [first] = instances as [Instance, ...Instance[]];
  return {
    spec,
    url: first.url,
    urls: instances.map((i) => i.url),
    metricsUrl: first.metricsUrl,
    metricsUrls: instances.map((i) => i.metricsUrl),
    output: () => instances.map((i) => i.output()).join('\n'),
  };
}

/** One server process of a contender. */
interface Instance {
  url: string;
  metricsUrl: string;
  output(): string;
}

async function startInstance(spec: ContenderSpec): Promise<Instance> {
  const port = await freePort();
  // Production serves /metrics on a port of its own (METRICS_PORT): each contender its own.
  const metricsPort = await freePort();
  const child = spawn(process.execPath, spec.args, {
    cwd: projectRoot,
    env: { ...process.env, ...spec.env, PORT: String(port), HOST: '127.0.0.1', METRICS_PORT: String(metricsPort) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  child.once('exit', () => children.delete(child));
  let output = '';
  const keep = (chunk: Buffer): void => {
    output = (output + chunk.toString()).slice(-4_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitUntil(
      `${spec.label} on port ${port}`,
      async () => {
        if (child.exitCode !== null || child.signalCode !== null)
          throw new Error(`exited (${child.exitCode ?? child.signalCode}): ${output}`);
        return (await fetch(`${url}/healthz`)).ok;
      },
      { timeoutMs: 60_000, intervalMs: 200 },
    );
  } catch (error) {
    await stopChild(child);
    throw new Error(`${spec.label} did not start: ${error instanceof Error ? error.message : String(error)}`);
  }
  return { url, metricsUrl: `http://127.0.0.1:${metricsPort}`, output: () => output };
}

/** SIGTERM to every child still running, SIGKILL to those still there after `graceMs`; resolves when all exited. */
export async function stopAllChildren(graceMs = 5_000): Promise<void> {
  await Promise.all([...children].map((child) => stopChild(child, graceMs)));
}

/** SIGKILL to every child still running: for process.on('exit'), where nothing asynchronous runs. */
export function killAllChildren(): void {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}

function stopChild(child: ChildProcess, graceMs = 5_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((done) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      done();
    });
    child.kill('SIGTERM');
  });
}
