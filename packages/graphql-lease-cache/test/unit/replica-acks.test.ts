import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { ReplicaAcks, promotableReplicas } from '../../src/replica-acks.js';

// A CLUSTER NODES reply after a failover: 7002 took over from 7000 (failed), 7004 follows 7001,
// 7005 follows 7002 but is failed, 7003 follows 7002 suspected only (`fail?`), 7006 cannot fail over.
const TABLE = [
  'a0 127.0.0.1:7000@17000 master,fail - 1 1 1 disconnected',
  'a1 127.0.0.1:7001@17001 myself,master - 0 0 2 connected 5461-10922',
  'a2 127.0.0.1:7002@17002 master - 0 0 7 connected 0-5460 10923-16383',
  'a3 127.0.0.1:7003@17003 slave,fail? a2 0 0 7 connected',
  'a4 127.0.0.1:7004@17004 slave a1 0 0 2 connected',
  'a5 127.0.0.1:7005@17005 slave,fail a2 0 0 7 disconnected',
  'a6 127.0.0.1:7006@17006 slave,nofailover a1 0 0 2 connected',
  '',
].join('\n');

describe('promotableReplicas', () => {
  it('counts, per master address, the replicas that could take over: not failed, not nofailover', () => {
    expect(Object.fromEntries(promotableReplicas(TABLE))).toEqual({
      '127.0.0.1:7000': 0,
      '127.0.0.1:7001': 1,
      '127.0.0.1:7002': 1,
    });
  });
});

describe('ReplicaAcks options', () => {
  const client = new Redis({ lazyConnect: true });
  it('refuses a negative count, a non-positive timeout, and a timeout not below the command timeout', () => {
    expect(() => new ReplicaAcks(client, { replicas: -1, timeoutMs: 50 }, 250)).toThrow(TypeError);
    expect(() => new ReplicaAcks(client, { replicas: 1, timeoutMs: 0 }, 250)).toThrow(TypeError);
    expect(() => new ReplicaAcks(client, { replicas: 1, timeoutMs: 250 }, 250)).toThrow(/below the Redis command timeout/);
    expect(new ReplicaAcks(client, { replicas: 0, timeoutMs: 250 }, 250).replicas).toBe(0);
  });
});
