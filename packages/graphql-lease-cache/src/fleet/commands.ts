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
  glcFleetLeave(hash: string, member: string): Promise<number>;
}

/** Defines the fleet's scripts on `client` (idempotent) and returns it typed with them. */
export function fleetCommands(client: RedisClient): RedisClient & FleetCommands {
  client.defineCommand('glcFleetRenew', { numberOfKeys: 2, lua: FLEET_RENEW });
  client.defineCommand('glcFleetPublish', { numberOfKeys: 2, lua: FLEET_PUBLISH });
  client.defineCommand('glcFleetAck', { numberOfKeys: 1, lua: FLEET_ACK });
  client.defineCommand('glcFleetStatus', { numberOfKeys: 1, lua: FLEET_STATUS });
  client.defineCommand('glcFleetLeave', { numberOfKeys: 1, lua: FLEET_LEAVE });
  return client as RedisClient & FleetCommands;
}

/** True when stream id `a` is after `b` (`<ms>-<seq>`). */
export function idAfter(a: string, b: string): boolean {
  const [am = 0, as = 0] = a.split('-').map(Number);
  const [bm = 0, bs = 0] = b.split('-').map(Number);
  return am > bm || (am === bm && as > bs);
}
