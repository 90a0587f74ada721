import { queryBool } from './http-io.js';
import { listedUsers, type RealmState } from './realm-state.js';
import type { StoredUser } from './types.js';

/**
 * `GET /users` and `/users/count` filtering: `search` (username, email, first and last name;
 * infix by default, `*` wildcard, `"quoted"` exact), or per-field filters (infix, exact with
 * `exact=true`), plus `enabled`, `emailVerified` and `q=key:value` attribute search.
 */

const SEARCH_FIELDS = ['username', 'email', 'firstName', 'lastName'] as const;
type SearchField = (typeof SEARCH_FIELDS)[number];

function fieldValue(user: StoredUser, field: SearchField): string | undefined {
  return user[field];
}

function escapeRegex(s: string): string {
  return s.replace(/[.+?^${}()|[\]\\]/g, '\\$&');
}

function infixPattern(value: string): RegExp {
  const body = escapeRegex(value.trim()).replaceAll('*', '.*');
  return new RegExp(`^.*${body}.*$`, 'i');
}

function matchesSearch(user: StoredUser, search: string): boolean {
  const trimmed = search.trim();
  const quoted = /^"(.*)"$/.exec(trimmed);
  const test = quoted
    ? (v: string) => v.toLowerCase() === (quoted[1] ?? '').toLowerCase()
    : (v: string) => infixPattern(trimmed).test(v);
  return SEARCH_FIELDS.some((f) => {
    const v = fieldValue(user, f);
    return v !== undefined && test(v);
  });
}

function matchesField(user: StoredUser, field: SearchField, wanted: string, exact: boolean): boolean {
  const v = fieldValue(user, field);
  if (v === undefined) return false;
  return exact ? v.toLowerCase() === wanted.toLowerCase() : infixPattern(wanted).test(v);
}

/** `q=key:value key2:value2` → attribute pairs. */
function parseAttributeQuery(q: string): Array<[string, string]> {
  return q.split(' ').filter((p) => p.includes(':')).map((p) => {
    const i = p.indexOf(':');
    return [p.slice(0, i), p.slice(i + 1)];
  });
}

function matchesAttributes(user: StoredUser, pairs: Array<[string, string]>): boolean {
  return pairs.every(([k, v]) => (user.attributes[k] ?? []).includes(v));
}

function matchesFlags(user: StoredUser, query: URLSearchParams): boolean {
  const enabled = queryBool(query, 'enabled');
  const verified = queryBool(query, 'emailVerified');
  return (enabled === undefined || user.enabled === enabled) && (verified === undefined || user.emailVerified === verified);
}

function matchesFields(user: StoredUser, query: URLSearchParams): boolean {
  const exact = queryBool(query, 'exact') === true;
  return SEARCH_FIELDS.every((f) => {
    const wanted = query.get(f);
    return wanted === null || matchesField(user, f, wanted, exact);
  });
}

export function filterUsers(state: RealmState, query: URLSearchParams): StoredUser[] {
  // No identity-provider links exist in the fake, so an IdP filter matches nobody.
  if (query.has('idpAlias') || query.has('idpUserId')) return [];
  const search = query.get('search');
  const pairs = parseAttributeQuery(query.get('q') ?? '');
  return listedUsers(state).filter((u) => {
    const text = search !== null ? matchesSearch(u, search) : matchesFields(u, query);
    return text && matchesFlags(u, query) && matchesAttributes(u, pairs);
  });
}
