import type { RedisClient } from '../redis-client.js';
import { FLEET_PUBLISH } from '../scripts/fleet-publish.js';
import { FLEET_RENEW } from '../scripts/fleet-renew.js';
import { FLEET_ACK, FLEET_LEAVE, FLEET_STATUS } from '../scripts/fleet-members.js';

type Reply = (string | number)[];

/** The fleet's scripts on a client (see ../scripts/fleet-*.ts for each one's KEYS, ARGV and reply). */
export interface FleetCommands {
  glcFleetRenew(hash: string, log: string, ...args: (string | number)[]): Promise<Reply>;
  glcFleetPublish(hash: string, log: string, ...args: (string | number)[]): Promise<Reply>;
  glcFleetAck(hash: string, member: string, id: string, channel: string): Promise<number>;
  glcFleetStatus(hash: string, ...members: string[]): Promise<Reply>;
  glcFleetLeave(hash: string, member: string, sentAtMs: number, maxDelayMs: number): Promise<number>;
}

/**
 * Tests only, not an API: how many fleet script calls this process has sent (and how many await
 * their reply), so that a test that
 * counts a request's script calls on its Redis (INFO commandstats) can leave the fleet's
 * background renewals out.
 */
export const __testing__fleetScriptCalls = { count: 0, inFlight: 0 };

/** Defines the fleet's scripts on `client` (idempotent) and returns them, bound to it, each call counted. */
export function fleetCommands(client: RedisClient): FleetCommands {
  client.defineCommand('glcFleetRenew', { numberOfKeys: 2, lua: FLEET_RENEW });
  client.defineCommand('glcFleetPublish', { numberOfKeys: 2, lua: FLEET_PUBLISH });
  client.defineCommand('glcFleetAck', { numberOfKeys: 1, lua: FLEET_ACK });
  client.defineCommand('glcFleetStatus', { numberOfKeys: 1, lua: FLEET_STATUS });
  client.defineCommand('glcFleetLeave', { numberOfKeys: 1, lua: FLEET_LEAVE });
  const typed = client as RedisClient & FleetCommands;
  const counted =
    <A extends unknown[], R>(call: (...args: A) => Promise<R>) =>
    (...args: A): Promise<R> => {
      __testing__fleetScriptCalls.count += 1;
      __testing__fleetScriptCalls.inFlight += 1;
      return call.apply(typed, args).finally(() => {
        __testing__fleetScriptCalls.inFlight -= 1;
      });
    };
  return {
    glcFleetRenew: counted(typed.glcFleetRenew),
    glcFleetPublish: counted(typed.glcFleetPublish),
    glcFleetAck: counted(typed.glcFleetAck),
    glcFleetStatus: counted(typed.glcFleetStatus),
    glcFleetLeave: counted(typed.glcFleetLeave),
  };
}

/** True when stream id `a` is after `b` (`<ms>-<seq>`). */
export function idAfter(a: string, b: string): boolean {
  const [am = 0, as = 0] = a.split('-').map(Number);
  const [bm = 0, bs = 0] = b.split('-').map(Number);
  return am > bm || (am === bm && as > bs);
}
