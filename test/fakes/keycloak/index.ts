/**
 * A faithful in-process fake of a Keycloak 26.x realm, for tests: the OIDC endpoints
 * (token with password / client_credentials / refresh_token / device_code grants, certs,
 * discovery, logout, revoke, userinfo, introspect) and the admin REST subset the gateway
 * uses, driven unchanged by `@keycloak/keycloak-admin-client`.
 * Wire details follow /work/shared/reference/protocols.md Part B.
 *
 * Seeded realm: roles `default-roles-<realm>` (every user gets it), `offline_access`,
 * `uma_authorization`, `gateway-admin`, `org-admin`, `gateway-user`; clients `<clientId>`
 * (confidential, service account with `realm-management/realm-admin`, so its
 * client_credentials tokens may call the admin API), `<publicClientId>` (public, password
 * and device grants) and `admin-cli` (public, lightweight tokens).
 *
 * Known simplifications: one realm; no sub-groups, group role mappings, custom composite
 * roles or client roles beyond `realm-management`/`account`; no authorization-code flow;
 * no password policy or brute-force detection; service-account users are hidden from
 * `GET /users`; every fake in a process shares one RSA key pair (issuers still differ);
 * a few error wordings are marked UNVERIFIED where they are defined.
 */
import { approveDevice, denyDevice } from './device.js';
import { lookupUser, seedGroup, seedRole, seedUser, snapshotUser } from './helpers.js';
import { createRealmKeys } from './keys.js';
import { createRealmState, endUserSessions, type RealmState } from './realm-state.js';
import { closeServer, listen, type ServerControl } from './server.js';
import type { OidcContext } from './token-issue.js';
import type { FakeKeycloak, FakeKeycloakOptions } from './types.js';

export { DEVICE_GRANT_TYPE } from './oidc-routes.js';
export type {
  DownMode, FakeKeycloak, FakeKeycloakOptions, NewUser, RecordedRequest, UserSnapshot,
} from './types.js';

function requireUser(state: RealmState, idOrUsername: string): string {
  const user = lookupUser(state, idOrUsername);
  if (!user) throw new Error(`fake keycloak: no user ${idOrUsername}`);
  return user.id;
}

function publicClientId(state: RealmState): string {
  return [...state.clients.values()].find((c) => c.publicClient && c.deviceGrant)?.clientId ?? '';
}

function confidentialClient(state: RealmState): { clientId: string; clientSecret: string } {
  const client = [...state.clients.values()].find((c) => !c.publicClient);
  return { clientId: client?.clientId ?? '', clientSecret: client?.secret ?? '' };
}

export async function startFakeKeycloak(opts: FakeKeycloakOptions = {}): Promise<FakeKeycloak> {
  const state = createRealmState(opts);
  const keys = await createRealmKeys();
  const control: ServerControl = { requests: [], down: false, downMode: 'destroy' };
  let ctx: OidcContext | undefined;
  const { server, url } = await listen(() => ctx!, control);
  ctx = { state, keys, url, issuer: `${url}/realms/${state.name}` };
  return {
    url, realm: state.name, ...confidentialClient(state), publicClientId: publicClientId(state), issuer: ctx.issuer,
    addUser: (u) => seedUser(state, u),
    addRole: (name, description) => seedRole(state, name, description),
    addGroup: (name, attributes) => seedGroup(state, name, attributes),
    user: (idOrUsername) => {
      const user = lookupUser(state, idOrUsername);
      return user ? snapshotUser(state, user) : undefined;
    },
    logoutUser: (idOrUsername) => endUserSessions(state, requireUser(state, idOrUsername)),
    approveDevice: (userCode, username) => approveDevice(state, userCode, username),
    denyDevice: (userCode) => denyDevice(state, userCode),
    requests: control.requests,
    setDown: (down, mode = 'destroy') => {
      control.down = down;
      control.downMode = mode;
    },
    close: () => closeServer(server),
  };
}
