import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { run } from '../../src/cli/main.js';
import { cli, tempDir } from '../helpers/cli.js';
import { grants, PASSWORDS, type Realm, startRealm } from '../identity/keycloak-env.js';

let realm: Realm;

beforeAll(async () => {
  realm = await startRealm({ deviceCodeIntervalSec: 0 });
});

afterAll(async () => {
  await realm.kc.close();
});

const gw = (argv: string[], opts: { stdin?: string; env?: Record<string, string> } = {}) =>
  cli(argv, { ...opts, env: { ...realm.env, ...opts.env } });

const login = (user: keyof typeof PASSWORDS) => gw(['login', '--username', user, '--json'], { stdin: PASSWORDS[user] });

function session(): Record<string, unknown> {
  return JSON.parse(readFileSync(realm.sessionPath, 'utf8')) as Record<string, unknown>;
}

beforeEach(async () => {
  realm.skew(0);
  realm.kc.setDown(false);
  await gw(['logout', '--forget']);
});

describe('gatewayctl login / whoami / logout against Keycloak', () => {
  it('login --username reads the password from stdin, keeps the tokens in a 0600 file, and whoami shows user, roles and org', async () => {
    const r = await login('olga');
    expect(r.code, r.stderr).toBe(0);
    expect(r.json()).toMatchObject({ source: 'keycloak', username: 'olga', roles: ['org-admin'], org: 'acme', actor: 'keycloak:olga' });
    expect(statSync(realm.sessionPath).mode & 0o777).toBe(0o600);
    expect(statSync(realm.sessionPath.replace(/\/session\.json$/, '')).mode & 0o777).toBe(0o700);
    expect(session()).toMatchObject({ username: 'olga', client_id: 'gateway', issuer: realm.kc.issuer });
    const who = await gw(['whoami', '--json']);
    expect(who.code, who.stderr).toBe(0);
    expect(who.json()).toMatchObject({ username: 'olga', roles: ['org-admin'], org: 'acme', orgs: ['acme'], subject: realm.kc.user('olga')?.id });
    const human = await gw(['whoami']);
    expect(human.stdout).toContain('org-admin');
    expect(human.stdout).toContain('keycloak:olga');
  });

  it('exits 5 on a wrong password, says so, and writes no session', async () => {
    const r = await gw(['login', '--username', 'olga', '--json'], { stdin: 'wrong' });
    expect(r.code).toBe(5);
    expect(r.errorJson().error).toEqual({ code: 'unauthenticated', message: "sign-in failed: wrong username or password for 'olga'" });
    expect(() => statSync(realm.sessionPath)).toThrow();
  });

  it('exits 5 for an account disabled in Keycloak', async () => {
    realm.kc.addUser({ username: 'dora', password: 'dora-pw', enabled: false });
    const r = await gw(['login', '--username', 'dora'], { stdin: 'dora-pw' });
    expect(r.code).toBe(5);
    expect(r.stderr).toContain("the account 'dora' is disabled");
  });

  it('exits 2 without a username when there is no terminal, and 2 when stdin has no password', async () => {
    expect((await gw(['login'])).code).toBe(2);
    const r = await gw(['login', '--username', 'olga']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('no password on stdin');
  });

  it('whoami exits 5 and says to run gatewayctl login when nobody is signed in', async () => {
    const r = await gw(['whoami', '--json']);
    expect(r.code).toBe(5);
    expect(r.errorJson().error.code).toBe('unauthenticated');
    expect(r.errorJson().error.message).toContain('gatewayctl login');
  });

  it('refreshes an access token that has expired, through the token endpoint, and stores the new one (still 0600)', async () => {
    expect((await login('root')).code).toBe(0);
    writeFileSync(realm.sessionPath, JSON.stringify({ ...session(), expires_at: Date.now() - 1000 }), { mode: 0o600 });
    const before = session();
    const refreshes = grants(realm.kc, 'refresh_token');
    const who = await gw(['whoami', '--json']);
    expect(who.code, who.stderr).toBe(0);
    expect(who.json()).toMatchObject({ username: 'root', roles: ['gateway-admin'] });
    expect(grants(realm.kc, 'refresh_token')).toBe(refreshes + 1);
    const after = session();
    expect(after.access_token).not.toBe(before.access_token);
    expect(after.expires_at as number).toBeGreaterThan(Date.now());
    expect(statSync(realm.sessionPath).mode & 0o777).toBe(0o600);
    // A fresh token is used as is: no further refresh.
    expect((await gw(['whoami'])).code).toBe(0);
    expect(grants(realm.kc, 'refresh_token')).toBe(refreshes + 1);
  });

  it('refreshes when the token itself says it has expired, even if the stored expiry looks fresh', async () => {
    expect((await login('root')).code).toBe(0);
    realm.skew(-10 * 60_000);
    const res = await fetch(`${realm.kc.issuer}/protocol/openid-connect/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'password', username: 'root', password: PASSWORDS.root, client_id: 'gateway', client_secret: 'gw-secret' }),
    });
    const stale = ((await res.json()) as { access_token: string }).access_token;
    realm.skew(0);
    writeFileSync(realm.sessionPath, JSON.stringify({ ...session(), access_token: stale, expires_at: Date.now() + 3_600_000 }), { mode: 0o600 });
    const refreshes = grants(realm.kc, 'refresh_token');
    const who = await gw(['whoami', '--json']);
    expect(who.code, who.stderr).toBe(0);
    expect(grants(realm.kc, 'refresh_token')).toBe(refreshes + 1);
    expect(session().access_token).not.toBe(stale);
  });

  it('says "sign in again" (exit 5) when the Keycloak session was ended by an admin', async () => {
    expect((await login('root')).code).toBe(0);
    realm.kc.logoutUser('root');
    writeFileSync(realm.sessionPath, JSON.stringify({ ...session(), expires_at: Date.now() - 1000 }), { mode: 0o600 });
    const r = await gw(['whoami', '--json']);
    expect(r.code).toBe(5);
    expect(r.errorJson().error.message).toMatch(/session has ended .*Session not active.*sign in again with `gatewayctl login`/);
  });

  it('logout ends the session at Keycloak (the refresh token stops working) and deletes the local file', async () => {
    expect((await login('root')).code).toBe(0);
    const refreshToken = session().refresh_token as string;
    const r = await gw(['logout', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json()).toEqual({ signed_out: true, username: 'root', revoked: true });
    expect(() => statSync(realm.sessionPath)).toThrow();
    const res = await fetch(`${realm.kc.issuer}/protocol/openid-connect/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken, client_id: 'gateway', client_secret: 'gw-secret' }),
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: 'invalid_grant', error_description: 'Session not active' });
    expect((await gw(['whoami'])).code).toBe(5);
  });

  it('logout with Keycloak down exits 6 and keeps the session; --forget deletes it', async () => {
    expect((await login('root')).code).toBe(0);
    realm.kc.setDown(true);
    const r = await gw(['logout', '--json']);
    expect(r.code).toBe(6);
    expect(r.errorJson().error.code).toBe('identity_unavailable');
    expect(r.errorJson().error.message).toContain('logout --forget');
    expect(statSync(realm.sessionPath).isFile()).toBe(true);
    const f = await gw(['logout', '--forget', '--json']);
    expect(f.json()).toEqual({ signed_out: true, revoked: false });
    expect(() => statSync(realm.sessionPath)).toThrow();
  });

  it('device grant: prints the code on stderr and signs in once the user approves it in the browser', async () => {
    let stdout = '';
    let stderr = '';
    const code = await run(['login', '--device', '--client-id', realm.kc.publicClientId, '--json'], {
      stdout: { write: (s: string) => (stdout += s) },
      stderr: {
        write: (s: string) => {
          stderr += s;
          const m = /code ([A-Z]{4}-[A-Z]{4})/.exec(s);
          if (m) realm.kc.approveDevice(m[1]!, 'uma');
        },
      },
      stdin: Readable.from([]),
      env: { USER: 'tester', ...realm.env },
      cwd: tempDir(),
      interactive: false,
      stdoutIsTTY: false,
    });
    expect(code, stderr).toBe(0);
    expect(stderr).toContain(`${realm.kc.issuer}/device`);
    expect(JSON.parse(stdout)).toMatchObject({ username: 'uma', roles: ['gateway-user'], org: 'acme' });
    expect(session().client_id).toBe(realm.kc.publicClientId);
    // The public client refreshes without the secret.
    writeFileSync(realm.sessionPath, JSON.stringify({ ...session(), expires_at: 0 }), { mode: 0o600 });
    const who = await gw(['whoami', '--json']);
    expect(who.code, who.stderr).toBe(0);
    expect(who.json()).toMatchObject({ username: 'uma' });
  });

  it('device grant through a client that does not allow it exits 6 naming the client', async () => {
    const r = await gw(['login', '--device', '--json']);
    expect(r.code).toBe(6);
    expect(r.errorJson().error.code).toBe('identity_unavailable');
    expect(r.errorJson().error.message).toContain("client 'gateway' is not allowed the OAuth 2.0 Device Authorization Grant");
  });
});

