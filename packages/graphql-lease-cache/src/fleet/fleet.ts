import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { CacheEvents } from '../events.js';
import type { CacheLogger } from '../logger.js';
import type { RedisClient } from '../redis-client.js';
import { AckWaiter } from './acks.js';
import { fleetCommands, idAfter, type FleetCommands } from './commands.js';
import type { IntentLog } from './intents.js';
import { FleetLease, type FleetLeaseSettings } from './lease.js';

/** What the fleet drops from this process's L1 (graphql-lease-cache's L1Cache). */
export interface FleetL1 {
  /** Drops the entries keyed by, or depending on, any of `dependencies`. */
  invalidate(dependencies: readonly string[]): void;
  /** Drops everything (and refuses fills by reads that began before). */
  flush(reason: string): void;
}

/** The Redis names of a fleet (built by the keyspace). */
export interface FleetKeys {
  /** The hash: incarnation, newest invalidation id, members. */
  hash: string;
  /** The log of invalidations (a stream). */
  log: string;
  /** The pub/sub channel invalidations are published on. */
  channel: string;
  /** The pub/sub channel acknowledgements are published on. */
  ackChannel: string;
}

/** Options of {@link Fleet}. */
export interface FleetOptions extends Partial<FleetLeaseSettings> {
  /**
   * A connection of the fleet's own for its commands (not through the cache's circuit breaker: the
   * lease is how the fleet learns Redis is away); closed with the fleet.
   */
  client: RedisClient;
  /** A connection of its own for pub/sub. */
  subscriber: RedisClient;
  keys: FleetKeys;
  /** This member's name; default host, pid and random bytes. */
  member?: string;
  /** This process's L1, if any: emptied when the lease lapses, and told of every invalidation. */
  l1?: FleetL1 | null;
  /** Where undeliverable invalidations are recorded; default none (they then die with the process). */
  intents?: IntentLog | null;
  /** Delivers an invalidation to Redis (the core's delivery: entities, tags, responses, then {@link Fleet.broadcast}); rejects on failure. */
  deliver(keys: readonly string[], tags: readonly string[]): Promise<void>;
  /** The log's approximate length bound; default 10,000 invalidations. */
  logMaxLength?: number;
  events: CacheEvents;
  logger: CacheLogger;
}

/**
 * This process as a member of the fleet that shares one Redis: the protocol that keeps the
 * promise "once a mutation has returned on any instance, no later query on any instance returns
 * the value it replaced" with an in-process L1 on every instance, and across crashes.
 *
 * - Every member holds a lease in Redis (FleetLease) and serves from its caches, L1 and Redis
 *   alike, only while the lease holds by its own clock ({@link servable}); a lease that lapses
 *   empties the L1 before anything is served again.
 * - A write, after its invalidation reached Redis, publishes it to every member
 *   ({@link broadcast}) and returns only once every member that holds a lease and an L1 has
 *   acknowledged it, or that member's lease has run out (AckWaiter).
 * - An invalidation that cannot reach Redis is recorded in the intent log, the member stops
 *   renewing its lease, and the write returns once every lease granted before that has ended
 *   ({@link owe}); by then every other member finds this one dead, delivers what it recorded, and
 *   only then serves again.
 */
export class Fleet {
  readonly member: string;
  /** The fleet's own connection (its lifecycle), and its commands on it. */
  readonly #connection: RedisClient;
  readonly #client: FleetCommands;
  readonly #subscriber: RedisClient;
  readonly #keys: FleetKeys;
  readonly #l1: FleetL1 | null;
  readonly #events: CacheEvents;
  readonly #logger: CacheLogger;
  readonly #logMaxLength: number;
  readonly #acks: AckWaiter;
  readonly #lease: FleetLease;
  /** The newest invalidation this member has applied (a stream id). */
  #applied = '0-0';
  #ackScheduled = false;
  #closed = false;

