import { describe, expect, it } from 'vitest';
import { at } from '../../src/at.js';

describe('at', () => {
  it('returns the value at an index in range, null included', () => {
    expect(at(['a', 'b'], 1, 'letters')).toBe('b');
    expect(at([1, null, 3], 1, 'values')).toBeNull();
    expect(at([0], 0, 'zeros')).toBe(0);
  });

  it('throws a RangeError naming what and the length for an index out of range', () => {
    expect(() => at(['a', 'b'], 2, 'letters')).toThrow(new RangeError('letters: no position 2 in 2'));
    expect(() => at(['a'], -1, 'letters')).toThrow(RangeError);
    expect(() => at([], 0, 'nothing')).toThrow(RangeError);
    expect(() => at(['a', 'b'], 0.5, 'letters')).toThrow(RangeError);
  });
});
