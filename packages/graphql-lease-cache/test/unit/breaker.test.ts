import { describe, expect, it } from 'vitest';
import { BreakerOpenError, CircuitBreaker, type BreakerState } from '../../src/breaker.js';

const fail = () => Promise.reject(new Error('redis down'));
const ok = () => Promise.resolve('ok');

describe('CircuitBreaker', () => {
  it('opens after the threshold, fails fast, probes after openMs, and closes on success', async () => {
    let now = 0;
    const states: BreakerState[] = [];
    const breaker = new CircuitBreaker({ failureThreshold: 3, openMs: 1_000, now: () => now, onStateChange: (s) => states.push(s) });
    for (let i = 0; i < 3; i += 1) await expect(breaker.run(fail)).rejects.toThrow('redis down');
    expect(breaker.state).toBe('open');
    let called = false;
    await expect(breaker.run(async () => (called = true))).rejects.toBeInstanceOf(BreakerOpenError);
    expect(called).toBe(false);
    now = 1_000;
    expect(breaker.state).toBe('half-open');
    await expect(breaker.run(ok)).resolves.toBe('ok');
    expect(states).toEqual(['open', 'half-open', 'closed']);
  });

  it('reopens when the probe fails, and lets only one probe through', async () => {
    let now = 0;
    const breaker = new CircuitBreaker({ failureThreshold: 1, openMs: 100, now: () => now });
    await expect(breaker.run(fail)).rejects.toThrow();
    now = 100;
    let release!: () => void;
    const probe = breaker.run(() => new Promise<void>((_, reject) => (release = () => reject(new Error('still down')))));
    await expect(breaker.run(ok)).rejects.toBeInstanceOf(BreakerOpenError);
    release();
    await expect(probe).rejects.toThrow('still down');
    expect(breaker.state).toBe('open');
  });

  it('resets the failure count on success', async () => {
    const breaker = new CircuitBreaker({ failureThreshold: 2 });
    await expect(breaker.run(fail)).rejects.toThrow();
    await breaker.run(ok);
    await expect(breaker.run(fail)).rejects.toThrow();
    expect(breaker.state).toBe('closed');
  });

  it('validates its options', () => {
    expect(() => new CircuitBreaker({ failureThreshold: 0 })).toThrow(/failureThreshold must be a positive integer, got 0/);
  });
});
