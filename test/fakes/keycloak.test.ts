import KcAdminClient, { NetworkError } from '@keycloak/keycloak-admin-client';
import { createRemoteJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEVICE_GRANT_TYPE, type FakeKeycloak, startFakeKeycloak } from './keycloak/index.js';

type Json = Record<string, unknown>;
interface Wire {
  status: number;
  headers: Headers;
  text: string;
  json: Json;
}

const OIDC = '/protocol/openid-connect';
const SECRET = 'gw-secret';

async function toWire(res: Response): Promise<Wire> {
  const text = await res.text();
  let json: Json = {};
  try {
    json = JSON.parse(text) as Json;
  } catch {
    // empty or non-JSON body
  }
  return { status: res.status, headers: res.headers, text, json };
}

function postForm(kc: FakeKeycloak, path: string, form: Record<string, string>, headers: Record<string, string> = {}): Promise<Wire> {
  return fetch(`${kc.issuer}${OIDC}/${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(form),
  }).then(toWire);
}

function getWith(url: string, token?: string): Promise<Wire> {
  return fetch(url, { headers: token ? { authorization: `Bearer ${token}` } : {} }).then(toWire);
}

async function login(kc: FakeKeycloak, username: string, password: string, extra: Record<string, string> = {}): Promise<Json> {
  const res = await postForm(kc, 'token', { grant_type: 'password', client_id: kc.publicClientId, username, password, ...extra });
  expect(res.status).toBe(200);
  return res.json;
}

function str(v: unknown): string {
  if (typeof v !== 'string') throw new Error(`expected a string, got ${JSON.stringify(v)}`);
  return v;
}

async function serviceClient(kc: FakeKeycloak): Promise<KcAdminClient> {
  const client = new KcAdminClient({ baseUrl: kc.url, realmName: kc.realm });
  await client.auth({ grantType: 'client_credentials', clientId: kc.clientId, clientSecret: kc.clientSecret });
  return client;
}

async function networkError(p: Promise<unknown>): Promise<NetworkError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof NetworkError) return err;
    throw err;
  }
  throw new Error('expected a NetworkError');
}

function grantsSeen(kc: FakeKeycloak, grant: string): number {
  return kc.requests.filter((r) => r.path.endsWith(`${OIDC}/token`) && r.body.includes(`grant_type=${grant}`)).length;
}

let kc: FakeKeycloak;
let admin: KcAdminClient;
let orgId: string;
let aliceId: string;

beforeAll(async () => {
  kc = await startFakeKeycloak({ realm: 'gateway', clientSecret: SECRET });
  orgId = kc.addGroup('org-acme', { org: ['acme'] });
  aliceId = kc.addUser({
    username: 'alice', password: 'alice-pw', email: 'alice@example.com', firstName: 'Alice', lastName: 'Doe',
    realmRoles: ['gateway-user'], groups: ['org-acme'], attributes: { org: ['acme'] },
  });
  kc.addUser({ username: 'root', password: 'root-pw', clientRoles: { 'realm-management': ['realm-admin'] } });
  kc.addUser({ username: 'dave', password: 'dave-pw', enabled: false });
  admin = await serviceClient(kc);
});

afterAll(async () => {
  await kc.close();
});

describe('token endpoint', () => {
  it('client_credentials: the admin client sends the secret only in the Basic header and gets a realm-admin service-account token', async () => {
    const req = kc.requests.find((r) => r.body.includes('grant_type=client_credentials'));
    expect(req?.body).toBe('grant_type=client_credentials&client_id=gateway');
    expect(Buffer.from(str(req?.headers.authorization).slice(6), 'base64').toString()).toBe(`gateway:${SECRET}`);
    const claims = decodeJwt(str(admin.accessToken));
    expect(claims).toMatchObject({ azp: 'gateway', typ: 'Bearer', preferred_username: 'service-account-gateway', client_id: 'gateway' });
    expect(claims.sid).toBeUndefined();
    expect(claims.resource_access).toMatchObject({ 'realm-management': { roles: expect.arrayContaining(['realm-admin', 'manage-users']) } });
  });

  it('client_credentials body has no refresh_token/session_state, refresh_expires_in 0, and no-store headers', async () => {
    const basic = `Basic ${Buffer.from(`gateway:${SECRET}`).toString('base64')}`;
    const res = await postForm(kc, 'token', { grant_type: 'client_credentials' }, { authorization: basic });
    expect(res.status).toBe(200);
    expect(Object.keys(res.json)).toEqual(['access_token', 'expires_in', 'refresh_expires_in', 'token_type', 'not-before-policy', 'scope']);
    expect(res.json).toMatchObject({ expires_in: 60, refresh_expires_in: 0, token_type: 'Bearer', 'not-before-policy': 0, scope: 'email profile' });
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.headers.get('pragma')).toBe('no-cache');
  });

  it('password grant (public client, client_id only) returns the B.3 body in Keycloak key order', async () => {
    const body = await login(kc, 'alice', 'alice-pw');
    expect(Object.keys(body)).toEqual([
      'access_token', 'expires_in', 'refresh_expires_in', 'refresh_token', 'token_type', 'not-before-policy', 'session_state', 'scope',
    ]);
    expect(body).toMatchObject({ expires_in: 60, refresh_expires_in: 1800, token_type: 'Bearer', scope: 'email profile' });
    expect(decodeJwt(str(body.access_token)).sid).toBe(body.session_state);
  });

  it('password grant accepts a confidential client authenticated by client_secret in the body, and email as login', async () => {
    const res = await postForm(kc, 'token', {
      grant_type: 'password', client_id: 'gateway', client_secret: SECRET, username: 'ALICE@example.com', password: 'alice-pw',
    });
    expect(res.status).toBe(200);
    expect(decodeJwt(str(res.json.access_token)).azp).toBe('gateway');
  });

  it('wrong password and unknown user → 400 invalid_grant "Invalid user credentials" (admin client message: invalid_grant)', async () => {
    for (const [username, password] of [['alice', 'nope'], ['nobody', 'x']]) {
      const res = await postForm(kc, 'token', { grant_type: 'password', client_id: 'gatewayctl', username: str(username), password: str(password) });
      expect(res.status).toBe(400);
      expect(res.json).toEqual({ error: 'invalid_grant', error_description: 'Invalid user credentials' });
    }
    const client = new KcAdminClient({ baseUrl: kc.url, realmName: kc.realm });
    const err = await networkError(client.auth({ grantType: 'password', clientId: 'gatewayctl', username: 'alice', password: 'nope' }));
    expect(err.message).toBe('invalid_grant');
  });

  it('invalidGrantStatus: 401 reproduces Keycloak before 26.6 for bad credentials', async () => {
    const old = await startFakeKeycloak({ invalidGrantStatus: 401 });
    old.addUser({ username: 'u', password: 'p' });
    const res = await postForm(old, 'token', { grant_type: 'password', client_id: 'gatewayctl', username: 'u', password: 'bad' });
    expect(res.status).toBe(401);
    expect(res.json.error).toBe('invalid_grant');
    await old.close();
  });

  it('disabled user → 400 invalid_grant "Account disabled"', async () => {
    const res = await postForm(kc, 'token', { grant_type: 'password', client_id: 'gatewayctl', username: 'dave', password: 'dave-pw' });
    expect(res.status).toBe(400);
    expect(res.json).toEqual({ error: 'invalid_grant', error_description: 'Account disabled' });
  });

  it('client and request errors use the measured codes and statuses', async () => {
    const cases: Array<[Record<string, string>, number, string, string]> = [
      [{ grant_type: 'password', client_id: 'nope' }, 401, 'invalid_client', 'Invalid client or Invalid client credentials'],
      [{ grant_type: 'client_credentials', client_id: 'gateway', client_secret: 'wrong' }, 401, 'unauthorized_client', 'Invalid client or Invalid client credentials'],
      [{ client_id: 'gatewayctl' }, 400, 'invalid_request', 'Missing form parameter: grant_type'],
      [{ grant_type: 'magic', client_id: 'gatewayctl' }, 400, 'unsupported_grant_type', 'Unsupported grant_type'],
      [{ grant_type: 'client_credentials', client_id: 'gatewayctl' }, 401, 'unauthorized_client', 'Public client not allowed to retrieve service account'],
      [{ grant_type: 'password', client_id: 'gatewayctl', username: 'alice', password: 'alice-pw', scope: 'bogus' }, 400, 'invalid_scope', 'Invalid scopes: bogus'],
    ];
    for (const [form, status, error, description] of cases) {
      const res = await postForm(kc, 'token', form);
      expect({ status: res.status, body: res.json }).toEqual({ status, body: { error, error_description: description } });
    }
    const dup = await fetch(`${kc.issuer}${OIDC}/token`, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=password&grant_type=password',
    }).then(toWire);
    expect(dup.json).toEqual({ error: 'invalid_request', error_description: 'duplicated parameter' });
  });
});

describe('tokens and keys', () => {
  it('access tokens are RS256 JWTs that verify against the JWKS found through discovery, with B.4 claims', async () => {
    const disco = await getWith(`${kc.issuer}/.well-known/openid-configuration`);
    expect(disco.json).toMatchObject({ issuer: kc.issuer, token_endpoint: `${kc.issuer}${OIDC}/token`, end_session_endpoint: `${kc.issuer}${OIDC}/logout` });
    const jwks = createRemoteJWKSet(new URL(str(disco.json.jwks_uri)));
    const token = str((await login(kc, 'alice', 'alice-pw')).access_token);
    const { payload, protectedHeader } = await jwtVerify(token, jwks, { issuer: kc.issuer, audience: 'account' });
    expect(protectedHeader).toMatchObject({ alg: 'RS256', typ: 'JWT', kid: expect.any(String) });
    expect(Object.keys(payload).slice(0, 11)).toEqual(['exp', 'iat', 'jti', 'iss', 'aud', 'sub', 'typ', 'azp', 'sid', 'acr', 'realm_access']);
    expect(payload).toMatchObject({
      iss: kc.issuer, aud: 'account', sub: aliceId, typ: 'Bearer', azp: 'gatewayctl', acr: '1', scope: 'email profile',
      email_verified: false, preferred_username: 'alice', email: 'alice@example.com', name: 'Alice Doe',
      given_name: 'Alice', family_name: 'Doe', groups: ['/org-acme'],
      realm_access: { roles: ['default-roles-gateway', 'gateway-user', 'offline_access', 'uma_authorization'] },
      resource_access: { account: { roles: ['manage-account', 'manage-account-links', 'view-profile'] } },
    });
    expect(str(payload.jti)).toMatch(/^onrtro:/);
    expect(Number(payload.exp) - Number(payload.iat)).toBe(60);
    expect(payload.session_state).toBeUndefined();
  });

  it('JWKS holds an RS256 sig key and an RSA-OAEP enc key; refresh tokens are HS512 and not verifiable with it', async () => {
    const certs = await getWith(`${kc.issuer}${OIDC}/certs`);
    expect(certs.headers.get('cache-control')).toBe('no-cache');
    expect(certs.json.keys).toMatchObject([{ kty: 'RSA', alg: 'RS256', use: 'sig', e: 'AQAB' }, { alg: 'RSA-OAEP', use: 'enc' }]);
    const refresh = str((await login(kc, 'alice', 'alice-pw')).refresh_token);
    expect(decodeProtectedHeader(refresh).alg).toBe('HS512');
    expect(decodeJwt(refresh)).toMatchObject({ typ: 'Refresh', aud: kc.issuer, azp: 'gatewayctl', prov: 'default' });
    await expect(jwtVerify(refresh, createRemoteJWKSet(new URL(`${kc.issuer}${OIDC}/certs`)))).rejects.toThrow();
  });

  it('claims are recomputed from current roles and groups when the token is refreshed', async () => {
    const first = await login(kc, 'alice', 'alice-pw');
    const role = await admin.roles.findOneByName({ name: 'org-admin' });
    await admin.users.addRealmRoleMappings({ id: aliceId, roles: [{ id: str(role?.id), name: 'org-admin' }] });
    await admin.users.delFromGroup({ id: aliceId, groupId: orgId });
    const refreshed = await postForm(kc, 'token', { grant_type: 'refresh_token', client_id: 'gatewayctl', refresh_token: str(first.refresh_token) });
    const claims = decodeJwt(str(refreshed.json.access_token));
    expect(claims.realm_access).toEqual({ roles: ['default-roles-gateway', 'gateway-user', 'offline_access', 'org-admin', 'uma_authorization'] });
    expect(claims.groups).toBeUndefined();
    expect(refreshed.json.session_state).toBe(first.session_state);
    await admin.users.delRealmRoleMappings({ id: aliceId, roles: [{ id: str(role?.id), name: 'org-admin' }] });
    await admin.users.addToGroup({ id: aliceId, groupId: orgId });
  });

  it('scope=openid adds an ID token and unlocks userinfo; without it userinfo answers 403 insufficient_scope', async () => {
    const body = await login(kc, 'alice', 'alice-pw', { scope: 'openid' });
    expect(body.scope).toBe('openid email profile');
    expect(decodeJwt(str(body.id_token))).toMatchObject({ typ: 'ID', aud: 'gatewayctl', sub: aliceId, at_hash: expect.any(String) });
    const info = await getWith(`${kc.issuer}${OIDC}/userinfo`, str(body.access_token));
    expect(info.json).toEqual({
      sub: aliceId, email_verified: false, name: 'Alice Doe', groups: ['/org-acme'], preferred_username: 'alice',
      given_name: 'Alice', family_name: 'Doe', email: 'alice@example.com',
    });
    const noOpenid = await getWith(`${kc.issuer}${OIDC}/userinfo`, str((await login(kc, 'alice', 'alice-pw')).access_token));
    expect(noOpenid.status).toBe(403);
    expect(noOpenid.headers.get('www-authenticate')).toBe('Bearer realm="gateway", error="insufficient_scope", error_description="Missing openid scope"');
  });

  it('userinfo without a token → 401 challenge; with garbage → invalid_token "Token verification failed"', async () => {
    const none = await getWith(`${kc.issuer}${OIDC}/userinfo`);
    expect([none.status, none.text, none.headers.get('www-authenticate')]).toEqual([401, '', 'Bearer realm="gateway"']);
    const bad = await getWith(`${kc.issuer}${OIDC}/userinfo`, 'garbage');
    expect(bad.headers.get('www-authenticate')).toContain('error="invalid_token", error_description="Token verification failed"');
  });

  it('admin-cli tokens are lightweight: no sub, aud or realm_access', async () => {
    const res = await postForm(kc, 'token', { grant_type: 'password', client_id: 'admin-cli', username: 'alice', password: 'alice-pw' });
    expect(Object.keys(decodeJwt(str(res.json.access_token)))).toEqual(['exp', 'iat', 'jti', 'iss', 'typ', 'azp', 'sid', 'scope']);
  });

  it('unknown realm → 404 "Realm does not exist"', async () => {
    const res = await getWith(`${kc.url}/realms/nope${OIDC}/certs`);
    expect([res.status, res.json]).toEqual([404, { error: 'Realm does not exist' }]);
  });
});

describe('sessions: logout, revoke, introspect, refresh', () => {
  it('refresh-token logout → 204 and kills the session: refresh gets 400 "Session not active", the access token 401s', async () => {
    const body = await login(kc, 'root', 'root-pw');
    const access = str(body.access_token);
    expect((await getWith(`${kc.url}/admin/realms/gateway/users/count`, access)).status).toBe(200);
    const out = await postForm(kc, 'logout', { client_id: 'gatewayctl', refresh_token: str(body.refresh_token) });
    expect([out.status, out.text]).toEqual([204, '']);
    const again = await postForm(kc, 'token', { grant_type: 'refresh_token', client_id: 'gatewayctl', refresh_token: str(body.refresh_token) });
    expect([again.status, again.json]).toEqual([400, { error: 'invalid_grant', error_description: 'Session not active' }]);
    const adminCall = await getWith(`${kc.url}/admin/realms/gateway/users/count`, access);
    expect([adminCall.status, adminCall.json]).toEqual([401, { error: 'HTTP 401 Unauthorized' }]);
  });

  it('logout errors: another client\'s token, an invalid token, no client', async () => {
    const refresh = str((await login(kc, 'alice', 'alice-pw')).refresh_token);
    const other = await postForm(kc, 'logout', { client_id: 'gateway', client_secret: SECRET, refresh_token: refresh });
    expect(other.json).toEqual({ error: 'invalid_grant', error_description: "Invalid refresh token. Token client and authorized client don't match" });
    const bad = await postForm(kc, 'logout', { client_id: 'gatewayctl', refresh_token: 'garbage' });
    expect([bad.status, bad.json.error_description]).toEqual([400, 'Invalid refresh token']);
    const noClient = await postForm(kc, 'logout', { refresh_token: refresh });
    expect([noClient.status, noClient.json.error]).toEqual([401, 'invalid_client']);
  });

  it('refresh_token grant errors: garbage → "Invalid refresh token", other client → "Unmatching clients", disabled user → "User disabled"', async () => {
    const garbage = await postForm(kc, 'token', { grant_type: 'refresh_token', client_id: 'gatewayctl', refresh_token: 'x.y.z' });
    expect(garbage.json).toEqual({ error: 'invalid_grant', error_description: 'Invalid refresh token' });
    const id = kc.addUser({ username: 'erin', password: 'erin-pw' });
    const refresh = str((await login(kc, 'erin', 'erin-pw')).refresh_token);
    const other = await postForm(kc, 'token', { grant_type: 'refresh_token', client_id: 'admin-cli', refresh_token: refresh });
    expect(other.json.error_description).toBe('Unmatching clients');
    await admin.users.update({ id }, { enabled: false });
    const disabled = await postForm(kc, 'token', { grant_type: 'refresh_token', client_id: 'gatewayctl', refresh_token: refresh });
    expect(disabled.json).toEqual({ error: 'invalid_grant', error_description: 'User disabled' });
  });

  it('revoke: a refresh token → 200 empty and the session ends; an unknown token → 200 with Keycloak\'s error body', async () => {
    const body = await login(kc, 'alice', 'alice-pw');
    const revoked = await postForm(kc, 'revoke', { client_id: 'gatewayctl', token: str(body.refresh_token), token_type_hint: 'refresh_token' });
    expect([revoked.status, revoked.text]).toEqual([200, '']);
    expect(kc.user('alice')?.sessions).not.toContain(body.session_state);
    const unknown = await postForm(kc, 'revoke', { client_id: 'gatewayctl', token: 'nope' });
    expect([unknown.status, unknown.json]).toEqual([200, { error: 'invalid_token', error_description: 'Invalid token' }]);
  });

  it('revoking an access token makes introspection report it inactive', async () => {
    const access = str((await login(kc, 'alice', 'alice-pw')).access_token);
    const auth = { client_id: 'gateway', client_secret: SECRET };
    const active = await postForm(kc, 'token/introspect', { ...auth, token: access });
    expect(active.json).toMatchObject({ active: true, username: 'alice', client_id: 'gatewayctl', token_type: 'Bearer', sub: aliceId });
    await postForm(kc, 'revoke', { client_id: 'gatewayctl', token: access });
    expect((await postForm(kc, 'token/introspect', { ...auth, token: access })).json).toEqual({ active: false });
  });

  it('kc.logoutUser ends every session of a user (admin sign-out)', async () => {
    await login(kc, 'alice', 'alice-pw');
    expect(kc.user('alice')?.sessions.length).toBeGreaterThan(0);
    kc.logoutUser('alice');
    expect(kc.user('alice')?.sessions).toEqual([]);
  });
});

describe('admin client token lifecycle', () => {
  it('with a short access-token lifespan the admin client auto-refreshes (Basic auth + refresh_token grant) before calls', async () => {
    const short = await startFakeKeycloak({ accessTokenLifespanSec: 5, clientSecret: SECRET });
    short.addUser({ username: 'ops', password: 'ops-pw', clientRoles: { 'realm-management': ['manage-users', 'view-users'] } });
    const client = new KcAdminClient({ baseUrl: short.url, realmName: short.realm });
    await client.auth({ grantType: 'password', clientId: 'gateway', clientSecret: SECRET, username: 'ops', password: 'ops-pw' });
    const firstToken = client.accessToken;
    expect(await client.users.count()).toBe(1);
    expect(await client.users.find()).toHaveLength(1);
    expect(grantsSeen(short, 'refresh_token')).toBe(2);
    expect(client.accessToken).not.toBe(firstToken);
    const refreshReq = short.requests.filter((r) => r.body.includes('grant_type=refresh_token')).at(-1);
    expect(refreshReq?.headers.authorization).toMatch(/^Basic /);
    await short.close();
  });

  it('client_credentials gives no refresh token: once expired the admin client throws "Cannot refresh token: missing refresh token or credentials"', async () => {
    const short = await startFakeKeycloak({ accessTokenLifespanSec: 5 });
    const client = await serviceClient(short);
    await expect(client.users.find()).rejects.toThrow('Cannot refresh token: missing refresh token or credentials');
    await short.close();
  });

  it('with the fake clock: expired access tokens get 401 and expired refresh tokens "Token is not active"', async () => {
    let now = Date.now();
    const timed = await startFakeKeycloak({ now: () => now });
    timed.addUser({ username: 'ops', password: 'ops-pw', clientRoles: { 'realm-management': ['realm-admin'] } });
    const body = await login(timed, 'ops', 'ops-pw');
    const url = `${timed.url}/admin/realms/${timed.realm}/users`;
    expect((await getWith(url, str(body.access_token))).status).toBe(200);
    now += 61_000;
    expect((await getWith(url, str(body.access_token))).json).toEqual({ error: 'HTTP 401 Unauthorized' });
    now += 1800_000;
    const refresh = await postForm(timed, 'token', { grant_type: 'refresh_token', client_id: 'gatewayctl', refresh_token: str(body.refresh_token) });
    expect(refresh.json).toEqual({ error: 'invalid_grant', error_description: 'Token is not active' });
    await timed.close();
  });
});

describe('admin REST: users', () => {
  it('users.create POSTs to /users/ (trailing slash), gets 201 + Location and returns {id}; findOne returns the B.2 representation', async () => {
    const { id } = await admin.users.create({
      username: 'Bob', email: 'Bob@Example.com', enabled: true, attributes: { org: ['acme'] },
      credentials: [{ type: 'password', value: 'bob-pw', temporary: false }],
    });
    const req = kc.requests.filter((r) => r.method === 'POST' && r.path === '/admin/realms/gateway/users/');
    expect(req).toHaveLength(1);
    const raw = await fetch(`${kc.url}/admin/realms/gateway/users`, {
      method: 'POST', headers: { authorization: `Bearer ${admin.accessToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'bob2', enabled: true }),
    });
    expect([raw.status, raw.headers.get('location')]).toEqual([201, expect.stringMatching(`^${kc.url}/admin/realms/gateway/users/[0-9a-f-]{36}$`)]);
    const bob = await admin.users.findOne({ id });
    expect(Object.keys(bob ?? {})).toEqual([
      'id', 'username', 'email', 'emailVerified', 'attributes', 'enabled', 'createdTimestamp', 'totp',
      'disableableCredentialTypes', 'requiredActions', 'notBefore', 'access',
    ]);
    expect(bob).toMatchObject({ id, username: 'bob', email: 'bob@example.com', enabled: true, attributes: { org: ['acme'] }, notBefore: 0 });
    expect(bob?.access).toEqual({ manageGroupMembership: true, resetPassword: true, view: true, mapRoles: true, impersonate: true, manage: true });
    expect(kc.user('bob')?.realmRoles).toEqual(['default-roles-gateway']);
    await login(kc, 'bob', 'bob-pw');
  });

  it('users.create errors: duplicate username/email → 409 errorMessage, no username → 400, malformed JSON → 400 invalid_request', async () => {
    const dupName = await networkError(admin.users.create({ username: 'ALICE', enabled: true }));
    expect([dupName.response.status, dupName.message]).toEqual([409, 'User exists with same username']);
    expect(dupName.responseData).toEqual({ errorMessage: 'User exists with same username' });
    const dupEmail = await networkError(admin.users.create({ username: 'alice2', email: 'alice@example.com' }));
    expect([dupEmail.response.status, dupEmail.message]).toEqual([409, 'User exists with same email']);
    const noName = await networkError(admin.users.create({ email: 'x@example.com' }));
    expect([noName.response.status, noName.message]).toEqual([400, 'User name is missing']);
    const malformed = await fetch(`${kc.url}/admin/realms/gateway/users`, {
      method: 'POST', headers: { authorization: `Bearer ${admin.accessToken}`, 'content-type': 'application/json' }, body: '{',
    }).then(toWire);
    expect([malformed.status, malformed.json]).toEqual([400, { error: 'invalid_request', error_description: 'Cannot parse the JSON' }]);
  });

  it('users.find: search (infix, * wildcard, "exact"), field filters with exact, enabled, q=attr:value, paging, brief', async () => {
    for (const u of ['carol', 'carla', 'oscar']) kc.addUser({ username: u, password: 'pw', email: `${u}@corp.io` });
    const names = async (q: Record<string, string | number | boolean>) => (await admin.users.find(q)).map((u) => u.username);
    expect(await names({ search: 'car' })).toEqual(['carla', 'carol', 'oscar']);
    expect(await names({ search: 'car*l' })).toEqual(['carla', 'carol']);
    expect(await names({ search: '"carol"' })).toEqual(['carol']);
    expect(await names({ username: 'car', exact: true })).toEqual([]);
    expect(await names({ email: 'carol@corp.io', exact: true })).toEqual(['carol']);
    expect(await names({ username: 'car', first: 1, max: 1 })).toEqual(['carol']);
    expect(await names({ enabled: false })).toEqual(['dave', 'erin']);
    expect(await names({ q: 'org:acme' })).toEqual(['alice', 'bob']);
    const [brief] = await admin.users.find({ username: 'carol', exact: true, briefRepresentation: true });
    expect(Object.keys(brief ?? {})).toEqual(['id', 'username', 'email', 'emailVerified', 'enabled', 'createdTimestamp', 'access']);
    expect(brief?.access).toEqual({ manage: true });
    expect(await names({})).not.toContain('service-account-gateway');
  });

  it('users.count returns a bare number and honours filters', async () => {
    const raw = await getWith(`${kc.url}/admin/realms/gateway/users/count?search=car`, admin.accessToken);
    expect([raw.text, raw.headers.get('content-type')]).toEqual(['3', 'application/json;charset=UTF-8']);
    expect(await admin.users.count({ search: 'car' })).toBe(3);
  });

  it('users.findOne of an unknown id → null (404 "User not found")', async () => {
    expect(await admin.users.findOne({ id: '00000000-0000-0000-0000-000000000000' })).toBeNull();
    const raw = await getWith(`${kc.url}/admin/realms/gateway/users/nope`, admin.accessToken);
    expect([raw.status, raw.json]).toEqual([404, { error: 'User not found' }]);
  });

  it('users.update merges (absent fields kept), disables login with enabled:false, rejects username changes', async () => {
    const id = kc.addUser({ username: 'frank', password: 'frank-pw', email: 'frank@corp.io', attributes: { a: ['1'], b: ['2'] } });
    await admin.users.update({ id }, { firstName: 'Frank', attributes: { a: ['9'] } });
    expect(await admin.users.findOne({ id })).toMatchObject({ username: 'frank', email: 'frank@corp.io', firstName: 'Frank', attributes: { a: ['9'] } });
    await admin.users.update({ id }, { enabled: false });
    const res = await postForm(kc, 'token', { grant_type: 'password', client_id: 'gatewayctl', username: 'frank', password: 'frank-pw' });
    expect(res.json.error_description).toBe('Account disabled');
    const rename = await networkError(admin.users.update({ id }, { username: 'franky' }));
    expect([rename.response.status, rename.message]).toEqual([400, 'error-user-attribute-read-only']);
    const missing = await networkError(admin.users.update({ id: 'nope' }, { enabled: true }));
    expect([missing.response.status, missing.message]).toEqual([404, 'User not found']);
  });

  it('users.del sends DELETE with body {} → 204, ends the user\'s sessions; a second delete → 404', async () => {
    const id = kc.addUser({ username: 'gina', password: 'gina-pw' });
    await login(kc, 'gina', 'gina-pw');
    await admin.users.del({ id });
    const req = kc.requests.filter((r) => r.method === 'DELETE' && r.path === `/admin/realms/gateway/users/${id}`);
    expect(req.map((r) => r.body)).toEqual(['{}']);
    expect(kc.user(id)).toBeUndefined();
    const again = await networkError(admin.users.del({ id }));
    expect([again.response.status, again.message]).toEqual([404, 'User not found']);
  });

  it('users.resetPassword changes what the password grant accepts; temporary blocks login; no value → 400', async () => {
    const id = kc.addUser({ username: 'hank', password: 'old-pw' });
    await admin.users.resetPassword({ id, credential: { type: 'password', value: 'new-pw', temporary: false } });
    await login(kc, 'hank', 'new-pw');
    const old = await postForm(kc, 'token', { grant_type: 'password', client_id: 'gatewayctl', username: 'hank', password: 'old-pw' });
    expect(old.json.error_description).toBe('Invalid user credentials');
    await admin.users.resetPassword({ id, credential: { type: 'password', value: 'tmp-pw', temporary: true } });
    const tmp = await postForm(kc, 'token', { grant_type: 'password', client_id: 'gatewayctl', username: 'hank', password: 'tmp-pw' });
    expect(tmp.json).toEqual({ error: 'invalid_grant', error_description: 'Account is not fully set up' });
    const empty = await networkError(admin.users.resetPassword({ id, credential: { type: 'password', temporary: false } }));
    expect([empty.response.status, empty.responseData]).toEqual([400, { error: 'No password provided' }]);
  });
});

