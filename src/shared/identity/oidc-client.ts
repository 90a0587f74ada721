// The realm's OpenID Connect endpoints as gatewayctl uses them: password, refresh and device
// grants, refresh-token logout, and the JWKS. Plain fetch (undici) with a timeout; every
// failure becomes a GatewayError that says which call failed and what to check.
import type { JSONWebKeySet } from 'jose';
import { GatewayError } from '../errors.js';
import { identityUnavailable, signInAgain, unreachable } from './failures.js';
import { type KeycloakSettings, oidcEndpoint } from './settings.js';

export const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

/** The OAuth client gatewayctl signs in through: confidential (with a secret) or public. */
export interface OidcClientAuth {
  clientId: string;
  clientSecret?: string;
}

export interface TokenSet {
  accessToken: string;
  refreshToken: string | null;
  /** Epoch ms. */
  expiresAt: number;
  /** Epoch ms; null when the refresh token does not expire (offline) or is absent. */
  refreshExpiresAt: number | null;
}

export interface DeviceStart {
  deviceCode: string;
  userCode: string;
  verificationUri: string;
  verificationUriComplete: string | null;
  expiresIn: number;
  interval: number;
}

export type DevicePoll = { status: 'done'; tokens: TokenSet } | { status: 'pending' } | { status: 'slow_down' };

interface Answer {
  status: number;
  body: Record<string, unknown>;
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

export class OidcClient {
  constructor(
    private readonly s: Pick<KeycloakSettings, 'url' | 'realm'>,
    readonly client: OidcClientAuth,
    private readonly opts: { timeoutMs?: number; now?: () => number } = {},
  ) {}

  async passwordGrant(username: string, password: string): Promise<TokenSet> {
    const a = await this.post('token', { grant_type: 'password', username, password, scope: 'openid' }, 'signing in');
    if (a.status === 200) return this.tokens(a, 'signing in');
    const error = str(a.body.error);
    const text = str(a.body.error_description) ?? '';
    if (error === 'invalid_grant' && /credentials/i.test(text)) {
      throw new GatewayError('unauthenticated', `sign-in failed: wrong username or password for '${username}'`);
    }
    if (error === 'invalid_grant' && /disabled/i.test(text)) throw new GatewayError('unauthenticated', `sign-in failed: the account '${username}' is disabled in Keycloak`);
    if (error === 'invalid_grant') throw new GatewayError('unauthenticated', `sign-in failed: ${text || 'Keycloak refused the credentials'}`);
    throw this.failure(a, 'signing in', 'direct access grants (password sign-in)');
  }

  async refresh(refreshToken: string): Promise<TokenSet> {
    const a = await this.post('token', { grant_type: 'refresh_token', refresh_token: refreshToken }, 'refreshing the session');
    if (a.status === 200) return this.tokens(a, 'refreshing the session');
    if (str(a.body.error) === 'invalid_grant') {
      throw signInAgain(`your Keycloak session has ended (${str(a.body.error_description) ?? 'refresh refused'})`);
    }
    throw this.failure(a, 'refreshing the session');
  }

  async startDevice(): Promise<DeviceStart> {
    const a = await this.post('auth/device', { scope: 'openid' }, 'starting the device sign-in');
    if (a.status !== 200) throw this.failure(a, 'starting the device sign-in', 'the OAuth 2.0 Device Authorization Grant');
    const deviceCode = str(a.body.device_code);
    const userCode = str(a.body.user_code);
    const verificationUri = str(a.body.verification_uri);
    if (!deviceCode || !userCode || !verificationUri) throw identityUnavailable('Keycloak answered the device sign-in without a device code');
    return {
      deviceCode, userCode, verificationUri,
      verificationUriComplete: str(a.body.verification_uri_complete) ?? null,
      expiresIn: num(a.body.expires_in) ?? 600,
      interval: num(a.body.interval) ?? 5,
    };
  }

