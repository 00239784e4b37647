import { idAfter, type FleetCommands } from './commands.js';

/** A member to wait for, and how long its lease had left when the invalidation was published, in ms. */
export interface AwaitedMember {
  member: string;
  remainingMs: number;
}

interface Waiter {
  /** The invalidation's id. */
  id: string;
  /** Marks `member` as done (acknowledged, or its lease is over). */
  done(member: string): void;
  finished: boolean;
}

/** Options of {@link AckWaiter}. */
export interface AckWaiterOptions {
  client: FleetCommands;
  /** The fleet's hash. */
  hashKey: string;
  /** Added to every lease deadline, for clock skew, in ms. */
  marginMs: number;
}

/**
 * Writers waiting until every member that may hold what they invalidated has acknowledged it, or
 * its lease has run out. Acknowledgements arrive on the fleet's channel ({@link onAck}); a member
 * silent until its lease's end is asked where it stands (it may have renewed without applying the
 * invalidation yet, for a bounded while: see FLEET_RENEW's `lagging`), and after `boundMs` no one
 * is waited for any longer: by then every lease granted to a member that had not applied the
 * invalidation has ended.
 */
export class AckWaiter {
  readonly #client: FleetCommands;
  readonly #hashKey: string;
  readonly #marginMs: number;
  readonly #waiting = new Map<string, Set<Waiter>>();

  constructor(options: AckWaiterOptions) {
    this.#client = options.client;
    this.#hashKey = options.hashKey;
    this.#marginMs = options.marginMs;
  }

  /** How many writers wait. */
  get size(): number {
    const all = new Set<Waiter>();
    for (const set of this.#waiting.values()) for (const waiter of set) all.add(waiter);
    return all.size;
  }

  /** `member` has applied every invalidation up to `id`. */
  onAck(member: string, id: string): void {
    for (const waiter of this.#waiting.get(member) ?? []) if (!idAfter(waiter.id, id)) waiter.done(member);
  }

  /** Resolves when each of `members` has acknowledged `id` or its lease is over, at most `boundMs` from now. Never rejects. */
  wait(id: string, members: readonly AwaitedMember[], boundMs: number): Promise<void> {
    if (members.length === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const left = new Set(members.map((m) => m.member));
      const timers = new Set<NodeJS.Timeout>();
      const waiter: Waiter = {
        id,
        finished: false,
        done: (member) => {
          if (!left.delete(member) || left.size > 0 || waiter.finished) return;
          finish();
        },
      };
      const finish = (): void => {
        waiter.finished = true;
        for (const timer of timers) clearTimeout(timer);
        for (const { member } of members) {
          const set = this.#waiting.get(member);
          set?.delete(waiter);
          if (set?.size === 0) this.#waiting.delete(member);
        }
        resolve();
      };
      for (const { member } of members) {
        let set = this.#waiting.get(member);
        if (!set) this.#waiting.set(member, (set = new Set()));
        set.add(waiter);
      }
      timers.add(setTimeout(finish, boundMs));
      for (const { member, remainingMs } of members) this.#recheckAfter(waiter, member, remainingMs, timers);
    });
  }

  /** Asks where `member` stands once its lease should be over. */
  #recheckAfter(waiter: Waiter, member: string, remainingMs: number, timers: Set<NodeJS.Timeout>): void {
    const timer = setTimeout(() => {
      timers.delete(timer);
      if (waiter.finished) return;
      this.#client.glcFleetStatus(this.#hashKey, member).then(
        ([acked, left]) => {
          const leftMs = Number(left);
          if (leftMs < 0 || (typeof acked === 'string' && acked !== '-' && !idAfter(waiter.id, acked))) waiter.done(member);
          else this.#recheckAfter(waiter, member, leftMs, timers);
        },
        // Unanswered: the bound ends the wait.
        () => undefined,
      );
    }, remainingMs + this.#marginMs);
    timers.add(timer);
  }
}
