import { randomBytes } from 'node:crypto';
import type { CacheEvents } from '../events.js';
import type { CacheLogger } from '../logger.js';
import type { FleetCommands } from './commands.js';
import type { FleetKeys, FleetL1 } from './fleet.js';
import type { IntentLog } from './intents.js';

/** The timings of a fleet lease; every one in milliseconds. */
export interface FleetLeaseSettings {
  /** How long a renewal holds, by Redis's clock from when it runs; default 1500. */
  leaseMs: number;
  /** How often the lease is renewed; default a quarter of the lease. */
  renewEveryMs: number;
  /** A renewal that runs later than this after it was sent is refused (a paused Redis ran it late); default a third of the lease. */
  maxDelayMs: number;
  /** The longest an invalidation may stay unapplied by a member that keeps renewing; default half the lease. */
  maxLagMs: number;
  /** Allowance for clock skew between the hosts, added to every deadline; default 50. */
  marginMs: number;
  /** A dead member is forgotten after this long (its intents are then left to the sweep); default 60,000. */
  deadForgetMs: number;
  /** How often every intent older than this is delivered, whoever recorded it; default 10,000. */
  sweepEveryMs: number;
}

/** Options of {@link FleetLease}. */
export interface FleetLeaseOptions extends Partial<FleetLeaseSettings> {
  client: FleetCommands;
  keys: FleetKeys;
  member: string;
  l1: FleetL1 | null;
  intents?: IntentLog | null;
  deliver(keys: readonly string[], tags: readonly string[]): Promise<void>;
  /** The newest invalidation this member has applied. */
  applied(): string;
  /** Registered afresh, acked up to `last` (the L1 was emptied just before). */
  onFresh(last: string): void;
  events: CacheEvents;
  logger: CacheLogger;
}

/**
 * A member's lease (see Fleet): renewed every `renewEveryMs`, held by this process's clock from
 * when the renewal was sent (never later than Redis holds it), lapsing (the L1 emptied, a fresh
 * registration needed) when a renewal fails for longer than that, the event loop was paused past
 * it, the subscription broke, or the member owes an invalidation.
 */
export class FleetLease {
  readonly settings: Readonly<FleetLeaseSettings>;
  readonly ready: Promise<void>;
  readonly #o: FleetLeaseOptions;
  #resolveReady: () => void = () => undefined;
  /** Until when the lease holds, by performance.now(); 0: not held. */
  #validUntil = 0;
  #inc = '';
  /** Register afresh on the next renewal (the L1 was emptied since the last). */
  #reset = true;
  /** Bumped by every lapse: a renewal sent before one does not count. */
  #epoch = 0;
  #owing = 0;
  #recorded: string[] = [];
  #settledWaiters: (() => void)[] = [];
  /** When the newest renewal was sent, ms since the epoch. */
  #lastSentWall = 0;
  #registered = false;
  #subscribed = false;
  #renewing: Promise<void> | null = null;
  #timers: NodeJS.Timeout[] = [];
  #closed = false;

