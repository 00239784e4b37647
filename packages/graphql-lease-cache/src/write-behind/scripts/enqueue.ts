/**
 * ENQUEUE: queues one change of one entity (write-behind's producer, {@link WriteBehindQueue}).
 *
 * KEYS[1] the stream (`{wb}:writes`); KEYS[2] the entity's write-behind hash (`{Type:id}:wb`);
 * KEYS[3] the entity's cached key.
 * ARGV[1] type; ARGV[2] id; ARGV[3] the change (JSON); ARGV[4] the most changes the entity may
 * have queued; ARGV[5] the deadline, in ms since the epoch (the caller's timeout).
 * Reply: the stream entry id; nil when the hash is full (the caller writes the database itself, which
 * bounds what a read carries); an error `LATE` past the deadline.
 *
 * The deadline: a call that ran late (Redis paused or stopped with the command already sent) has
 * been given up on, and its change written to the database by the caller; refusing it here keeps it
 * from being applied twice (`wbDone` covers only the few calls that run just before their
 * deadline). The cached document loses its expiry while the write is pending (a hot document
 * stays cached); the flush gives it back (SETTLE).
 *
 * @module
 */
export const ENQUEUE = `
local now = redis.call('TIME')
if tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) > tonumber(ARGV[5]) then
  return redis.error_reply('LATE the caller gave up on this enqueue')
end
if redis.call('HLEN', KEYS[2]) >= tonumber(ARGV[4]) then return false end
local entry = redis.call('XADD', KEYS[1], '*', 't', ARGV[1], 'i', ARGV[2], 'c', ARGV[3])
redis.call('HSET', KEYS[2], entry, ARGV[3])
redis.call('PERSIST', KEYS[3])
return entry
`;