describe('admin REST: role mappings and user groups', () => {
  it('addRealmRoleMappings matches by name AND id; a wrong id or unknown name → 404 "Role not found"', async () => {
    const role = await admin.roles.findOneByName({ name: 'gateway-admin' });
    const id = kc.addUser({ username: 'ivan', password: 'pw' });
    await admin.users.addRealmRoleMappings({ id, roles: [{ id: str(role?.id), name: 'gateway-admin' }] });
    expect(kc.user(id)?.realmRoles).toEqual(['default-roles-gateway', 'gateway-admin']);
    const wrongId = await networkError(admin.users.addRealmRoleMappings({ id, roles: [{ id: 'x', name: 'org-admin' }] }));
    expect([wrongId.response.status, wrongId.message]).toEqual([404, 'Role not found']);
    const noName = await networkError(admin.users.addRealmRoleMappings({ id, roles: [{ id: str(role?.id), name: 'ghost' }] }));
    expect(noName.message).toBe('Role not found');
    const sent = kc.requests.filter((r) => r.method === 'POST' && r.path.endsWith(`/users/${id}/role-mappings/realm`))[0];
    expect(JSON.parse(sent?.body ?? '')).toEqual([{ id: role?.id, name: 'gateway-admin' }]);
  });

  it('list (direct), composite (expanded) and listRoleMappings; delRealmRoleMappings removes', async () => {
    const id = str(kc.user('ivan')?.id);
    expect((await admin.users.listRealmRoleMappings({ id })).map((r) => r.name)).toEqual(['default-roles-gateway', 'gateway-admin']);
    expect((await admin.users.listCompositeRealmRoleMappings({ id })).map((r) => r.name)).toEqual([
      'default-roles-gateway', 'gateway-admin', 'offline_access', 'uma_authorization',
    ]);
    const all = await admin.users.listRoleMappings({ id });
    expect(Object.keys(all)).toEqual(['realmMappings']);
    expect(all.realmMappings?.[0]).toMatchObject({ name: 'default-roles-gateway', composite: true, clientRole: false, description: expect.stringMatching(/^\$\{role_default-roles\}$/) });
    const root = await admin.users.listRoleMappings({ id: str(kc.user('root')?.id) });
    expect(root.clientMappings?.['realm-management']).toMatchObject({ client: 'realm-management', mappings: [{ name: 'realm-admin', clientRole: true }] });
    const role = await admin.roles.findOneByName({ name: 'gateway-admin' });
    await admin.users.delRealmRoleMappings({ id, roles: [{ id: str(role?.id), name: 'gateway-admin' }] });
    expect(kc.user(id)?.realmRoles).toEqual(['default-roles-gateway']);
  });

  it('user groups: addToGroup PUTs body {} → 204, listGroups/countGroups/delFromGroup; unknown group or user → 404', async () => {
    const id = str(kc.user('ivan')?.id);
    await admin.users.addToGroup({ id, groupId: orgId });
    const put = kc.requests.filter((r) => r.method === 'PUT' && r.path === `/admin/realms/gateway/users/${id}/groups/${orgId}`);
    expect(put.map((r) => r.body)).toEqual(['{}']);
    expect(await admin.users.listGroups({ id })).toEqual([{ id: orgId, name: 'org-acme', path: '/org-acme', subGroups: [] }]);
    expect(await admin.users.countGroups({ id })).toEqual({ count: 1 });
    await admin.users.delFromGroup({ id, groupId: orgId });
    expect(await admin.users.countGroups({ id })).toEqual({ count: 0 });
    const noGroup = await networkError(admin.users.addToGroup({ id, groupId: 'nope' }));
    expect([noGroup.response.status, noGroup.message]).toEqual([404, 'Group not found']);
    const noUser = await networkError(admin.users.addToGroup({ id: 'nope', groupId: orgId }));
    expect(noUser.message).toBe('User not found');
  });
});