  async pollDevice(deviceCode: string): Promise<DevicePoll> {
    const a = await this.post('token', { grant_type: DEVICE_GRANT, device_code: deviceCode }, 'waiting for the device sign-in');
    if (a.status === 200) return { status: 'done', tokens: this.tokens(a, 'waiting for the device sign-in') };
    const error = str(a.body.error);
    if (error === 'authorization_pending') return { status: 'pending' };
    if (error === 'slow_down') return { status: 'slow_down' };
    if (error === 'access_denied') throw new GatewayError('unauthenticated', 'sign-in failed: the request was denied in the browser');
    if (error === 'expired_token') throw new GatewayError('unauthenticated', 'sign-in failed: the device code expired before it was approved; run `gatewayctl login --device` again');
    if (error === 'invalid_grant') throw new GatewayError('unauthenticated', `sign-in failed: ${str(a.body.error_description) ?? 'device code refused'}`);
    throw this.failure(a, 'waiting for the device sign-in');
  }

  /** Ends the Keycloak session the refresh token belongs to. An already-ended session is fine. */
  async logout(refreshToken: string): Promise<'ended' | 'already-ended'> {
    const a = await this.post('logout', { refresh_token: refreshToken }, 'signing out');
    if (a.status === 204 || a.status === 200) return 'ended';
    if (str(a.body.error) === 'invalid_grant') return 'already-ended';
    throw this.failure(a, 'signing out');
  }

  async jwks(): Promise<JSONWebKeySet> {
    const url = oidcEndpoint(this.s, 'certs');
    const a = await this.send(url, { method: 'GET' }, 'fetching the realm signing keys');
    if (a.status !== 200 || !Array.isArray(a.body.keys)) throw this.failure(a, 'fetching the realm signing keys');
    return { keys: a.body.keys as JSONWebKeySet['keys'] };
  }

  private post(path: string, form: Record<string, string>, doing: string): Promise<Answer> {
    const body = new URLSearchParams({ ...form, client_id: this.client.clientId });
    if (this.client.clientSecret) body.set('client_secret', this.client.clientSecret);
    const init: RequestInit = { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body };
    return this.send(oidcEndpoint(this.s, path), init, doing);
  }

  private async send(url: string, init: RequestInit, doing: string): Promise<Answer> {
    let res: Response;
    let text: string;
    try {
      res = await fetch(url, { ...init, signal: AbortSignal.timeout(this.opts.timeoutMs ?? 10_000) });
      text = await res.text();
    } catch (err) {
      throw unreachable(this.s.url, doing, err);
    }
    let body: Record<string, unknown> = {};
    try {
      const parsed: unknown = text ? JSON.parse(text) : {};
      if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) body = parsed as Record<string, unknown>;
    } catch {
      // Not JSON (a proxy's error page, an empty 503): the status alone explains it.
    }
    return { status: res.status, body };
  }

  private tokens(a: Answer, doing: string): TokenSet {
    const accessToken = str(a.body.access_token);
    if (!accessToken) throw identityUnavailable(`Keycloak answered without an access token while ${doing}`);
    const now = (this.opts.now ?? Date.now)();
    const refreshIn = num(a.body.refresh_expires_in);
    return {
      accessToken,
      refreshToken: str(a.body.refresh_token) ?? null,
      expiresAt: now + (num(a.body.expires_in) ?? 60) * 1000,
      refreshExpiresAt: refreshIn ? now + refreshIn * 1000 : null,
    };
  }

  /** Anything not handled per grant: realm missing, our client refused or not allowed, Keycloak failing. */
  private failure(a: Answer, doing: string, feature?: string): GatewayError {
    const error = str(a.body.error);
    const text = str(a.body.error_description);
    const client = this.client.clientId;
    if (a.status === 404) {
      return identityUnavailable(`realm '${this.s.realm}' was not found at ${this.s.url} while ${doing}: check KEYCLOAK_URL and KEYCLOAK_REALM`);
    }
    if (a.status === 401 && (error === 'invalid_client' || error === 'unauthorized_client')) {
      return identityUnavailable(`Keycloak refused client '${client}' while ${doing}: check KEYCLOAK_CLIENT_ID and KEYCLOAK_CLIENT_SECRET`);
    }
    if (error === 'unauthorized_client' && feature) {
      return identityUnavailable(`client '${client}' is not allowed ${feature} in realm '${this.s.realm}': enable it on the client in Keycloak (${text ?? error})`);
    }
    const detail = error ? `${error}${text ? `: ${text}` : ''}` : 'no error body';
    return identityUnavailable(`Keycloak answered HTTP ${a.status} while ${doing} (${detail})`);
  }
}
