import { Types } from 'mongoose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProductModel, SessionModel, UserModel } from '../../src/models/index.js';
import type { Role } from '../../src/models/user.model.js';
import { hashPassword, verifyPassword } from '../../src/services/password.js';
import { ADMIN, errorCodes, startTestApp, type TestApp } from '../helpers/test-app.js';
import { sleep } from '../helpers/wait.js';

let t: TestApp;
let admin: string;
beforeAll(async () => {
  t = await startTestApp({ seed: { users: 4, products: 3, reviews: 6, orders: 2 } });
  admin = await t.login(ADMIN.email, ADMIN.password);
});
afterAll(() => t.stop());

const PASSWORD = 'old-password-1';
const CREATE_USER = 'mutation($input: CreateUserInput!) { createUser(input: $input) { id } }';
const UPDATE_USER = 'mutation($id: ID!, $input: UpdateUserInput!) { updateUser(id: $id, input: $input) { email } }';
const LOGIN = 'mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token user { id role } } }';
const deleteUser = (id: string, token: string) => t.gql(`mutation { deleteUser(id: "${id}") }`, {}, token);
/** The address deleteUser used to give an erased account (anyone could register it). */
const legacyErased = (id: string) => `deleted-${id}@deleted.invalid`;

/** A user written straight to MongoDB (an ADMIN can only be made there, or legacy data). */
async function insertUser(email: string, role: Role = 'CUSTOMER'): Promise<string> {
  const user = await UserModel.create({ name: 'Inserted', email, passwordHash: await hashPassword(PASSWORD), role });
  return user._id.toHexString();
}

/** The logins a deleted account must refuse: its old email, the stored erased email, the legacy erased form. */
async function emailsOf(id: string, oldEmail: string): Promise<string[]> {
  const stored = await UserModel.findById(id).lean().exec();
  return [oldEmail, stored?.email ?? '', legacyErased(id)];
}

