import { describe, expect, it } from 'vitest';
import { KnownPending } from '../../src/known-pending.js';
import { sleep } from '../helpers/redis.js';

const entry = (id: string) => ({ id, change: Buffer.from(`{"inc":{"viewCount":1},"at":1,"u":"${id}"}`) });
const ids = (known: KnownPending, key: string) => known.get(key).map((e) => e.id);

describe('KnownPending', () => {
  it('remembers what this process queued, in stream order', () => {
    const known = new KnownPending();
    known.queued('h', entry('10-1'));
    known.queued('h', entry('9-0'));
    known.queued('h', entry('10-0'));
    expect(ids(known, 'h')).toEqual(['9-0', '10-0', '10-1']);
    expect(ids(known, 'other')).toEqual([]);
  });

  it('a snapshot forgets what it no longer finds, unless that was queued after the snapshot was asked for', async () => {
    const known = new KnownPending();
    known.queued('h', entry('1-0'));
    await sleep(3);
    known.observed('h', [entry('2-0')], Date.now()); // sent after 1-0 was queued, found only 2-0: 1-0 was settled
    expect(ids(known, 'h')).toEqual(['2-0']);

    await sleep(3);
    const sentAt = Date.now(); // a read sent before 3-0 was queued, whose reply arrives after it
    await sleep(3);
    known.queued('h', entry('3-0'));
    known.observed('h', [], sentAt);
    expect(ids(known, 'h')).toEqual(['3-0']);
    await sleep(3);
    known.observed('h', [], Date.now());
    expect(ids(known, 'h')).toEqual([]);
    expect(known.size).toBe(0);
  });

  it('is bounded in hashes (least recently seen forgotten first) and in entries per hash (oldest first)', () => {
    const known = new KnownPending({ maxKeys: 2, maxEntriesPerKey: 2 });
    known.queued('a', entry('1-0'));
    known.queued('b', entry('1-0'));
    known.queued('a', entry('2-0'));
    known.queued('c', entry('1-0'));
    expect([ids(known, 'a'), ids(known, 'b'), ids(known, 'c')]).toEqual([['1-0', '2-0'], [], ['1-0']]);
    known.queued('a', entry('3-0'));
    expect(ids(known, 'a')).toEqual(['2-0', '3-0']);
    expect(() => new KnownPending({ maxKeys: 0 })).toThrow(TypeError);
  });
});
