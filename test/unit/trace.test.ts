import { describe, expect, it } from 'vitest';
import { createTrace, currentTrace, mayWrite, runTraced } from '../../src/trace.js';
import { sleep } from '../helpers/wait.js';

describe('which requests run traced', () => {
  it('every mutation may write, whatever its spelling; a document without the keyword may not', () => {
    for (const query of [
      'mutation { logout }',
      '  mutation Named($id: ID!) { deleteUser(id: $id) }',
      'query A { viewer { id } }\nmutation B { logout }',
      '{ a } # mutation',
      '{ product(id: "mutation") { id } }',
    ]) {
      expect(mayWrite({ query })).toBe(true);
    }
    expect(mayWrite({ query: '{ products(first: 5) { edges { node { id } } } }' })).toBe(false);
    expect(mayWrite({ query: 'query Catalog { mutations: products { edges { node { id } } } }' })).toBe(false);
    // A persisted query sent by hash, a batch, or no body at all: may be anything.
    expect(mayWrite({ extensions: { persistedQuery: { version: 1, sha256Hash: 'x' } } })).toBe(true);
    expect(mayWrite([{ query: '{ a }' }])).toBe(true);
    expect(mayWrite(undefined)).toBe(true);
  });

  it('carries the trace to what the request awaits, and leaves the storage off once no traced request runs', async () => {
    const first = createTrace();
    const second = createTrace();
    let endFirst = (): void => undefined;
    let endSecond = (): void => undefined;
    const seen: unknown[] = [];
    await new Promise<void>((resolve) => {
      runTraced(first, (done) => {
        endFirst = done;
        void Promise.resolve().then(async () => {
          await sleep(5);
          seen.push(currentTrace());
          resolve();
        });
      });
    });
    runTraced(second, (done) => {
      endSecond = done;
    });
    expect(seen).toEqual([first]);
    expect(first.traced && second.traced).toBe(true);
    endFirst();
    endFirst(); // more calls do nothing
    // Still one traced request in flight: a new context started now sees no store of its own.
    expect(await Promise.resolve().then(() => currentTrace())).toBeUndefined();
    endSecond();
    expect(currentTrace()).toBeUndefined();
    // A request started after the storage was disabled is traced again.
    const third = createTrace();
    const inside = await new Promise<unknown>((resolve) => {
      runTraced(third, (done) => {
        void Promise.resolve().then(() => {
          resolve(currentTrace());
          done();
        });
      });
    });
    expect(inside).toBe(third);
  });
});
