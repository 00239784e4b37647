/**
 * The worker's leader lease: one worker applies the queue at a time.
 *
 * LEAD takes or renews the lease.
 *   KEYS[1] the lease key. ARGV[1] this consumer; ARGV[2] the lease's TTL in ms.
 *   Reply: 2 when the lease is newly this consumer's (it must take over what others left
 *   pending); 1 when renewed; 0 when another consumer holds it.
 *
 * READ reads the consumer group, only while holding the lease, so that a worker that lost it
 * (paused past its lease) cannot take entries a newer leader should have.
 *   KEYS[1] the lease key; KEYS[2] the stream. ARGV[1] this consumer; ARGV[2] the group;
 *   ARGV[3] the most entries to read; ARGV[4] the id to read after (`0`: this consumer's
 *   pending entries; `>`: new ones).
 *   Reply: XREADGROUP's reply (an empty array for none); 0 when the lease is another's.
 *
 * RESIGN gives the lease up, if this consumer holds it.
 *   KEYS[1] the lease key. ARGV[1] this consumer.
 *   Reply: 1 when it was released; 0 otherwise.
 *
 * @module
 */
export const LEAD = `
local holder = redis.call('GET', KEYS[1])
if not holder then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 2 end
if holder == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
return 0
`;

export const READ = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('XREADGROUP', 'GROUP', ARGV[2], ARGV[1], 'COUNT', ARGV[3], 'STREAMS', KEYS[2], ARGV[4]) or {}
`;

export const RESIGN = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;