describe('Keycloak down or misconfigured', () => {
  it('exits 6 (identity_unavailable) naming the URL when Keycloak does not answer, with no stack trace', async () => {
    realm.kc.setDown(true);
    const r = await login('root');
    expect(r.code).toBe(6);
    expect(r.errorJson().error.code).toBe('identity_unavailable');
    expect(r.errorJson().error.message).toContain(`Keycloak at ${realm.kc.url} is unreachable`);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    realm.kc.setDown(true, 503);
    const r503 = await login('root');
    expect(r503.code).toBe(6);
    expect(r503.errorJson().error.message).toContain('HTTP 503');
  });

  it('exits 6 naming KEYCLOAK_CLIENT_SECRET when the client secret is wrong', async () => {
    const r = await gw(['login', '--username', 'root', '--json'], { stdin: PASSWORDS.root, env: { KEYCLOAK_CLIENT_SECRET: 'nope' } });
    expect(r.code).toBe(6);
    expect(r.errorJson().error.message).toContain('KEYCLOAK_CLIENT_SECRET');
  });

  it('exits 6 naming the realm when KEYCLOAK_REALM does not exist', async () => {
    const r = await gw(['login', '--username', 'root', '--json'], { stdin: PASSWORDS.root, env: { KEYCLOAK_REALM: 'nope' } });
    expect(r.code).toBe(6);
    expect(r.errorJson().error.message).toContain("realm 'nope' was not found");
  });

  it('exits 6 listing the missing variables when Keycloak is only partly configured', async () => {
    const r = await cli(['whoami', '--json'], { env: { KEYCLOAK_URL: realm.kc.url, KEYCLOAK_REALM: 'gateway' } });
    expect(r.code).toBe(6);
    expect(r.errorJson().error.message).toContain('set KEYCLOAK_CLIENT_ID, KEYCLOAK_CLIENT_SECRET');
  });

  it('says sign in again when the stored session belongs to another realm', async () => {
    expect((await login('root')).code).toBe(0);
    const other = await startRealm();
    try {
      const r = await gw(['whoami', '--json'], { env: { ...other.env, XDG_CONFIG_HOME: realm.configHome } });
      expect(r.code).toBe(5);
      expect(r.errorJson().error.message).toContain('sign in again');
    } finally {
      await other.kc.close();
    }
  });
});

describe('without Keycloak', () => {
  it('whoami reports the local operator, who holds gateway-admin; login explains Keycloak is not configured', async () => {
    const who = await cli(['whoami', '--json'], { env: { USER: 'ops' } });
    expect(who.code).toBe(0);
    expect(who.json()).toMatchObject({ source: 'local', username: 'ops', roles: ['gateway-admin'], actor: 'os:ops' });
    const r = await cli(['login', '--username', 'x'], { stdin: 'y' });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('Keycloak is not configured');
  });
});
