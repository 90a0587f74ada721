// A fake Keycloak realm seeded for gatewayctl's identity tests, and the environment that
// points gatewayctl at it (with its own config dir, so each test file has its own session).
import { join } from 'node:path';
import { type FakeKeycloak, type FakeKeycloakOptions, startFakeKeycloak } from '../fakes/keycloak/index.js';
import { tempDir } from '../helpers/cli.js';

export const PASSWORDS = { root: 'root-pw', olga: 'olga-pw', bert: 'bert-pw', uma: 'uma-pw', nora: 'nora-pw' } as const;

export interface Realm {
  kc: FakeKeycloak;
  env: Record<string, string>;
  configHome: string;
  sessionPath: string;
  /** Moves the fake realm's clock (ms), e.g. to issue tokens that are already expired. */
  skew(ms: number): void;
}

/**
 * root: gateway-admin · olga: org-admin in group org:acme · bert: org-admin of org:beta
 * · uma: gateway-user in org:acme · nora: no gateway role.
 */
export async function startRealm(opts: FakeKeycloakOptions = {}): Promise<Realm> {
  let offset = 0;
  const kc = await startFakeKeycloak({ realm: 'gateway', clientSecret: 'gw-secret', now: () => Date.now() + offset, ...opts });
  kc.addGroup('org:acme');
  kc.addGroup('org:beta');
  kc.addUser({ username: 'root', password: PASSWORDS.root, realmRoles: ['gateway-admin'], email: 'root@example.com' });
  kc.addUser({ username: 'olga', password: PASSWORDS.olga, realmRoles: ['org-admin'], groups: ['org:acme'] });
  kc.addUser({ username: 'bert', password: PASSWORDS.bert, realmRoles: ['org-admin'], groups: ['org:beta'] });
  kc.addUser({ username: 'uma', password: PASSWORDS.uma, realmRoles: ['gateway-user'], groups: ['org:acme'] });
  kc.addUser({ username: 'nora', password: PASSWORDS.nora });
  const configHome = tempDir('gw-kc-config-');
  return {
    kc,
    configHome,
    sessionPath: join(configHome, 'ai-gateway', 'session.json'),
    env: {
      KEYCLOAK_URL: kc.url,
      KEYCLOAK_REALM: kc.realm,
      KEYCLOAK_CLIENT_ID: kc.clientId,
      KEYCLOAK_CLIENT_SECRET: kc.clientSecret,
      XDG_CONFIG_HOME: configHome,
    },
    skew: (ms) => {
      offset = ms;
    },
  };
}

export function grants(kc: FakeKeycloak, grant: string): number {
  return kc.requests.filter((r) => r.path.endsWith('/protocol/openid-connect/token') && r.body.includes(`grant_type=${encodeURIComponent(grant)}`)).length;
}
