import { type Form, formParam, type Req } from './http-io.js';
import type { RealmState } from './realm-state.js';
import type { ClientDef } from './types.js';

export type ClientAuth =
  | { ok: true; client: ClientDef }
  | { ok: false; status: number; error: string; description: string };

const BAD_CLIENT = 'Invalid client or Invalid client credentials';

function formDecode(s: string): string {
  try {
    return decodeURIComponent(s.replaceAll('+', ' '));
  } catch {
    return s;
  }
}

/** `Authorization: Basic base64(formEncode(id) ":" formEncode(secret))` (RFC 6749 §2.3.1). */
function parseBasic(header: string | undefined): { id: string; secret: string } | undefined {
  const m = header ? /^Basic\s+(\S+)\s*$/i.exec(header) : null;
  if (!m?.[1]) return undefined;
  const decoded = Buffer.from(m[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  return { id: formDecode(decoded.slice(0, colon)), secret: formDecode(decoded.slice(colon + 1)) };
}

/**
 * Client authentication as Keycloak's `client-secret` authenticator: the Basic header wins,
 * else `client_id` (+ `client_secret`) from the form. Public clients need only their id.
 * Unknown or missing client → `401 invalid_client`; confidential client with a missing or
 * wrong secret → `401 unauthorized_client`.
 */
export function authenticateClient(state: RealmState, req: Req, form: Form): ClientAuth {
  const basic = parseBasic(typeof req.headers.authorization === 'string' ? req.headers.authorization : undefined);
  const clientId = basic?.id ?? formParam(form, 'client_id');
  const secret = basic ? basic.secret : formParam(form, 'client_secret');
  const client = clientId ? state.clients.get(clientId) : undefined;
  if (!client) return { ok: false, status: 401, error: 'invalid_client', description: BAD_CLIENT };
  if (client.publicClient) return { ok: true, client };
  if (!secret || secret !== client.secret) {
    return { ok: false, status: 401, error: 'unauthorized_client', description: BAD_CLIENT };
  }
  return { ok: true, client };
}