describe('deleting an account ends every way into it', () => {
  it('a deleted user cannot log in, by its old email, its erased email or the old erased form; its hash is gone', async () => {
    const created = await t.gql(CREATE_USER, { input: { name: 'Dave', email: 'dave@example.com', password: PASSWORD } });
    const id: string = created.body.data?.createUser.id;
    expect((await deleteUser(id, await t.login('dave@example.com', PASSWORD))).body.data?.deleteUser).toBe(true);

    const stored = await UserModel.findById(id).lean().exec();
    expect(stored?.deletedAt).toBeInstanceOf(Date);
    expect(stored?.passwordHash.startsWith('scrypt$')).toBe(false);
    expect(await verifyPassword(PASSWORD, stored?.passwordHash ?? '')).toBe(false);
    for (const email of await emailsOf(id, 'dave@example.com')) {
      const res = await t.gql(LOGIN, { e: email, p: PASSWORD });
      expect(res.body.data).toBeNull();
      expect(res.body.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', reason: 'INVALID_CREDENTIALS' });
    }
    expect(await SessionModel.countDocuments({ user: new Types.ObjectId(id) })).toBe(0);

    // The address is free again, for a new account that the old password does not open.
    const again = await t.gql(CREATE_USER, { input: { name: 'Dave again', email: 'dave@example.com', password: 'new-password-2' } });
    expect(again.body.errors).toBeUndefined();
    expect(errorCodes(await t.gql(LOGIN, { e: 'dave@example.com', p: PASSWORD }))).toEqual(['BAD_USER_INPUT']);
    const fresh = await t.gql(LOGIN, { e: 'dave@example.com', p: 'new-password-2' });
    expect(fresh.body.data?.login.user.id).toBe(again.body.data?.createUser.id);
  });

  it('a deleted ADMIN gets no session and no admin power, not even by login and createProduct in one operation', async () => {
    const id = await insertUser('second-admin@example.com', 'ADMIN');
    expect(await t.login('second-admin@example.com', PASSWORD)).toBeTruthy(); // a live ADMIN may
    expect((await deleteUser(id, admin)).body.data?.deleteUser).toBe(true);

    for (const [n, email] of (await emailsOf(id, 'second-admin@example.com')).entries()) {
      const name = `Made by a deleted admin ${n}`;
      const res = await t.gql(
        `mutation($e: String!, $p: String!, $name: String!) {
          login(email: $e, password: $p) { token user { role } }
          createProduct(input: { name: $name, priceCents: 1, category: "x", stock: 1 }) { id }
        }`,
        { e: email, p: PASSWORD, name },
      );
      expect(res.body.data).toBeNull();
      expect(errorCodes(res)).toEqual(['BAD_USER_INPUT']);
      expect(await ProductModel.countDocuments({ name })).toBe(0);
    }
    expect(await SessionModel.countDocuments({ user: new Types.ObjectId(id) })).toBe(0);
  });

  it('a login racing the deletion (its password checked meanwhile) leaves no session behind', async () => {
    // The login reads the user, then spends tens of milliseconds in scrypt: a deletion that
    // starts a little later ends the account's sessions before the login creates its own.
    for (const [n, delayMs] of [0, 5, 10, 15, 20, 30, 40, 60].entries()) {
      const email = `racer${n}@example.com`;
      const id = await insertUser(email, 'ADMIN');
      const own = await t.login(email, PASSWORD);
      const login = t.gql(LOGIN, { e: email, p: PASSWORD });
      await sleep(delayMs);
      expect((await deleteUser(id, own)).body.data?.deleteUser).toBe(true);
      const token: string | undefined = (await login).body.data?.login.token;
      expect(await SessionModel.countDocuments({ user: new Types.ObjectId(id) }), `delay ${delayMs} ms`).toBe(0);
      if (token) expect((await t.gql('{ viewer { id } }', {}, token)).body.data?.viewer).toBeNull();
    }
  });
});

describe('reserved addresses', () => {
  it('createUser and updateUser refuse addresses under .invalid (RESERVED_EMAIL), and the erased form is no email at all', async () => {
    const victim = new Types.ObjectId().toHexString();
    for (const email of [legacyErased(victim), 'someone@Example.INVALID']) {
      const res = await t.gql(CREATE_USER, { input: { name: 'Squatter', email, password: PASSWORD } });
      expect(errorCodes(res)).toEqual(['BAD_USER_INPUT']);
      expect(res.body.errors?.[0]?.extensions).toMatchObject({ field: 'input.email', reason: 'RESERVED_EMAIL' });
      expect(res.body.errors?.[0]?.message).toMatch(/reserved/);
    }
    const erasedForm = await t.gql(CREATE_USER, { input: { name: 'Squatter', email: `deleted:${victim}`, password: PASSWORD } });
    expect(erasedForm.body.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'input.email' });

    const created = await t.gql(CREATE_USER, { input: { name: 'Erin', email: 'erin@example.com', password: PASSWORD } });
    const id: string = created.body.data?.createUser.id;
    const token = await t.login('erin@example.com', PASSWORD);
    const update = await t.gql(UPDATE_USER, { id, input: { email: legacyErased(victim) } }, token);
    expect(update.body.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', reason: 'RESERVED_EMAIL' });
    expect((await UserModel.findById(id).lean().exec())?.email).toBe('erin@example.com');
  });

  it("deletion succeeds even when someone already holds the old erased form of the victim's address", async () => {
    const created = await t.gql(CREATE_USER, { input: { name: 'Victim', email: 'victim@example.com', password: PASSWORD } });
    const id: string = created.body.data?.createUser.id;
    const squatter = await insertUser(legacyErased(id)); // registered before the address was refused
    const res = await deleteUser(id, await t.login('victim@example.com', PASSWORD));
    expect(res.body.errors).toBeUndefined();
    expect(res.body.data?.deleteUser).toBe(true);
    const stored = await UserModel.findById(id).lean().exec();
    expect(stored?.deletedAt).toBeInstanceOf(Date);
    expect(stored?.email).not.toBe('victim@example.com');
    expect((await UserModel.findById(squatter).lean().exec())?.email).toBe(legacyErased(id));
    expect((await t.gql(`{ user(id: "${id}") { id } }`)).body.data?.user).toBeNull();
  });
});
