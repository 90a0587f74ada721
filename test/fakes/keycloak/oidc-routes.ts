import { authenticateClient } from './client-auth.js';
import { deviceAuthorization, deviceCodeGrant } from './device.js';
import { clientCredentialsGrant, type GrantHandler, passwordGrant, refreshTokenGrant } from './grants.js';
import {
  formParam, hasDuplicatedParam, parseForm, type Req, type Res, sendJson, sendOAuthError, sendProseError,
  sendUnknownResource, TOKEN_HEADERS,
} from './http-io.js';
import { jwksBody } from './keys.js';
import { introspect, logout, revoke, userinfo } from './oidc-session.js';
import type { OidcContext } from './token-issue.js';

export const DEVICE_GRANT_TYPE = 'urn:ietf:params:oauth:grant-type:device_code';

const GRANTS = new Map<string, GrantHandler>([
  ['password', passwordGrant],
  ['client_credentials', clientCredentialsGrant],
  ['refresh_token', refreshTokenGrant],
  [DEVICE_GRANT_TYPE, deviceCodeGrant],
]);

/** `POST …/token`: checks in Keycloak's order (parameters, grant type, client, grant). */
async function tokenEndpoint(ctx: OidcContext, req: Req, res: Res): Promise<void> {
  const form = parseForm(req);
  const error = (status: number, code: string, text: string) => sendOAuthError(res, status, code, text, TOKEN_HEADERS);
  if (hasDuplicatedParam(form)) return error(400, 'invalid_request', 'duplicated parameter');
  const grantType = formParam(form, 'grant_type');
  if (!grantType) return error(400, 'invalid_request', 'Missing form parameter: grant_type');
  const grant = GRANTS.get(grantType);
  if (!grant) return error(400, 'unsupported_grant_type', 'Unsupported grant_type');
  const auth = authenticateClient(ctx.state, req, form);
  if (!auth.ok) return error(auth.status, auth.error, auth.description);
  const outcome = await grant(ctx, auth.client, form);
  if (!outcome.ok) return error(outcome.status, outcome.error, outcome.description);
  sendJson(res, 200, outcome.body, TOKEN_HEADERS);
}

function discovery(ctx: OidcContext): Record<string, unknown> {
  const oidc = `${ctx.issuer}/protocol/openid-connect`;
  return {
    issuer: ctx.issuer,
    authorization_endpoint: `${oidc}/auth`,
    token_endpoint: `${oidc}/token`,
    introspection_endpoint: `${oidc}/token/introspect`,
    userinfo_endpoint: `${oidc}/userinfo`,
    end_session_endpoint: `${oidc}/logout`,
    jwks_uri: `${oidc}/certs`,
    grant_types_supported: ['client_credentials', 'password', 'refresh_token', DEVICE_GRANT_TYPE],
    response_types_supported: ['code', 'none', 'id_token', 'token', 'id_token token', 'code id_token', 'code token', 'code id_token token'],
    subject_types_supported: ['public', 'pairwise'],
    id_token_signing_alg_values_supported: ['RS256'],
    token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
    claims_supported: ['iss', 'sub', 'aud', 'exp', 'iat', 'auth_time', 'name', 'given_name', 'family_name', 'preferred_username', 'email', 'acr', 'azp', 'nonce'],
    scopes_supported: ['acr', 'address', 'basic', 'email', 'microprofile-jwt', 'offline_access', 'openid', 'organization', 'phone', 'profile', 'roles', 'service_account', 'web-origins'],
    code_challenge_methods_supported: ['plain', 'S256'],
    revocation_endpoint: `${oidc}/revoke`,
    device_authorization_endpoint: `${oidc}/auth/device`,
  };
}

type Handler = (ctx: OidcContext, req: Req, res: Res) => void | Promise<void>;

const OIDC_ROUTES = new Map<string, { methods: string[]; handler: Handler }>([
  ['token', { methods: ['POST'], handler: tokenEndpoint }],
  ['token/introspect', { methods: ['POST'], handler: introspect }],
  ['certs', { methods: ['GET'], handler: (ctx, _req, res) => sendJson(res, 200, jwksBody(ctx.keys), { 'Cache-Control': 'no-cache' }) }],
  ['logout', { methods: ['POST'], handler: logout }],
  ['revoke', { methods: ['POST'], handler: revoke }],
  ['userinfo', { methods: ['GET', 'POST'], handler: userinfo }],
  ['auth/device', { methods: ['POST'], handler: deviceAuthorization }],
]);

async function protocolRoute(ctx: OidcContext, req: Req, res: Res, rest: string[]): Promise<void> {
  if (rest[0] !== 'openid-connect') return sendProseError(res, 404, 'Protocol not found');
  const route = OIDC_ROUTES.get(rest.slice(1).join('/'));
  if (!route) return sendUnknownResource(res);
  if (!route.methods.includes(req.method)) return sendProseError(res, 405, 'HTTP 405 Method Not Allowed');
  await route.handler(ctx, req, res);
}

/** Everything under `/realms/{realm}/…`. */
export async function realmRoute(ctx: OidcContext, req: Req, res: Res): Promise<void> {
  const [, realm, ...rest] = req.segments;
  if (realm !== ctx.state.name) return sendProseError(res, 404, 'Realm does not exist');
  if (rest[0] === 'protocol') return protocolRoute(ctx, req, res, rest.slice(1));
  if (rest.join('/') === '.well-known/openid-configuration' && req.method === 'GET') {
    return sendJson(res, 200, discovery(ctx), { 'Cache-Control': 'no-cache, must-revalidate, no-transform, no-store' });
  }
  sendUnknownResource(res);
}
