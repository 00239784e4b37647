import { at } from './at.js';
import type { LeaseReply, PendingEntry } from './lease-store.js';

// Parsing of GET_OR_LEASE's replies (scripts/get-or-lease.ts): a value
// `<version>|<stamp>|<etag>|<payload>`, `L` (a lease for this reader), `B<token>|<stamp>` (busy),
// the number 1 (same as the caller's copy), or an array of one of those and the entity's
// queued write-behind changes.

const SEPARATOR = 0x7c; // |
const REPLY_LEASE = 0x4c; // L
const REPLY_BUSY = 0x42; // B

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
  if (first === REPLY_LEASE) return { kind: 'lease' };
  if (first === REPLY_BUSY) {
    // The holder's lease is `<token>|<stamp>`.
    const end = reply.indexOf(SEPARATOR);
    return { kind: 'busy', token: reply.subarray(1, end < 0 ? reply.length : end).toString() };
  }
  const first_ = reply.indexOf(SEPARATOR);
  const second = first_ < 0 ? -1 : reply.indexOf(SEPARATOR, first_ + 1);
  const third = second < 0 ? -1 : reply.indexOf(SEPARATOR, second + 1);
  if (third < 0) throw new TypeError('get-or-lease replied with a value that is not `<version>|<stamp>|<etag>|<payload>`');
  return {
    kind: 'hit',
    version: Number(reply.toString('latin1', 0, first_)),
    etag: reply.toString('latin1', second + 1, third),
    payload: reply.subarray(third + 1),
  };
}
