import { describe, expect, it } from 'vitest';
import { AppError } from '../../src/errors.js';
import { ReadBulkhead, type ReadRejection } from '../../src/loaders/read-bulkhead.js';
import { gate, type Gate } from '../helpers/wait.js';

/** A bulkhead that records its refusals, and reads that each hold their slot until their gate opens. */
function setup(options: { capacity: number; maxQueued: number; queueMs: number }) {
  const rejected: ReadRejection[] = [];
  let running = 0;
  let most = 0;
  const bulkhead = new ReadBulkhead({ ...options, onReject: (reason) => rejected.push(reason) });
  const read = (g: Gate, value: number) =>
    bulkhead.run(async () => {
      most = Math.max(most, ++running);
      await g.pass();
      running--;
      return value;
    });
  return { bulkhead, rejected, read, most: () => most };
}

describe('ReadBulkhead', () => {
  it('runs at most `capacity` reads at once; the others wait and run in turn, oldest first', async () => {
    const { bulkhead, read, most } = setup({ capacity: 2, maxQueued: 10, queueMs: 60_000 });
    const gates = Array.from({ length: 6 }, () => gate());
    const results = gates.map((g, i) => read(g, i));
    await Promise.all([gates[0]!.reached, gates[1]!.reached]);
    expect(bulkhead.inFlight).toBe(2);
    expect(bulkhead.waiting).toBe(4);
    // Freeing a slot admits the oldest waiter (2), not a later one.
    gates[0]!.open();
    await gates[2]!.reached;
    expect(bulkhead.waiting).toBe(3);
    for (const g of gates) g.open();
    expect(await Promise.all(results)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(most()).toBe(2);
    expect([bulkhead.inFlight, bulkhead.waiting]).toEqual([0, 0]);
  });

  it('refuses at once, with SERVER_BUSY, a read beyond the slots and the queue', async () => {
    const { bulkhead, rejected, read } = setup({ capacity: 1, maxQueued: 1, queueMs: 60_000 });
    const held = gate();
    const first = read(held, 1);
    const queued = read(gate(), 2);
    const refused = read(gate(), 3).catch((error: unknown) => error);
    const error = await refused;
    expect(error).toBeInstanceOf(AppError);
    expect((error as AppError).extensions).toMatchObject({ code: 'SERVER_BUSY', retryAfterSeconds: 60 });
    expect(rejected).toEqual(['queue_full']);
    expect(bulkhead.waiting).toBe(1);
    held.open();
    expect(await first).toBe(1);
    // The queued read got the slot; its gate is still shut.
    expect([bulkhead.inFlight, bulkhead.waiting]).toEqual([1, 0]);
    void queued; // its gate stays shut: nothing waits on it
  });

  it('refuses a read that waited `queueMs` without a slot, and leaves the queue without it', async () => {
    const { bulkhead, rejected, read } = setup({ capacity: 1, maxQueued: 5, queueMs: 20 });
    const held = gate();
    const first = read(held, 1);
    const error = await read(gate(), 2).catch((e: unknown) => e);
    expect((error as AppError).extensions).toMatchObject({ code: 'SERVER_BUSY', retryAfterSeconds: 1 });
    expect(rejected).toEqual(['timeout']);
    expect(bulkhead.waiting).toBe(0);
    held.open();
    expect(await first).toBe(1);
    expect(bulkhead.inFlight).toBe(0);
  });

  it('frees the slot of a read that fails', async () => {
    const bulkhead = new ReadBulkhead({ capacity: 1, maxQueued: 0, queueMs: 0 });
    await expect(bulkhead.run(() => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(bulkhead.inFlight).toBe(0);
    expect(await bulkhead.run(() => Promise.resolve('next'))).toBe('next');
  });
});
