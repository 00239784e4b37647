import { createKeyspace, type Keyspace } from '../keys.js';
import type { LeaseReply, LeaseStore, VersionedValue } from '../lease-store.js';

// The contract of a LeaseStore (../lease-store.ts): what any implementation must do for the
// cache core to stay exact. Registered with the caller's test runner, as bentocache's driver
// suite and Keyv's test suite are, so that the package depends on no test framework.

/**
 * The test functions the suite registers with: vitest's or jest's `describe`, `it`,
 * `beforeAll`, `afterAll` and `expect` (only `toEqual` and `toBe` are used).
 */
export interface ContractRunner {
  describe(name: string, body: () => void): void;
  it(name: string, body: () => Promise<void>): void;
  beforeAll(body: () => Promise<void>): void;
  afterAll(body: () => Promise<void>): void;
  expect(actual: unknown): { toEqual(expected: unknown): void; toBe(expected: unknown): void };
}

/** A store to hold to the contract, with what the suite needs besides the store itself. */
export interface LeaseStoreUnderTest {
  store: LeaseStore;
  /**
   * Queues a write-behind change in the hash `pendingKey` as the write-behind queue does (stream
   * entry id -> encoded change), so that the suite can check that reads bring it back.
   */
  addPending(pendingKey: string, id: string, change: string): Promise<void>;
  /** Releases the store's connections; called once after the suite. Default: nothing. */
  close?(): Promise<void>;
}

/** Options of {@link describeLeaseStoreContract}. */
export interface LeaseStoreContractOptions {
  runner: ContractRunner;
  /** Makes the store, once, before the suite's tests; a rejection fails them all. */
  create(): Promise<LeaseStoreUnderTest>;
  /** The keys the suite uses (the store's lease suffix must be this keyspace's `lease('')`); default namespace `contract`. */
  keys?: Keyspace;
}

/** What every case of the contract gets. */
interface Case {
  store: LeaseStore;
  subject: LeaseStoreUnderTest;
  keys: Keyspace;
  expect: ContractRunner['expect'];
  /** A fresh entity id: cases never share keys, so one store serves them all. */
  fresh(): string;
  read(key: string, token: string, extra?: { tags?: readonly string[]; etag?: string; pendingKey?: string }): Promise<LeaseReply[]>;
}

/** How long the suite's leases hold, in milliseconds (longer than any case runs). */
const LEASE_MS = 5_000;

/**
 * Registers the LeaseStore contract as a `describe(name)` block of `options.runner`: leases to
 * the first reader, fills only under the lease, refresh voiding older leases, versions never
 * going back, tags voiding values and fills, invalidation, queued changes read with the value,
 * batches answered in order. Fails (through the runner's `expect`) where the store breaks it.
 */
export function describeLeaseStoreContract(name: string, options: LeaseStoreContractOptions): void {
  const { runner } = options;
  const keys = options.keys ?? createKeyspace({ namespace: 'contract', version: 1 });
  let subject: LeaseStoreUnderTest | undefined;
  let run = 0;
  const prefix = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
  runner.describe(name, () => {
    runner.beforeAll(async () => {
      subject = await options.create();
    });
    runner.afterAll(async () => {
      await subject?.close?.();
    });
    for (const contractCase of CASES) {
      runner.it(contractCase.name, async () => {
        if (!subject) throw new Error(`the store of "${name}" was not created`);
        const store = subject.store;
        await contractCase.run({
          store,
          subject,
          keys,
          expect: runner.expect,
          fresh: () => `${prefix}-${(run += 1)}`,
          read: (key, token, extra = {}) => store.getOrLease([{ key, ...extra }], { token, leaseTtlMs: LEASE_MS }),
        });
      });
    }
  });
}

/** A value to store, 60 s. */
function value(key: string, version: number, text: string, tags?: readonly string[]): VersionedValue {
  return { key, version, payload: Buffer.from(text), ttlMs: 60_000, ...(tags ? { tags } : {}) };
}

/** A hit's version, etag and payload as text; null for any other reply. */
function hit(reply: LeaseReply | undefined): { version: number; etag: string; payload: string } | null {
  return reply?.kind === 'hit' ? { version: reply.version, etag: reply.etag, payload: reply.payload.toString() } : null;
}