describe('admin REST: roles and groups', () => {
  it('roles.find lists the seeded realm roles sorted; findOneByName adds attributes {}; unknown → null', async () => {
    expect((await admin.roles.find()).map((r) => r.name)).toEqual([
      'default-roles-gateway', 'gateway-admin', 'gateway-user', 'offline_access', 'org-admin', 'uma_authorization',
    ]);
    expect((await admin.roles.find({ search: 'gate' })).map((r) => r.name)).toEqual(['default-roles-gateway', 'gateway-admin', 'gateway-user']);
    const role = await admin.roles.findOneByName({ name: 'gateway-user' });
    expect(Object.keys(role ?? {})).toEqual(['id', 'name', 'composite', 'clientRole', 'containerId', 'attributes']);
    expect(role?.attributes).toEqual({});
    expect(await admin.roles.findOneByName({ name: 'ghost' })).toBeNull();
  });

  it('roles.create → {roleName}; duplicate → 409; findUsersWithRole lists direct holders; unknown role → null', async () => {
    expect(await admin.roles.create({ name: 'billing', description: 'Billing access' })).toEqual({ roleName: 'billing' });
    const dup = await networkError(admin.roles.create({ name: 'billing' }));
    expect([dup.response.status, dup.message]).toEqual([409, 'Role with name billing already exists']);
    expect((await admin.roles.findUsersWithRole({ name: 'gateway-user' }))?.map((u) => u.username)).toEqual(['alice']);
    expect(await admin.roles.findUsersWithRole({ name: 'ghost' })).toBeNull();
  });

  it('groups.create POSTs to /groups/ → {id}; find/findOne/listMembers; duplicates → 409; unknown ids → null', async () => {
    const { id } = await admin.groups.create({ name: 'org-beta', attributes: { org: ['beta'] } });
    expect(kc.requests.some((r) => r.method === 'POST' && r.path === '/admin/realms/gateway/groups/')).toBe(true);
    const found = await admin.groups.find({ search: 'beta' });
    expect(found).toEqual([{
      id, name: 'org-beta', path: '/org-beta', subGroupCount: 0, subGroups: [],
      access: { view: true, viewMembers: true, manageMembers: true, manage: true, manageMembership: true },
    }]);
    expect(await admin.groups.findOne({ id })).toMatchObject({ name: 'org-beta', attributes: { org: ['beta'] }, realmRoles: [], clientRoles: {} });
    expect(await admin.groups.findOne({ id: 'nope' })).toBeNull();
    const dup = await networkError(admin.groups.create({ name: 'org-beta' }));
    expect([dup.response.status, dup.message]).toEqual([409, "Top level group named 'org-beta' already exists."]);
    expect((await admin.groups.listMembers({ id: orgId }))?.map((u) => u.username)).toEqual(['alice']);
    expect(await admin.groups.listMembers({ id: 'nope' })).toBeNull();
  });
});

