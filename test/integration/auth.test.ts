import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN, USER_PASSWORD, errorCodes, startTestApp, type TestApp } from '../helpers/test-app.js';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(() => t.stop());

const CREATE_USER = 'mutation($input: CreateUserInput!) { createUser(input: $input) { id name email role } }';
const UPDATE_USER = 'mutation($id: ID!, $input: UpdateUserInput!) { updateUser(id: $id, input: $input) { id name email } }';

describe('sign-up and login', () => {
  it('createUser stores a CUSTOMER with a lower-cased email, and login returns a working session', async () => {
    const created = await t.gql(CREATE_USER, { input: { name: 'Grace', email: 'Grace@Example.COM', password: 'long-enough-1' } });
    expect(created.body.errors).toBeUndefined();
    expect(created.body.data?.createUser).toMatchObject({ name: 'Grace', role: 'CUSTOMER', email: null });

    const login = await t.gql(
      'mutation { login(email: "grace@example.com", password: "long-enough-1") { token expiresAt user { id email } } }',
    );
    const payload = login.body.data?.login;
    expect(payload.user).toEqual({ id: created.body.data?.createUser.id, email: 'grace@example.com' });
    const ttlMs = new Date(payload.expiresAt).getTime() - Date.now();
    expect(ttlMs).toBeGreaterThan(t.config.sessionTtlSeconds * 1_000 - 60_000);
    expect(ttlMs).toBeLessThanOrEqual(t.config.sessionTtlSeconds * 1_000);

    const viewer = await t.gql('{ viewer { id email } }', {}, payload.token);
    expect(viewer.body.data?.viewer).toEqual({ id: payload.user.id, email: 'grace@example.com' });
  });

  it('rejects a duplicate email, whatever its case, with BAD_USER_INPUT', async () => {
    const res = await t.gql(CREATE_USER, { input: { name: 'Copy', email: 'USER1@example.com', password: 'long-enough-1' } });
    expect(errorCodes(res)).toEqual(['BAD_USER_INPUT']);
    expect(res.body.errors?.[0]?.extensions).toMatchObject({ field: 'input.email', reason: 'DUPLICATE' });
  });

  it.each([
    [{ name: 'X', email: 'not-an-email', password: 'long-enough-1' }, 'input.email'],
    [{ name: '', email: 'x@example.com', password: 'long-enough-1' }, 'input.name'],
    [{ name: 'X', email: 'x@example.com', password: 'short' }, 'input.password'],
  ])('rejects bad sign-up input %o', async (input, field) => {
    const res = await t.gql(CREATE_USER, { input });
    expect(errorCodes(res)).toEqual(['BAD_USER_INPUT']);
    expect(res.body.errors?.[0]?.extensions?.field).toBe(field);
  });

  it('gives the same error for a wrong password and an unknown email', async () => {
    const wrong = await t.gql('mutation { login(email: "user1@example.com", password: "nope-nope") { token } }');
    const unknown = await t.gql('mutation { login(email: "nobody@example.com", password: "nope-nope") { token } }');
    expect(errorCodes(wrong)).toEqual(['BAD_USER_INPUT']);
    expect(unknown.body.errors?.[0]?.message).toBe(wrong.body.errors?.[0]?.message);
  });

  it('logout ends the session; the token then identifies nobody', async () => {
    const token = await t.login('user2@example.com', USER_PASSWORD);
    expect((await t.gql('{ viewer { id } }', {}, token)).body.data?.viewer).not.toBeNull();
    expect((await t.gql('mutation { logout }', {}, token)).body.data?.logout).toBe(true);
    expect((await t.gql('{ viewer { id } }', {}, token)).body.data?.viewer).toBeNull();
    expect((await t.gql('mutation { logout }', {}, token)).body.data?.logout).toBe(false);
    expect((await t.gql('mutation { logout }')).body.data?.logout).toBe(false);
  });

  it('treats a garbage or unknown bearer token as no session', async () => {
    expect((await t.gql('{ viewer { id } }', {}, 'x'.repeat(43))).body.data?.viewer).toBeNull();
    const res = await fetch(`${t.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Basic Zm9vOmJhcg==' },
      body: JSON.stringify({ query: '{ viewer { id } }' }),
    });
    expect(((await res.json()) as { data: { viewer: null } }).data.viewer).toBeNull();
  });
});

describe('private fields', () => {
  it('email and orders are the user themself only', async () => {
    const me = '5eed00000000000000000003';
    const query = `{ user(id: "${me}") { email orders(first: 100) { id user { id } totalCents items { quantity unitPriceCents product { id } } } } }`;
    const own = await t.gql(query, {}, await t.login('user3@example.com', USER_PASSWORD));
    expect(own.body.data?.user.email).toBe('user3@example.com');
    for (const order of own.body.data?.user.orders ?? []) {
      expect(order.user.id).toBe(me);
      expect(order.totalCents).toBe(
        order.items.reduce((s: number, i: { quantity: number; unitPriceCents: number }) => s + i.quantity * i.unitPriceCents, 0),
      );
    }
    const other = await t.gql(query, {}, await t.login('user4@example.com', USER_PASSWORD));
    expect(other.body.data?.user).toEqual({ email: null, orders: [] });
    const anonymous = await t.gql(query);
    expect(anonymous.body.data?.user).toEqual({ email: null, orders: [] });
  });
});

describe('updateUser', () => {
  it('changes the own profile and bumps nothing else', async () => {
    const token = await t.login('user5@example.com', USER_PASSWORD);
    const id = '5eed00000000000000000005';
    const res = await t.gql(UPDATE_USER, { id, input: { name: 'Renamed Five' } }, token);
    expect(res.body.data?.updateUser).toEqual({ id, name: 'Renamed Five', email: 'user5@example.com' });
    const reread = await t.gql(`{ user(id: "${id}") { name } }`);
    expect(reread.body.data?.user.name).toBe('Renamed Five');
  });

  it('is UNAUTHENTICATED without a session and FORBIDDEN for another user, even an admin', async () => {
    const id = '5eed00000000000000000006';
    expect(errorCodes(await t.gql(UPDATE_USER, { id, input: { name: 'x' } }))).toEqual(['UNAUTHENTICATED']);
    const other = await t.login('user7@example.com', USER_PASSWORD);
    expect(errorCodes(await t.gql(UPDATE_USER, { id, input: { name: 'x' } }, other))).toEqual(['FORBIDDEN']);
    const admin = await t.login(ADMIN.email, ADMIN.password);
    expect(errorCodes(await t.gql(UPDATE_USER, { id, input: { name: 'x' } }, admin))).toEqual(['FORBIDDEN']);
  });

  it('rejects a taken email, a null name, and an empty input', async () => {
    const token = await t.login('user8@example.com', USER_PASSWORD);
    const id = '5eed00000000000000000008';
    const taken = await t.gql(UPDATE_USER, { id, input: { email: 'user9@example.com' } }, token);
    expect(taken.body.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', reason: 'DUPLICATE' });
    expect(errorCodes(await t.gql(UPDATE_USER, { id, input: { name: null } }, token))).toEqual(['BAD_USER_INPUT']);
    expect(errorCodes(await t.gql(UPDATE_USER, { id, input: {} }, token))).toEqual(['BAD_USER_INPUT']);
    const unchanged = await t.gql(`{ user(id: "${id}") { email } }`, {}, token);
    expect(unchanged.body.data?.user.email).toBe('user8@example.com');
  });
});
