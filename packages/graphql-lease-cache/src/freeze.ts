/**
 * Deep-freezes plain objects and arrays in place (Dates, ObjectIds, Buffers and other class
 * instances are left alone), so that code that mutates a value shared by every request of the
 * process fails loudly instead of changing what other requests read. For development and tests.
 */
export function deepFreeze(value: unknown): void {
  if (value === null || typeof value !== 'object' || Object.isFrozen(value)) return;
  const proto = Object.getPrototypeOf(value) as unknown;
  if (!Array.isArray(value) && proto !== Object.prototype && proto !== null) return; // Dates, ObjectIds: left alone
  Object.freeze(value);
  for (const item of Object.values(value as Record<string, unknown>)) deepFreeze(item);
}
