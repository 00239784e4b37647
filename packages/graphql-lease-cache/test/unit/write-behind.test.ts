import { describe, expect, it } from 'vitest';
import { applyQueued, coalesce, decodeChange, seqOf } from '../../src/write-behind/change.js';

const entry = (id: string, change: object) => ({ id, change: Buffer.from(JSON.stringify(change)) });

describe('seqOf', () => {
  it('orders stream ids as strings the way Redis orders them', () => {
    const ids = ['1700000000000-10', '1700000000000-9', '999999999999-5', '1700000000001-0'];
    const sorted = [...ids].sort((a, b) => (seqOf(a) < seqOf(b) ? -1 : 1));
    expect(sorted).toEqual(['999999999999-5', '1700000000000-9', '1700000000000-10', '1700000000001-0']);
  });
  it('refuses what is not a stream id', () => {
    expect(() => seqOf('12-x')).toThrow(TypeError);
  });
});

describe('coalesce', () => {
  const state = { version: 3, wbSeq: seqOf('100-0'), wbAt: { name: 500 } };
  it('skips changes at or below wbSeq, adds counters, keeps the newest set, drops sets older than their fence', () => {
    const folded = coalesce(state, [
      { id: '100-0', change: { inc: { views: 100 }, at: 1 } }, // already applied
      { id: '101-0', change: { inc: { views: 1 }, set: { name: 'old', price: 1 }, at: 400 } }, // name fenced
      { id: '103-0', change: { inc: { views: 2 }, set: { price: 3 }, at: 600 } },
      { id: '102-0', change: { set: { name: 'new', price: 2 }, at: 550 } },
    ]);
    expect(folded).toEqual({ inc: { views: 3 }, set: { name: 'new', price: 3 }, seq: seqOf('103-0'), taken: [] });
  });
  it('names the ids of the changes it took, and only those (a skipped one would void the guard forever)', () => {
    const folded = coalesce({ ...state, wbDone: ['done-1'] }, [
      { id: '100-0', change: { inc: { views: 1 }, at: 1, u: 'applied-1' } }, // at wbSeq
      { id: '104-0', change: { inc: { views: 1 }, at: 700, u: 'done-1' } }, // written synchronously
      { id: '105-0', change: { inc: { views: 1 }, at: 700, u: 'new-1' } },
      { id: '106-0', change: { inc: { views: 1 }, at: 700 } },
    ]);
    expect(folded).toMatchObject({ inc: { views: 2 }, seq: seqOf('106-0'), taken: ['new-1'] });
  });
  it('says there is nothing to do when every change is applied', () => {
    expect(coalesce(state, [{ id: '99-1', change: { inc: { views: 1 }, at: 1 } }]).seq).toBeNull();
  });
});

describe('applyQueued', () => {
  it('returns a copy with the queued changes applied, and leaves the document alone', () => {
    const doc = { version: 1, name: 'a', views: 10, wbSeq: null };
    const merged = applyQueued(doc, [entry('5-0', { inc: { views: 2 }, at: 1 }), entry('6-0', { set: { name: 'b' }, at: 2 })]);
    expect(merged).toEqual({ version: 1, name: 'b', views: 12, wbSeq: null });
    expect(doc).toEqual({ version: 1, name: 'a', views: 10, wbSeq: null });
  });
  it('ignores an unreadable entry', () => {
    const doc = { version: 1, views: 1 };
    expect(applyQueued(doc, [{ id: '1-0', change: Buffer.from('{oops') }, entry('2-0', { inc: { views: 1 }, at: 1 })])).toEqual({
      version: 1,
      views: 2,
    });
  });
});

describe('decodeChange', () => {
  it('accepts a change and refuses other shapes', () => {
    expect(decodeChange('{"inc":{"v":1},"at":5}')).toEqual({ inc: { v: 1 }, at: 5 });
    expect(() => decodeChange('{"inc":{"v":"1"},"at":5}')).toThrow(TypeError);
    expect(() => decodeChange('{"set":{}}')).toThrow(TypeError);
    expect(() => decodeChange('[]')).toThrow(TypeError);
  });
});
