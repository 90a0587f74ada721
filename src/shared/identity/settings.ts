// Which Keycloak realm gatewayctl talks to, from the four KEYCLOAK_* values readEnv() collects.
// All four set: Keycloak is the identity source. None set: local users. Some set: a
// misconfiguration we name, rather than silently falling back to local users.
import type { GatewayEnv } from '../config.js';
import { GatewayError } from '../errors.js';

export interface KeycloakSettings {
  /** Base URL without a trailing slash, e.g. https://sso.example.com */
  url: string;
  realm: string;
  clientId: string;
  clientSecret: string;
}

const VARS = [
  ['url', 'KEYCLOAK_URL'],
  ['realm', 'KEYCLOAK_REALM'],
  ['clientId', 'KEYCLOAK_CLIENT_ID'],
  ['clientSecret', 'KEYCLOAK_CLIENT_SECRET'],
] as const;

/** Undefined when Keycloak is not configured; throws identity_unavailable when half of it is. */
export function keycloakSettings(env: GatewayEnv['keycloak']): KeycloakSettings | undefined {
  const missing = VARS.filter(([field]) => !env[field]).map(([, name]) => name);
  if (missing.length === VARS.length) return undefined;
  if (missing.length > 0) {
    throw new GatewayError('identity_unavailable', `Keycloak is partly configured: set ${missing.join(', ')} too (or unset all KEYCLOAK_* variables to use local users)`);
  }
  let url: URL;
  try {
    url = new URL(env.url!);
  } catch {
    throw new GatewayError('identity_unavailable', `KEYCLOAK_URL '${env.url}' is not a URL (expected e.g. https://sso.example.com)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new GatewayError('identity_unavailable', `KEYCLOAK_URL '${env.url}' must be an http:// or https:// URL`);
  }
  return { url: url.href.replace(/\/+$/, ''), realm: env.realm!, clientId: env.clientId!, clientSecret: env.clientSecret! };
}

export function issuerOf(s: Pick<KeycloakSettings, 'url' | 'realm'>): string {
  return `${s.url}/realms/${encodeURIComponent(s.realm)}`;
}

export function oidcEndpoint(s: Pick<KeycloakSettings, 'url' | 'realm'>, path: string): string {
  return `${issuerOf(s)}/protocol/openid-connect/${path}`;
}
