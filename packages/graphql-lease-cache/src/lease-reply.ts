import { at } from './at.js';
import type { LeaseReply, PendingEntry, StaleValue } from './lease-store.js';

// Parsing of GET_OR_LEASE's replies (scripts/get-or-lease.ts): a value
// `<version>|<stamp>|<etag>|<payload>`, `R` and a value or nothing (a hit, or the caller's copy,
// leased for an early refresh), `L` (a lease for this reader), `B<token>|<stamp>` (busy), either
// followed by a newline and the expired value it carries, the number 1 (same as the caller's
// copy), or an array of one of those and the entity's queued write-behind changes.

const SEPARATOR = 0x7c; // |
const REPLY_LEASE = 0x4c; // L
const REPLY_BUSY = 0x42; // B
const REPLY_REFRESH = 0x52; // R
const NEWLINE = 0x0a;

const SAME: LeaseReply = Object.freeze({ kind: 'same' });

/** A get-or-lease reply, parsed. */
export function parseLeaseReply(raw: Buffer | number | (Buffer | number)[]): LeaseReply {
  if (!Array.isArray(raw)) return parseValueReply(raw);
  // {reply, id, change, id, change, ...}: the script always sends the reply first, then pairs.
  const reply = at(raw, 0, 'a get-or-lease reply with changes');
  const pending: PendingEntry[] = [];
  for (let i = 1; i + 1 < raw.length; i += 2) {
    const change = at(raw, i + 1, 'the changes of a get-or-lease reply');
    pending.push({
      id: String(at(raw, i, 'the changes of a get-or-lease reply')),
      change: Buffer.isBuffer(change) ? change : Buffer.from(String(change)),
    });
  }
  return { ...parseValueReply(reply), pending };
}

function parseValueReply(reply: Buffer | number): LeaseReply {
  if (typeof reply === 'number') {
    if (reply === 1) return SAME;
    throw new TypeError(`get-or-lease replied with the number ${reply}`);
  }
  const first = reply[0];
  if (first === REPLY_LEASE) return withStale({ kind: 'lease' }, reply, 1);
  if (first === REPLY_BUSY) {
    // The holder's lease is `<token>|<stamp>`, then a newline and the expired value, if any.
    const end = reply.indexOf(SEPARATOR);
    return withStale({ kind: 'busy', token: reply.subarray(1, end < 0 ? reply.length : end).toString() }, reply, end < 0 ? 1 : end);
  }
  if (first === REPLY_REFRESH) {
    // An early refresh: the stored value follows, or nothing (the reader's copy is the stored one).
    return reply.length === 1 ? { kind: 'same', refresh: true } : { kind: 'hit', ...parseStored(reply.subarray(1)), refresh: true };
  }
  return { kind: 'hit', ...parseStored(reply) };
}

/** `reply` with the expired value that follows the newline after `from`, if there is one. */
function withStale<R extends LeaseReply>(reply: R, raw: Buffer, from: number): R {
  const newline = raw.indexOf(NEWLINE, from);
  return newline < 0 ? reply : { ...reply, stale: parseStored(raw.subarray(newline + 1)) };
}

/** A stored value, `<version>|<stamp>|<etag>|<payload>`. */
function parseStored(stored: Buffer): StaleValue {
  const first = stored.indexOf(SEPARATOR);
  const second = first < 0 ? -1 : stored.indexOf(SEPARATOR, first + 1);
  const third = second < 0 ? -1 : stored.indexOf(SEPARATOR, second + 1);
  if (third < 0) throw new TypeError('get-or-lease replied with a value that is not `<version>|<stamp>|<etag>|<payload>`');
  return {
    version: Number(stored.toString('latin1', 0, first)),
    etag: stored.toString('latin1', second + 1, third),
    payload: stored.subarray(third + 1),
  };
}
