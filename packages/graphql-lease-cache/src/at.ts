/**
 * `array[index]` where the caller knows the index to be in range (a position of the same batch,
 * a reply per request): throws a RangeError naming `what` when it is not, where a fallback
 * (`?? 0`, `?? ''`, `?? null`) would carry a broken invariant on as a plausible value. A value
 * in range is returned as it is, null included (a stored "none"). Cheap enough for the hot
 * path: the range is only checked when the slot reads `undefined`; pass a constant `what`.
 */
export function at<T>(array: readonly T[], index: number, what: string): T {
  const value = array[index];
  if (value === undefined && !(Number.isInteger(index) && index >= 0 && index < array.length)) {
    throw new RangeError(`${what}: no position ${index} in ${array.length}`);
  }
  return value as T;
}
