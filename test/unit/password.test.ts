import { describe, expect, it } from 'vitest';
import { ERASED_PASSWORD_HASH, hashPassword, verifyPassword } from '../../src/services/password.js';

describe('password hashing', () => {
  it('verifies the right password and rejects others, with a fresh salt each time', async () => {
    const a = await hashPassword('correct horse');
    const b = await hashPassword('correct horse');
    expect(a).not.toBe(b);
    expect(a).toMatch(/^scrypt\$16384\$8\$1\$/);
    expect(await verifyPassword('correct horse', a)).toBe(true);
    expect(await verifyPassword('correct horse!', a)).toBe(false);
    expect(await verifyPassword('anything', 'not-a-hash')).toBe(false);
  });

  it('matches no password against an erased or malformed hash, and never throws', async () => {
    expect(await verifyPassword('', ERASED_PASSWORD_HASH)).toBe(false);
    expect(await verifyPassword('erased', ERASED_PASSWORD_HASH)).toBe(false);
    const valid = (await hashPassword('pw')).split('$');
    for (const n of ['abc', '3', '0', String(2 ** 30)]) {
      expect(await verifyPassword('pw', ['scrypt', n, ...valid.slice(2)].join('$'))).toBe(false);
    }
    expect(await verifyPassword('pw', 'scrypt$16384$8$1$AAAA$')).toBe(false);
  });
});