describe('admin REST: authorization', () => {
  it('no or garbage bearer → 401 {"error":"HTTP 401 Unauthorized"}', async () => {
    for (const token of [undefined, 'garbage']) {
      const res = await getWith(`${kc.url}/admin/realms/gateway/users`, token);
      expect([res.status, res.json]).toEqual([401, { error: 'HTTP 401 Unauthorized' }]);
    }
  });

  it('an ordinary user token → 403 {"error":"HTTP 403 Forbidden"} through the admin client', async () => {
    const client = new KcAdminClient({ baseUrl: kc.url, realmName: kc.realm });
    await client.auth({ grantType: 'password', clientId: 'gatewayctl', username: 'alice', password: 'alice-pw' });
    const err = await networkError(client.users.find());
    expect([err.response.status, err.message]).toEqual([403, 'HTTP 403 Forbidden']);
  });

  it('a user holding realm-management roles may use the admin API via a password login', async () => {
    const client = new KcAdminClient({ baseUrl: kc.url, realmName: kc.realm });
    await client.auth({ grantType: 'password', clientId: 'gatewayctl', username: 'root', password: 'root-pw' });
    expect((await client.users.find({ username: 'alice', exact: true })).map((u) => u.id)).toEqual([aliceId]);
  });

  it('unknown realm → 404 {"error":"Realm not found."}', async () => {
    const res = await getWith(`${kc.url}/admin/realms/nope/users`, admin.accessToken);
    expect([res.status, res.json]).toEqual([404, { error: 'Realm not found.' }]);
  });
});