  constructor(options: FleetOptions) {
    this.member = options.member ?? `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
    this.#connection = options.client;
    this.#client = fleetCommands(options.client);
    this.#subscriber = options.subscriber;
    this.#keys = options.keys;
    this.#l1 = options.l1 ?? null;
    this.#events = options.events;
    this.#logger = options.logger;
    this.#logMaxLength = options.logMaxLength ?? 10_000;
    this.#lease = new FleetLease({
      ...options,
      client: this.#client,
      member: this.member,
      l1: this.#l1,
      applied: () => this.#applied,
      onFresh: (last) => {
        if (idAfter(last, this.#applied)) this.#applied = last;
      },
    });
    const marginMs = this.#lease.settings.marginMs;
    this.#acks = new AckWaiter({ client: this.#client, hashKey: options.keys.hash, marginMs });
    this.#subscriber.on('message', (channel: string, message: string) => this.#onMessage(channel, message));
    // Messages published while the connection was away are lost: what this member held may be stale.
    this.#subscriber.on('close', () => this.#lease.lapse('subscriber'));
    this.#subscriber.on('ready', () => void this.#subscribe());
  }

  /** Resolves when the first registration was tried (whatever its outcome): reads wait for it once, at start. */
  get ready(): Promise<void> {
    return this.#lease.ready;
  }

  /** Subscribes and registers; reads are served from the caches once registered. */
  start(): Promise<void> {
    if (this.#subscriber.status === 'ready') void this.#subscribe();
    else if (this.#subscriber.status === 'wait') this.#subscriber.connect().catch(() => undefined);
    if (this.#connection.status === 'wait') this.#connection.connect().catch(() => undefined);
    this.#lease.start();
    return this.#lease.ready;
  }

  /** True while this member may serve from its caches (L1 and Redis): its lease holds and it owes nothing. */
  servable(): boolean {
    return this.#lease.servable();
  }

  /**
   * After an invalidation of `dependencies` reached Redis: drops them from this process's L1,
   * publishes them to the fleet, and resolves once every member with an L1 has dropped them or
   * its lease has run out. Rejects when the publication fails (the caller then owes it).
   */
  async broadcast(dependencies: readonly string[]): Promise<void> {
    if (dependencies.length === 0) return;
    this.#l1?.invalidate(dependencies);
    const started = performance.now();
    const reply = await this.#client.glcFleetPublish(
      this.#keys.hash,
      this.#keys.log,
      this.member,
      dependencies.join('\n'),
      this.#keys.channel,
      this.#logMaxLength,
    );
    const { leaseMs, maxLagMs, marginMs } = this.#lease.settings;
    const id = String(reply[1]);
    if (reply[0] === 'noinc') {
      // The member list was lost (Redis restarted empty, the hash evicted): any lease granted
      // under it ends within one lease.
      await sleep(leaseMs + marginMs);
    } else {
      const members = [];
      for (let i = 2; i + 1 < reply.length; i += 2) members.push({ member: String(reply[i]), remainingMs: Number(reply[i + 1]) });
      await this.#acks.wait(id, members, maxLagMs + leaseMs + 2 * marginMs);
    }
    this.#events.fleet('ack', performance.now() - started);
  }

  /**
   * An invalidation of `keys` and `tags` could not reach Redis: records it in the intent log,
   * stops serving and renewing, and resolves once no other member can still serve what it
   * names (see FleetLease.fenceAt), or sooner once it is delivered ({@link settled}). Never rejects.
   */
  owe(keys: readonly string[], tags: readonly string[]): Promise<void> {
    return this.#lease.owe(keys, tags);
  }

  /** Everything this member owed has been delivered (and broadcast): it may register again. */
  settled(): void {
    this.#lease.settled();
  }

  /** Leaves the fleet, so that no one takes it for dead; while it owes an invalidation, only stops (see {@link owe}). */
  async leave(): Promise<void> {
    const owing = this.#lease.owing;
    this.#lease.close();
    // Owing, it stays: its lease runs out and another member delivers what it recorded. (A leave
    // that a paused Redis runs late is refused by the script, for the same reason.)
    if (!owing) {
      const { maxDelayMs } = this.#lease.settings;
      await this.#client.glcFleetLeave(this.#keys.hash, this.member, Date.now(), maxDelayMs).catch(() => undefined);
    }
    this.close();
  }

  /** Stops renewing and listening (the lease then runs out: others take this member for dead). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#lease.close();
    this.#subscriber.disconnect();
    this.#connection.disconnect();
  }

  async #subscribe(): Promise<void> {
    if (this.#closed) return;
    try {
      await this.#subscriber.subscribe(this.#keys.channel, this.#keys.ackChannel);
      this.#lease.subscribed();
    } catch (error) {
      // Retried: until subscribed, this member registers nothing and serves from the source.
      this.#logger.warn({ err: error }, 'fleet: could not subscribe; serving from the source until it can');
      setTimeout(() => void this.#subscribe(), this.#lease.settings.renewEveryMs).unref();
    }
  }

  #onMessage(channel: string, message: string): void {
    if (channel === this.#keys.ackChannel) {
      const space = message.indexOf(' ');
      this.#acks.onAck(message.slice(0, space), message.slice(space + 1));
      return;
    }
    if (channel !== this.#keys.channel) return;
    const newline = message.indexOf('\n');
    const [prev = '', id = '', writer = ''] = message.slice(0, newline < 0 ? message.length : newline).split(' ');
    if (!idAfter(id, this.#applied)) return; // covered: this member registered afresh after it
    if (prev !== this.#applied) {
      // A message in between was lost (the subscription broke and came back): anything may be stale.
      this.#l1?.flush('gap');
    } else if (writer !== this.member && newline >= 0 && newline < message.length - 1) {
      // (This member's own were dropped before they were published: what it held since is newer.)
      this.#l1?.invalidate(message.slice(newline + 1).split('\n'));
    }
    this.#applied = id;
    this.#scheduleAck();
  }

  /** One acknowledgement per turn of the event loop, for everything applied in it. */
  #scheduleAck(): void {
    if (this.#ackScheduled) return;
    this.#ackScheduled = true;
    setImmediate(() => {
      this.#ackScheduled = false;
      const id = this.#applied;
      this.#client.glcFleetAck(this.#keys.hash, this.member, id, this.#keys.ackChannel).catch((error: unknown) => {
        // Writers then wait for this member's lease, which the renewal extends only while it keeps up.
        this.#logger.debug({ err: error }, 'fleet: acknowledgement not sent');
      });
    });
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}