  constructor(options: FleetLeaseOptions) {
    this.#o = options;
    const leaseMs = options.leaseMs ?? 1_500;
    this.settings = Object.freeze({
      leaseMs,
      renewEveryMs: options.renewEveryMs ?? Math.round(leaseMs / 4),
      maxDelayMs: options.maxDelayMs ?? Math.round(leaseMs / 3),
      maxLagMs: options.maxLagMs ?? Math.round(leaseMs / 2),
      marginMs: options.marginMs ?? 50,
      deadForgetMs: options.deadForgetMs ?? 60_000,
      sweepEveryMs: options.sweepEveryMs ?? 10_000,
    });
    for (const [name, value] of Object.entries(this.settings)) {
      if (!(Number.isFinite(value) && value > 0)) throw new TypeError(`fleet ${name} must be a positive number of ms, got ${value}`);
    }
    this.ready = new Promise((resolve) => (this.#resolveReady = resolve));
  }

  /** Starts the renewals and the sweep. */
  start(): void {
    const renew = setInterval(() => void this.renew(), this.settings.renewEveryMs);
    const sweep = setInterval(() => void this.#sweep(), this.settings.sweepEveryMs);
    // Reads wait for the first registration at most one lease.
    const giveUp = setTimeout(() => this.#resolveReady(), this.settings.leaseMs);
    this.#timers = [renew, sweep, giveUp];
    for (const timer of this.#timers) timer.unref();
  }

  /** The subscription is in place (again): register. */
  subscribed(): void {
    this.#subscribed = true;
    void this.renew();
  }

  /** True while the lease holds by this process's clock and nothing is owed; a lease found over lapses here. */
  servable(): boolean {
    if (this.#validUntil === 0) return false;
    if (performance.now() < this.#validUntil) return true;
    this.lapse('expired');
    return false;
  }

  /** Stops serving: the L1 is emptied and the next renewal registers afresh. */
  lapse(reason: string): void {
    if (reason === 'subscriber') this.#subscribed = false;
    this.#epoch += 1;
    this.#reset = true;
    if (this.#validUntil === 0 && reason !== 'owing') return;
    this.#validUntil = 0;
    this.#o.l1?.flush(reason);
    this.#o.events.fleet('lapse', 0, reason);
    this.#o.logger.info({ reason }, 'fleet lease lapsed: serving from the source until registered again');
    if (reason !== 'owing') void this.renew();
  }

  /** Renews now (one renewal at a time). */
  renew(): Promise<void> {
    if (this.#renewing) return this.#renewing;
    const run = this.#renewOnce().finally(() => {
      this.#renewing = null;
    });
    this.#renewing = run;
    return run;
  }

  /** See Fleet.owe. */
  async owe(keys: readonly string[], tags: readonly string[]): Promise<void> {
    this.#owing += 1;
    this.lapse('owing');
    const s = this.settings;
    const started = performance.now();
    try {
      const id = await this.#o.intents?.record({ owner: this.#o.member, keys, tags });
      if (id !== undefined) this.#recorded.push(id);
    } catch (error) {
      this.#o.logger.error(
        { err: error, keys: keys.length, tags: tags.length },
        'fleet: an undelivered invalidation could not be recorded',
      );
    }
    const recordedAt = Date.now();
    // Registered: our lease has run out by `ownEnd`; every lease granted before either then or the
    // record ends one lease later, and every renewal after both finds us dead and delivers the record.
    // Never registered: no one takes us for dead; the sweep finds the record.
    const ownEnd = this.#lastSentWall + s.maxDelayMs + s.leaseMs;
    const fenceAt = this.#registered
      ? Math.max(ownEnd, recordedAt) + s.maxDelayMs + s.leaseMs + 2 * s.marginMs
      : recordedAt + 2 * s.sweepEveryMs;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, Math.max(0, fenceAt - Date.now()));
      this.#settledWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    this.#o.events.fleet('owe', performance.now() - started);
  }

  /** See Fleet.settled. */
  settled(): void {
    if (this.#owing === 0) return;
    this.#owing = 0;
    const ids = this.#recorded.splice(0);
    if (ids.length > 0)
      this.#o.intents?.clear(ids).catch((error: unknown) => this.#o.logger.warn({ err: error }, 'fleet: intents not cleared'));
    for (const resolve of this.#settledWaiters.splice(0)) resolve();
    void this.renew();
  }

  /** True while an invalidation this member owes is not delivered. */
  get owing(): boolean {
    return this.#owing > 0;
  }

  /** Stops the timers (the lease then runs out). */
  close(): void {
    this.#closed = true;
    for (const timer of this.#timers) clearTimeout(timer);
    this.#validUntil = 0;
    this.#resolveReady();
  }

  async #renewOnce(): Promise<void> {
    if (!this.#subscribed || this.#owing > 0 || this.#closed) return;
    const { client, keys, member } = this.#o;
    const s = this.settings;
    const epoch = this.#epoch;
    const sentMono = performance.now();
    const sentWall = Date.now();
    this.#lastSentWall = sentWall;
    let reply: (string | number)[];
    try {
      reply = await client.glcFleetRenew(
        keys.hash,
        keys.log,
        ...[member, this.#o.applied(), s.leaseMs, sentWall, s.maxDelayMs],
        ...[s.maxLagMs, this.#inc, this.#o.l1 ? 1 : 0, randomBytes(9).toString('base64url'), this.#reset ? 1 : 0, s.deadForgetMs],
      );
    } catch (error) {
      this.#o.logger.debug({ err: error }, 'fleet: lease not renewed');
      return;
    }
    const [kind = '', inc = '', last = '0-0', created = '0', ...dead] = reply.map(String);
    if (kind === 'late') return;
    if (kind === 'lagging') return this.lapse('lagging');
    // Members that died may have owed invalidations: what they recorded is delivered first.
    if ((dead.length > 0 || created === '1') && !(await this.#recover(dead, created === '1'))) return;
    if (this.#epoch !== epoch || this.#owing > 0 || this.#closed) return; // lapsed meanwhile
    if (kind === 'fresh') {
      this.#o.l1?.flush('registered');
      this.#o.onFresh(last);
      this.#reset = false;
    } else if (this.#reset) {
      return;
    }
    this.#inc = inc;
    this.#registered = true;
    this.#validUntil = sentMono + s.leaseMs - s.marginMs;
    this.#resolveReady();
  }

  /** Delivers what `dead` members (or, with `all`, anyone) recorded; false when it could not. */
  async #recover(dead: readonly string[], all: boolean): Promise<boolean> {
    const intents = this.#o.intents;
    if (!intents) return true;
    try {
      const found = await intents.list(all ? { recordedBeforeMs: Date.now() + 1 } : { owners: dead });
      await this.#deliverAll(found);
      return true;
    } catch (error) {
      this.#o.logger.warn({ err: error, dead }, 'fleet: what dead members owed could not be delivered; serving from the source');
      return false;
    }
  }

  /** Delivers every intent recorded more than `sweepEveryMs` ago (their owners may never have been seen dead). */
  async #sweep(): Promise<void> {
    const intents = this.#o.intents;
    if (!intents || !this.#registered || this.#closed) return;
    try {
      await this.#deliverAll(await intents.list({ recordedBeforeMs: Date.now() - this.settings.sweepEveryMs }));
    } catch (error) {
      this.#o.logger.warn({ err: error }, 'fleet: intent sweep failed');
    }
  }

  async #deliverAll(found: readonly { id: string; keys: readonly string[]; tags: readonly string[] }[]): Promise<void> {
    if (found.length === 0) return;
    const started = performance.now();
    for (const intent of found) await this.#o.deliver(intent.keys, intent.tags);
    await this.#o.intents?.clear(found.map((intent) => intent.id));
    this.#o.events.fleet('recover', performance.now() - started);
    this.#o.logger.warn({ intents: found.length }, 'fleet: delivered invalidations other members had owed');
  }
}
