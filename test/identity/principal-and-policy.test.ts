import { chmodSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { requirementOf } from '../../src/cli/access-policy.js';
import { GatewayError } from '../../src/shared/errors.js';
import { localPrincipal, orgFromGroup, principalFromClaims } from '../../src/shared/identity/principal.js';
import { SessionStore } from '../../src/shared/identity/session-store.js';
import { keycloakSettings } from '../../src/shared/identity/settings.js';
import { tempDir } from '../helpers/cli.js';

describe('principal from a verified access token', () => {
  it('keeps only gateway roles (realm roles and the client roles of our client) and reads the org from org:<name> groups', () => {
    const p = principalFromClaims(
      {
        sub: 'u-1', preferred_username: 'olga', email: 'o@example.com', exp: 2_000_000_000,
        realm_access: { roles: ['default-roles-gateway', 'offline_access', 'org-admin'] },
        resource_access: { gateway: { roles: ['gateway-user'] }, account: { roles: ['gateway-admin'] } },
        groups: ['/org:acme', '/research'],
      },
      'gateway',
    );
    expect(p).toMatchObject({ source: 'keycloak', username: 'olga', subject: 'u-1', roles: ['org-admin', 'gateway-user'], orgs: ['acme'], actor: 'keycloak:olga' });
    expect(p.expiresAt?.toISOString()).toBe('2033-05-18T03:33:20.000Z');
  });

  it('accepts bare group names, nested paths and a gateway_org claim', () => {
    expect(orgFromGroup('org:acme')).toBe('acme');
    expect(orgFromGroup('/tenants/org:beta')).toBe('beta');
    expect(orgFromGroup('/org:')).toBeUndefined();
    expect(orgFromGroup('/organisation')).toBeUndefined();
    expect(principalFromClaims({ sub: 'x', preferred_username: 'x', gateway_org: ['gamma'] }, 'gateway').orgs).toEqual(['gamma']);
  });

  it('the local operator (no Keycloak) is a gateway-admin audited as os:<user>', () => {
    expect(localPrincipal('ops')).toMatchObject({ source: 'local', roles: ['gateway-admin'], actor: 'os:ops' });
  });
});

describe('access policy', () => {
  const program = new Command('gatewayctl');
  const keys = program.command('keys');
  const list = keys.command('list').option('--org <org>');
  const brandNew = program.command('frobnicate');
  const usage = program.command('usage').command('export').option('--since <d>');

  it('a command missing from the table requires gateway-admin', () => {
    expect(requirementOf(brandNew, [], {})).toEqual({ level: 'admin' });
  });

  it('org-scoped commands name their targets, and a flag the command lacks is never "filled in"', () => {
    expect(requirementOf(list, [], {})).toEqual({ level: 'org', targets: [{ kind: 'org', ref: undefined, flag: 'org' }, { kind: 'user', ref: undefined }] });
    // usage export without --org: the org target is dropped, so an org-admin gets a refusal, not every org's rows.
    const req = requirementOf(usage, [], {});
    expect(req.level === 'self' && req.targets.some((t) => t.kind === 'org')).toBe(false);
  });
});

describe('session file and settings', () => {
  it('is rewritten with mode 0600 even over a looser existing file', () => {
    const dir = join(tempDir(), 'ai-gateway');
    mkdirSync(dir);
    const path = join(dir, 'session.json');
    writeFileSync(path, '{}');
    chmodSync(path, 0o644);
    const store = new SessionStore(path);
    store.write({ version: 1, issuer: 'i', client_id: 'c', username: 'u', access_token: 'a', refresh_token: null, expires_at: 1, refresh_expires_at: null });
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(store.read()?.username).toBe('u');
  });

  it('a damaged session file means "sign in again" (exit 5), not a crash', () => {
    const path = join(tempDir(), 'session.json');
    writeFileSync(path, 'not json');
    const err = (() => {
      try {
        new SessionStore(path).read();
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(GatewayError);
    expect((err as GatewayError).exitCode).toBe(5);
    expect((err as GatewayError).message).toContain('sign in again');
  });

  it('Keycloak settings are all-or-nothing, and a bad URL is named', () => {
    expect(keycloakSettings({})).toBeUndefined();
    expect(() => keycloakSettings({ url: 'http://kc', realm: 'r' })).toThrow(/set KEYCLOAK_CLIENT_ID, KEYCLOAK_CLIENT_SECRET/);
    expect(() => keycloakSettings({ url: 'kc.local', realm: 'r', clientId: 'c', clientSecret: 's' })).toThrow(/KEYCLOAK_URL 'kc.local' is not a URL/);
    expect(keycloakSettings({ url: 'https://sso.example.com/', realm: 'r', clientId: 'c', clientSecret: 's' })?.url).toBe('https://sso.example.com');
  });
});
