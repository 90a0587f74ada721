// The realm's Admin REST API through the official @keycloak/keycloak-admin-client, signed in
// with the gateway client's service account (client credentials). Every call goes through
// `call`, which re-authenticates before the short-lived token runs out and turns failures into
// GatewayErrors: unreachable or refused → identity_unavailable (exit 6), 409 → conflict, …
import KcAdminClient, { NetworkError } from '@keycloak/keycloak-admin-client';
import type GroupRepresentation from '@keycloak/keycloak-admin-client/lib/defs/groupRepresentation.js';
import type RoleRepresentation from '@keycloak/keycloak-admin-client/lib/defs/roleRepresentation.js';
import type UserRepresentation from '@keycloak/keycloak-admin-client/lib/defs/userRepresentation.js';
import { decodeJwt } from 'jose';
import { conflict, GatewayError, notFound, usageError } from '../errors.js';
import { identityUnavailable, transportReason, unreachable } from './failures.js';
import type { KeycloakSettings } from './settings.js';

export type { GroupRepresentation, RoleRepresentation, UserRepresentation };

const PAGE = 100;

export class KeycloakAdmin {
  readonly client: KcAdminClient;
  private expiresAt = 0;

  constructor(
    readonly settings: KeycloakSettings,
    private readonly opts: { timeoutMs?: number; now?: () => number } = {},
  ) {
    this.client = new KcAdminClient({ baseUrl: settings.url, realmName: settings.realm, timeout: opts.timeoutMs ?? 10_000 });
  }

  /** Runs one admin call; `doing` completes "… while <doing>" in error messages. */
  async call<T>(doing: string, fn: (kc: KcAdminClient) => Promise<T>): Promise<T> {
    await this.ensureAuth();
    try {
      return await fn(this.client);
    } catch (err) {
      throw this.translate(err, doing);
    }
  }

  /** Every page of a listing (the admin API pages at `max`). */
  async all<T>(doing: string, page: (kc: KcAdminClient, first: number, max: number) => Promise<T[]>): Promise<T[]> {
    const out: T[] = [];
    for (let first = 0; ; first += PAGE) {
      const rows = await this.call(doing, (kc) => page(kc, first, PAGE));
      out.push(...rows);
      if (rows.length < PAGE) return out;
    }
  }

  private async ensureAuth(): Promise<void> {
    const now = (this.opts.now ?? Date.now)();
    // client_credentials tokens cannot be refreshed: sign in again shortly before expiry.
    if (this.expiresAt - 10_000 > now) return;
    const s = this.settings;
    try {
      await this.client.auth({ grantType: 'client_credentials', clientId: s.clientId, clientSecret: s.clientSecret });
    } catch (err) {
      throw this.translate(err, `signing in as client '${s.clientId}'`);
    }
    const exp = this.client.accessToken ? decodeJwt(this.client.accessToken).exp : undefined;
    this.expiresAt = exp ? exp * 1000 : now + 30_000;
  }

  private translate(err: unknown, doing: string): Error {
    if (err instanceof GatewayError) return err;
    const s = this.settings;
    if (err instanceof NetworkError) {
      const status = err.response.status;
      const said = err.message;
      if (status === 401) return identityUnavailable(`Keycloak refused client '${s.clientId}' (HTTP 401, ${said}) while ${doing}: check KEYCLOAK_CLIENT_ID and KEYCLOAK_CLIENT_SECRET`);
      if (status === 403) {
        return identityUnavailable(
          `the service account of client '${s.clientId}' may not do this (HTTP 403) while ${doing}: give it the realm-management roles manage-users, view-users, view-realm and query-groups (or realm-admin)`,
        );
      }
      if (status === 404 && /realm/i.test(said)) return identityUnavailable(`realm '${s.realm}' was not found at ${s.url} while ${doing}: check KEYCLOAK_URL and KEYCLOAK_REALM`);
      if (status === 404) return new GatewayError('not_found', `not found in Keycloak while ${doing} (${said})`);
      if (status === 409) return conflict(`Keycloak refused ${doing}: ${said}`);
      if (status === 400) return usageError(`Keycloak refused ${doing}: ${said}`);
      return identityUnavailable(`Keycloak answered HTTP ${status} while ${doing}${said ? ` (${said})` : ''}`, err);
    }
    if (transportReason(err) !== undefined) return unreachable(s.url, doing, err);
    if (err instanceof Error && /token/i.test(err.message)) return identityUnavailable(`Keycloak session of client '${s.clientId}' failed while ${doing} (${err.message})`, err);
    return err instanceof Error ? err : new Error(String(err));
  }

  // The lookups the directory needs, each one admin call (or one per page).

  findUser(doing: string, query: { username?: string; email?: string }): Promise<UserRepresentation | undefined> {
    return this.call(doing, async (kc) => (await kc.users.find({ ...query, exact: true, max: 2 }))[0]);
  }

  async requireRole(name: string): Promise<RoleRepresentation & { id: string; name: string }> {
    const role = await this.call(`looking up role '${name}'`, (kc) => kc.roles.findOneByName({ name }));
    if (!role?.id || !role.name) throw notFound(`realm role`, name);
    return { ...role, id: role.id, name: role.name };
  }

  async findGroup(name: string): Promise<GroupRepresentation | undefined> {
    const found = await this.call(`looking up group '${name}'`, (kc) => kc.groups.find({ search: name, exact: true, briefRepresentation: true }));
    return found.find((g) => g.name === name);
  }
}
