// The one place that picks where users live: the Keycloak realm when it is configured, else
// the store's local users. The users commands only ever see a UserDirectory.
import type { ServiceContext } from '../services/context.js';
import { localDirectory, type UserDirectory } from '../services/users.js';
import { KeycloakAdmin } from './keycloak-admin.js';
import { KeycloakDirectory } from './keycloak-directory.js';
import type { KeycloakSettings } from './settings.js';

export function userDirectory(ctx: ServiceContext, keycloak: KeycloakSettings | undefined): UserDirectory {
  return keycloak ? new KeycloakDirectory(ctx, new KeycloakAdmin(keycloak)) : localDirectory(ctx);
}
