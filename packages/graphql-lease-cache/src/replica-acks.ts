import { createHash } from 'node:crypto';
import calculateSlot from 'cluster-key-slot';
import { Cluster } from 'ioredis';
import type { RedisClient } from './redis-client.js';
import { DedicatedConnection } from './dedicated-connection.js';

// Why writes wait for a replica. Redis replicates asynchronously: a master acknowledges a write
// before any replica has it. When that master dies and its replica is promoted, whatever the
// replica had not received is gone. For an invalidation that is a stale read: the new master
// still holds the value the mutation replaced, and the mutation has returned. So a write script
// whose loss would be a stale read (invalidate, refresh, response invalidation) is followed, in
// the same pipeline and so on the same node and connection, by `WAIT <n> <timeoutMs>`; when
// fewer than n replicas acknowledged in time the caller treats the write as not delivered (the
// core keeps it pending, the fleet records it and fences the write), exactly as if Redis had
// not answered.
//
// On a connection of its own (a duplicate of the cache's client): a WAIT holds up every command
// behind it on its connection, and the cache's reads must not wait for replicas. The script goes
// as EVALSHA, then (NOSCRIPT) as EVAL, each in the pipeline before the WAIT: ioredis's own
// NOSCRIPT retry of a defined command would run outside the pipeline, after the WAIT.
//
// n is the configured count, capped by the replicas of that master that could be promoted: those
// the cluster lists for it and does not hold as failed (`CLUSTER NODES`, read at most once a
// second, and at once after a shortfall). A master with none (a replica-less cluster, or the
// replica just promoted after a failover while the old master is down) has nothing that could
// take over without its writes, so it is not waited on. A replica that is alive but has lost
// its link still counts: writes are not delivered until it is back and has them.

/** Replica acknowledgement of the cache's writes ({@link ReplicaAcks}). */
export interface ReplicaAcksOptions {
  /** Replicas that must have each invalidation before it counts as delivered; 0: none (no WAIT). */
  replicas: number;
  /** How long `WAIT` waits for them, in milliseconds; keep it below the Redis command timeout. */
  timeoutMs: number;
}

/** The default on a Redis Cluster: one replica (where the master has one), 50 ms. On one Redis: off. */
export const DEFAULT_CLUSTER_REPLICA_ACKS: Readonly<ReplicaAcksOptions> = Object.freeze({ replicas: 1, timeoutMs: 50 });

/** Fewer replicas than required acknowledged a write in time: the write is not delivered. */
export class ReplicaAckError extends Error {
  readonly code = 'REPLICA_ACK_TIMEOUT';
  constructor(
    /** The master (`host:port`; empty on one Redis). */
    readonly node: string,
    readonly required: number,
    readonly acknowledged: number,
  ) {
    super(`${acknowledged} of ${required} replica(s) of ${node || 'Redis'} acknowledged the write in time`);
    this.name = 'ReplicaAckError';
  }
}

/** Where a write goes and how many replicas must acknowledge it there. */
interface AckTarget {
  node: string;
  replicas: number;
}

/** How often the cluster's replicas are read again, at most, in milliseconds. */
const TOPOLOGY_REFRESH_MS = 1_000;
/** Replies that mean the pipeline did not reach the slot's master: ioredis reroutes plain commands, not a pipeline with WAIT. */
const REDIRECTED = /^(MOVED|ASK|TRYAGAIN|CLUSTERDOWN)\b|Connection is closed/;

/** Waits for replicas after the cache's writes; see the comment at the top of replica-acks.ts. */
export class ReplicaAcks {
  readonly #client: RedisClient;
  readonly #replicas: number;
  readonly #timeoutMs: number;
  /** Per master `host:port`: its replicas that could be promoted (Cluster only). */
  #topology: Map<string, number> | undefined;
  #loadedAt = 0;
  #loading: Promise<void> | undefined;
  /** Its own connection: a WAIT holds up every command behind it. */
  readonly #connection: DedicatedConnection;

  /** `commandTimeoutMs`: the client's command timeout, which a WAIT must end before. */
  constructor(client: RedisClient, options: ReplicaAcksOptions, commandTimeoutMs: number) {
    if (!Number.isInteger(options.replicas) || options.replicas < 0)
      throw new TypeError(`replicaAcks.replicas must be a non-negative integer, got ${String(options.replicas)}`);
    if (!(Number.isFinite(options.timeoutMs) && options.timeoutMs > 0))
      throw new TypeError(`replicaAcks.timeoutMs must be a positive number of milliseconds, got ${String(options.timeoutMs)}`);
    if (options.replicas > 0 && options.timeoutMs >= commandTimeoutMs)
      throw new TypeError(`replicaAcks.timeoutMs (${options.timeoutMs}) must be below the Redis command timeout (${commandTimeoutMs} ms)`);
    this.#client = client;
    this.#connection = new DedicatedConnection(client, 'replica acknowledgement');
    this.#replicas = options.replicas;
    this.#timeoutMs = options.timeoutMs;
  }

  /** The configured replica count (0: writes never wait). */
  get replicas(): number {
    return this.#replicas;
  }

