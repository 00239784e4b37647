import { describe, expect, it } from 'vitest';
import { addressSubject } from '../../src/services/rate-limits.js';

describe('addressSubject', () => {
  it('counts IPv4 (also IPv4-mapped) by the address and IPv6 by its /64', () => {
    expect(addressSubject('203.0.113.7')).toBe('203.0.113.7');
    expect(addressSubject('::ffff:203.0.113.7')).toBe('203.0.113.7');
    expect(addressSubject('2001:db8:aa:bb:1:2:3:4')).toBe('2001:db8:aa:bb::/64');
    expect(addressSubject('2001:0db8:00aa:00bb:ffff::1')).toBe('2001:db8:aa:bb::/64');
    expect(addressSubject('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(addressSubject('2001:db8::2')).toBe(addressSubject('2001:db8:0:0:ffff::9'));
    expect(addressSubject('::1')).toBe('0:0:0:0::/64');
    expect(addressSubject('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
    expect(addressSubject(null)).toBe('unknown');
  });
});
