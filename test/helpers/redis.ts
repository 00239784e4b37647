import { Redis } from 'ioredis';
import { startEmbeddedRedis, type EmbeddedRedis } from '../../src/dev/embedded-redis.js';
import { __testing__fleetScriptCalls as fleetCalls } from '../../packages/graphql-lease-cache/src/fleet/commands.js';

/** A private redis-server for one test file, with a plain client to inspect it. */
export interface PrivateRedis extends EmbeddedRedis {
  client: Redis;
  /** Calls per command since the last reset (`INFO commandstats`), e.g. `{ evalsha: 3 }`. */
  commandCalls(): Promise<Record<string, number>>;
  /** Round trips the cache made: script calls (evalsha/eval), not counting this client's own nor the fleet's renewals. */
  scriptCalls(): Promise<number>;
  resetStats(): Promise<void>;
  /** Lets the server run again if a test froze it (SIGSTOP); nothing once it is stopped. */
  resume(): void;
  /** Disconnects the client and stops the server; a second call does nothing more. */
  stop(): Promise<void>;
}

/** Resolves once no fleet script call of this process awaits its reply (so that Redis's counts and ours agree). */
async function fleetCallsSettled(): Promise<void> {
  for (let i = 0; fleetCalls.inFlight > 0 && i < 200; i += 1) await new Promise((resolve) => setTimeout(resolve, 1));
}

/** Starts a redis-server of this test's own. */
export async function startPrivateRedis(): Promise<PrivateRedis> {
  const server = await startEmbeddedRedis();
  const client = new Redis(server.url, { maxRetriesPerRequest: 1 });
  const commandCalls = async (): Promise<Record<string, number>> => {
    const info = await client.info('commandstats');
    const calls: Record<string, number> = {};
    for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) calls[match[1] ?? ''] = Number(match[2]);
    return calls;
  };
  let stopped: Promise<void> | undefined;
  // The fleet's background renewals (every app in this process) are not the requests' round trips.
  let fleetCallsAtReset = fleetCalls.count;
  return {
    ...server,
    client,
    commandCalls,
    async scriptCalls() {
      await fleetCallsSettled();
      const calls = await commandCalls();
      return (calls.evalsha ?? 0) + (calls.eval ?? 0) - (fleetCalls.count - fleetCallsAtReset);
    },
    async resetStats() {
      await fleetCallsSettled();
      await client.config('RESETSTAT');
      fleetCallsAtReset = fleetCalls.count;
    },
    resume() {
      if (!stopped && server.pid > 0) process.kill(server.pid, 'SIGCONT');
    },
    stop() {
      stopped ??= (async () => {
        client.disconnect();
        await server.stop();
      })();
      return stopped;
    },
  };
}