  /**
   * Runs the Lua script `lua` (`numKeys` keys first in `args`, all in the slot of `key`) on that
   * slot's master, followed there by `WAIT` when it has replicas to wait for. Resolves with the
   * script's reply and, when too few replicas acknowledged, the {@link ReplicaAckError} (not
   * thrown: the caller throws it outside the circuit breaker, a replica's silence is not a
   * failure of Redis). Rejects when the script fails or the pipeline was redirected (the slot
   * moved: the slot map is read again).
   */
  async write(key: string, lua: string, numKeys: number, args: readonly Arg[]): Promise<{ reply: unknown; short: ReplicaAckError | null }> {
    const connection = await this.#connection.get();
    const target = await this.#target(connection, key);
    let results = await this.#run(connection, ['evalsha', shaOf(lua)], numKeys, args, target.replicas);
    // A node without the script (restarted, promoted, flushed) did not run it: again as EVAL.
    if (results[0]?.[0]?.message.includes('NOSCRIPT')) results = await this.#run(connection, ['eval', lua], numKeys, args, target.replicas);
    const [error, reply] = results[0] ?? [new Error('Redis answered a write pipeline with no reply')];
    if (error) {
      if (connection instanceof Cluster && REDIRECTED.test(error.message)) connection.refreshSlotsCache();
      throw error;
    }
    if (target.replicas === 0) return { reply, short: null };
    const [waitError, acknowledged] = results[1] ?? [new Error('Redis answered WAIT with no reply')];
    if (waitError) throw waitError;
    const count = Number(acknowledged);
    if (count >= target.replicas) return { reply, short: null };
    void this.#refresh();
    return { reply, short: new ReplicaAckError(target.node, target.replicas, count) };
  }

  /** Closes its connection (the cache closing). */
  close(): void {
    this.#connection.close();
  }

  async #run(
    connection: RedisClient,
    [command, script]: [string, string],
    numKeys: number,
    args: readonly Arg[],
    replicas: number,
  ): Promise<[Error | null, unknown][]> {
    const pipeline = connection.pipeline();
    pipeline.call(command, script, numKeys, ...args);
    if (replicas > 0) pipeline.call('wait', replicas, this.#timeoutMs);
    return (await pipeline.exec()) ?? [];
  }

  async #target(client: RedisClient, key: string): Promise<AckTarget> {
    if (this.#replicas === 0) return { node: '', replicas: 0 };
    if (!(client instanceof Cluster)) return { node: '', replicas: this.#replicas };
    if (!this.#topology) await this.#refresh();
    else if (Date.now() - this.#loadedAt > TOPOLOGY_REFRESH_MS) void this.#refresh();
    const node = client.slots[calculateSlot(key)]?.[0] ?? '';
    // A master not (yet) in the table read: the configured count, so that nothing goes unwaited.
    const known = this.#topology?.get(node);
    return { node, replicas: Math.min(this.#replicas, known ?? this.#replicas) };
  }

  /** Reads the cluster's masters and their replicas again (one at a time); never rejects. */
  #refresh(): Promise<void> {
    if (this.#loading) return this.#loading;
    const client = this.#client;
    if (!(client instanceof Cluster)) return Promise.resolve();
    this.#loading = (async () => {
      try {
        const table = (await client.cluster('NODES')) as string;
        this.#topology = promotableReplicas(table);
        this.#loadedAt = Date.now();
      } catch {
        // Kept as it was; the next write asks again. Unknown masters wait for the configured count.
      } finally {
        this.#loading = undefined;
      }
    })();
    return this.#loading;
  }
}

type Arg = string | number | Buffer;

const shas = new Map<string, string>();

/** The SHA1 of a script, as EVALSHA names it (memoised). */
function shaOf(lua: string): string {
  let sha = shas.get(lua);
  if (sha === undefined) shas.set(lua, (sha = createHash('sha1').update(lua).digest('hex')));
  return sha;
}

/**
 * Per master (`host:port`), from a `CLUSTER NODES` reply: its replicas that could be promoted
 * (neither failed nor `nofailover`, and with an address). A replica only suspected (`fail?`) counts.
 */
export function promotableReplicas(table: string): Map<string, number> {
  const masters = new Map<string, string>(); // id -> host:port
  const counts = new Map<string, number>(); // master id -> replicas
  for (const line of table.split('\n')) {
    const [id, address, flagList, masterId] = line.trim().split(' ');
    if (!id || !address || !flagList || !masterId) continue;
    const flags = new Set(flagList.split(','));
    const hostPort = address.split('@')[0] ?? '';
    if (flags.has('master')) masters.set(id, hostPort);
    else if (flags.has('slave') && masterId !== '-' && !['fail', 'nofailover', 'noaddr', 'handshake'].some((f) => flags.has(f)))
      counts.set(masterId, (counts.get(masterId) ?? 0) + 1);
  }
  const out = new Map<string, number>();
  for (const [id, hostPort] of masters) out.set(hostPort, counts.get(id) ?? 0);
  return out;
}
