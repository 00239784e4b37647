import { describe, expect, it } from 'vitest';
import { createDocumentLock } from '../../src/services/document-lock.js';
import { sleep } from '../helpers/wait.js';

describe('DocumentLock', () => {
  it('serializes read-modify-write sections on one key', async () => {
    const lock = createDocumentLock(true);
    let value = 0;
    await Promise.all(
      Array.from({ length: 50 }, () =>
        lock.run(['a'], async () => {
          const read = value;
          await sleep(1);
          value = read + 1;
        }),
      ),
    );
    expect(value).toBe(50);
  });

  it('lets different keys run concurrently and overlapping sets finish without deadlock', async () => {
    const lock = createDocumentLock(true);
    const order: string[] = [];
    await Promise.all([
      lock.run(['x', 'y'], async () => {
        await sleep(1);
        order.push('xy');
      }),
      lock.run(['y', 'x'], async () => {
        order.push('yx');
      }),
      lock.run(['z'], async () => {
        order.push('z');
      }),
    ]);
    expect(order).toEqual(['z', 'xy', 'yx']);
  });

  it('releases the lock when the section throws', async () => {
    const lock = createDocumentLock(true);
    await expect(lock.run(['k'], async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(await lock.run(['k'], async () => 'next')).toBe('next');
  });

  it('says which keys a section of this process holds or awaits (what the staleness audit skips)', async () => {
    const lock = createDocumentLock(true);
    const seen: boolean[] = [];
    await lock.run(['k'], async () => {
      seen.push(lock.held('k'), lock.held('other'));
    });
    seen.push(lock.held('k'));
    expect(seen).toEqual([true, false, false]);
    expect(createDocumentLock(false).held('k')).toBe(false);
  });

  it('is a plain call when disabled (MongoDB)', async () => {
    const lock = createDocumentLock(false);
    let value = 0;
    await Promise.all(
      Array.from({ length: 10 }, () =>
        lock.run(['a'], async () => {
          const read = value;
          await sleep(1);
          value = read + 1;
        }),
      ),
    );
    expect(value).toBeLessThan(10);
  });
});
