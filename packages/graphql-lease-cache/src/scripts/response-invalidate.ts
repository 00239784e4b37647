/**
 * RESPONSE_INVALIDATE: voids, in one shard, every stored response and every computation under way
 * that depends on one of the buckets: the shard's clock advances and the buckets take it as
 * their epoch.
 *
 * KEYS[1] the response shard's hash.
 * ARGV[1] an incarnation for a shard that has none; then the buckets.
 * Reply: the shard's new clock.
 *
 * @module
 */
export const RESPONSE_INVALIDATE = `
if not redis.call('HGET', KEYS[1], '_inc') then redis.call('HSET', KEYS[1], '_inc', ARGV[1]) end
local clock = redis.call('HINCRBY', KEYS[1], '_g', 1)
for i = 2, #ARGV do redis.call('HSET', KEYS[1], ARGV[i], clock) end
return clock
`;