describe('device authorization grant', () => {
  it('auth/device answers the recorded shape; polling is pending until approveDevice, then yields tokens for that user', async () => {
    let now = Date.now();
    const dev = await startFakeKeycloak({ now: () => now });
    const userId = dev.addUser({ username: 'jo', password: 'pw', realmRoles: ['gateway-user'] });
    const start = await postForm(dev, 'auth/device', { client_id: 'gatewayctl', scope: 'openid' });
    expect(start.status).toBe(200);
    expect(start.headers.get('cache-control')).toBe('no-store, must-revalidate, max-age=0');
    expect(start.json).toMatchObject({
      device_code: expect.any(String), user_code: expect.stringMatching(/^[A-Z]{4}-[A-Z]{4}$/),
      verification_uri: `${dev.issuer}/device`, expires_in: 600, interval: 5,
    });
    expect(start.json.verification_uri_complete).toBe(`${dev.issuer}/device?user_code=${str(start.json.user_code)}`);
    const poll = () => postForm(dev, 'token', { grant_type: DEVICE_GRANT_TYPE, client_id: 'gatewayctl', device_code: str(start.json.device_code) });
    expect((await poll()).json).toEqual({ error: 'authorization_pending', error_description: 'The authorization request is still pending' });
    expect((await poll()).json).toEqual({ error: 'slow_down', error_description: 'Slow down' });
    dev.approveDevice(str(start.json.user_code), 'jo');
    now += 5_000;
    const done = await poll();
    expect(done.status).toBe(200);
    expect(decodeJwt(str(done.json.access_token))).toMatchObject({ sub: userId, azp: 'gatewayctl', preferred_username: 'jo' });
    expect(done.json.id_token).toEqual(expect.any(String));
    now += 5_000;
    expect((await poll()).json).toEqual({ error: 'invalid_grant', error_description: 'Device code not valid' });
    await dev.close();
  });

  it('denyDevice → access_denied; an expired code → expired_token; the confidential client has the flow disabled', async () => {
    let now = Date.now();
    const dev = await startFakeKeycloak({ now: () => now });
    const begin = async () => (await postForm(dev, 'auth/device', { client_id: 'gatewayctl' })).json;
    const poll = (code: unknown) => postForm(dev, 'token', { grant_type: DEVICE_GRANT_TYPE, client_id: 'gatewayctl', device_code: str(code) });
    const denied = await begin();
    dev.denyDevice(str(denied.user_code));
    expect((await poll(denied.device_code)).json).toEqual({ error: 'access_denied', error_description: 'The end user denied the authorization request' });
    const late = await begin();
    now += 601_000;
    expect((await poll(late.device_code)).json).toEqual({ error: 'expired_token', error_description: 'Device code is expired' });
    expect(() => dev.approveDevice(str(late.user_code), 'jo')).toThrow(/no pending device code/);
    const confidential = await postForm(dev, 'auth/device', { client_id: 'gateway', client_secret: dev.clientSecret });
    expect([confidential.status, confidential.json.error]).toEqual([400, 'unauthorized_client']);
    await dev.close();
  });
});

describe('setDown', () => {
  it('destroy mode drops every connection (fetch rejects, the admin client throws a TypeError); 503 mode answers a bare 503; both recover', async () => {
    kc.setDown(true);
    await expect(fetch(`${kc.issuer}${OIDC}/certs`)).rejects.toThrow(TypeError);
    await expect(admin.users.find()).rejects.toThrow(TypeError);
    const attempts = kc.requests.length;
    kc.setDown(true, 503);
    const res = await getWith(`${kc.issuer}${OIDC}/certs`);
    expect([res.status, res.text]).toEqual([503, '']);
    expect(kc.requests.length).toBe(attempts + 1);
    kc.setDown(false);
    expect((await admin.users.find({ username: 'alice', exact: true })).map((u) => u.username)).toEqual(['alice']);
  });
});