/** The cases, in the order they are registered. */
const CASES: readonly { name: string; run(c: Case): Promise<void> }[] = [
  {
    name: 'a miss leases the key to the first reader; the next reader is told who holds it',
    async run({ keys, fresh, read, expect }) {
      const key = keys.entity('User', fresh());
      expect(await read(key, 'A')).toEqual([{ kind: 'lease' }]);
      expect(await read(key, 'B')).toEqual([{ kind: 'busy', token: 'A' }]);
    },
  },
  {
    name: 'the holder fills; then every reader hits the value, named by the holder’s token',
    async run({ store, keys, fresh, read, expect }) {
      const key = keys.entity('User', fresh());
      await read(key, 'A');
      expect(await store.setIfLeased('A', [value(key, 3, 'v3')])).toEqual([true]);
      expect(hit((await read(key, 'B'))[0])).toEqual({ version: 3, etag: 'A', payload: 'v3' });
    },
  },
  {
    name: 'a reader that holds the current copy is told "same", not sent the value again',
    async run({ store, keys, fresh, read, expect }) {
      const key = keys.entity('User', fresh());
      await read(key, 'A');
      await store.setIfLeased('A', [value(key, 1, 'v1')]);
      expect(await read(key, 'B', { etag: 'A' })).toEqual([{ kind: 'same' }]);
      expect(hit((await read(key, 'B', { etag: 'stale-etag' }))[0])?.payload).toBe('v1');
    },
  },
  {
    name: 'a fill without the lease stores nothing',
    async run({ store, keys, fresh, read, expect }) {
      const key = keys.entity('User', fresh());
      await read(key, 'A');
      expect(await store.setIfLeased('B', [value(key, 1, 'not leased')])).toEqual([false]);
      expect(await read(key, 'C')).toEqual([{ kind: 'busy', token: 'A' }]);
    },
  },
  {
    name: 'refresh stores through and voids the leases taken before it: the older fill is refused',
    async run({ store, keys, fresh, read, expect }) {
      const key = keys.entity('User', fresh());
      await read(key, 'A');
      expect(await store.refresh([value(key, 2, 'v2')], 'R')).toEqual([true]);
      expect(await store.setIfLeased('A', [value(key, 1, 'v1 read before the write')])).toEqual([false]);
      expect(hit((await read(key, 'B'))[0])).toEqual({ version: 2, etag: 'R', payload: 'v2' });
    },
  },
  {
    name: 'no older version replaces a newer one',
    async run({ store, keys, fresh, read, expect }) {
      const key = keys.entity('User', fresh());
      await store.refresh([value(key, 5, 'v5')], 'R5');
      expect(await store.refresh([value(key, 4, 'v4')], 'R4')).toEqual([false]);
      expect(hit((await read(key, 'A'))[0])).toEqual({ version: 5, etag: 'R5', payload: 'v5' });
      // The same version may be rewritten.
      expect(await store.refresh([value(key, 5, 'v5, again')], 'R5b')).toEqual([true]);
    },
  },
  {
    name: 'a tag invalidated while a reader computes voids its fill; one invalidated after voids the value',
    async run({ store, keys, fresh, read, expect }) {
      const id = fresh();
      const key = keys.field('User', id, 'reviewCount', 'd', 'a');
      const tags = [keys.tag('User', id, 'reviews')];
      await read(key, 'A', { tags });
      await store.invalidate([], tags);
      expect(await store.setIfLeased('A', [value(key, 0, 'computed before the write', tags)])).toEqual([false]);
      expect(await read(key, 'B', { tags })).toEqual([{ kind: 'lease' }]);
      expect(await store.setIfLeased('B', [value(key, 0, 'computed after', tags)])).toEqual([true]);
      expect(hit((await read(key, 'C', { tags }))[0])?.payload).toBe('computed after');
      await store.invalidate([], tags);
      expect(await read(key, 'D', { tags })).toEqual([{ kind: 'lease' }]);
    },
  },
  {
    name: 'invalidate deletes the value and its lease',
    async run({ store, keys, fresh, read, expect }) {
      const key = keys.entity('User', fresh());
      await store.refresh([value(key, 1, 'v1')], 'R');
      await store.invalidate([key]);
      expect(await read(key, 'A')).toEqual([{ kind: 'lease' }]);
      await store.invalidate([key]);
      // A's lease went with it.
      expect(await read(key, 'B')).toEqual([{ kind: 'lease' }]);
    },
  },
  {
    name: 'queued changes come with the value in the same snapshot, and alone from pending()',
    async run({ store, subject, keys, fresh, read, expect }) {
      const id = fresh();
      const key = keys.entity('User', id);
      const pendingKey = keys.pending('User', id);
      expect(await store.pending([pendingKey])).toEqual([[]]);
      await subject.addPending(pendingKey, '1-0', '{"set":{"name":"queued"}}');
      await store.refresh([value(key, 1, 'v1')], 'R');
      const [reply] = await read(key, 'A', { pendingKey });
      expect(hit(reply)?.payload).toBe('v1');
      expect(reply?.pending?.map((p) => [p.id, p.change.toString()])).toEqual([['1-0', '{"set":{"name":"queued"}}']]);
      expect((await store.pending([pendingKey]))[0]?.map((p) => p.id)).toEqual(['1-0']);
    },
  },
  {
    name: 'a batch spanning many entities (many slots on a cluster) answers each key in order',
    async run({ store, keys, fresh, expect }) {
      const batch = Array.from({ length: 24 }, () => keys.entity('User', fresh()));
      const even = batch.filter((_, i) => i % 2 === 0);
      await store.refresh(
        even.map((key, i) => value(key, 1, `even ${i}`)),
        'R',
      );
      const replies = await store.getOrLease(
        batch.map((key) => ({ key })),
        { token: 'T', leaseTtlMs: LEASE_MS },
      );
      expect(replies.map((r) => r.kind)).toEqual(batch.map((_, i) => (i % 2 === 0 ? 'hit' : 'lease')));
      expect(replies.filter((r) => r.kind === 'hit').map((r) => hit(r)?.payload)).toEqual(even.map((_, i) => `even ${i}`));
      const odd = batch.filter((_, i) => i % 2 === 1);
      expect(
        await store.setIfLeased(
          'T',
          odd.map((key) => value(key, 1, 'odd')),
        ),
      ).toEqual(odd.map(() => true));
    },
  },
];
