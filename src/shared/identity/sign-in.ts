// Signing an operator in and out of the Keycloak realm, and turning the stored session into a
// Principal on every command: refresh when the access token is (about to be) expired, verify
// it against the realm's keys, and say "sign in again" when the session is gone.
import type { JSONWebKeySet } from 'jose';
import { GatewayError } from '../errors.js';
import { signInAgain } from './failures.js';
import { type DeviceStart, OidcClient, type TokenSet } from './oidc-client.js';
import { type Principal, principalFromClaims } from './principal.js';
import type { SessionStore, StoredSession } from './session-store.js';
import { issuerOf, type KeycloakSettings } from './settings.js';
import { verifyAccessToken } from './verify.js';

/** Refresh this long before the access token expires, so a command never starts with a dying token. */
const REFRESH_MARGIN_MS = 15_000;

export interface SignInDeps {
  settings: KeycloakSettings;
  sessions: SessionStore;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
  timeoutMs?: number;
}

export interface SignedOut {
  username: string | null;
  /** What Keycloak said: the session ended now, had ended before, or there was none to end. */
  remote: 'ended' | 'already-ended' | 'none';
}

export class KeycloakSignIn {
  private readonly now: () => number;

  constructor(private readonly deps: SignInDeps) {
    this.now = deps.now ?? Date.now;
  }

  get issuer(): string {
    return issuerOf(this.deps.settings);
  }

  /** The gateway's confidential client by default; another (public) client id signs in without the secret. */
  client(clientId?: string): OidcClient {
    const s = this.deps.settings;
    const id = clientId ?? s.clientId;
    const auth = id === s.clientId ? { clientId: id, clientSecret: s.clientSecret } : { clientId: id };
    return new OidcClient(s, auth, { timeoutMs: this.deps.timeoutMs, now: this.now });
  }

  async loginPassword(username: string, password: string, clientId?: string): Promise<Principal> {
    const client = this.client(clientId);
    return this.establish(client, await client.passwordGrant(username, password));
  }

  /** RFC 8628: show the code (the command prints it), then poll at the realm's pace until approved. */
  async loginDevice(show: (start: DeviceStart) => void, clientId?: string): Promise<Principal> {
    const client = this.client(clientId);
    const start = await client.startDevice();
    show(start);
    const sleep = this.deps.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
    const deadline = this.now() + start.expiresIn * 1000;
    let interval = start.interval * 1000;
    while (this.now() < deadline) {
      await sleep(interval);
      const poll = await client.pollDevice(start.deviceCode);
      if (poll.status === 'done') return this.establish(client, poll.tokens);
      if (poll.status === 'slow_down') interval += 5000;
    }
    throw new GatewayError('unauthenticated', 'sign-in failed: the device code expired before it was approved; run `gatewayctl login --device` again');
  }

  /** The signed-in operator, refreshing the session first when needed. */
  async current(): Promise<Principal> {
    const session = this.deps.sessions.read();
    if (!session) throw new GatewayError('unauthenticated', `not signed in to Keycloak realm '${this.deps.settings.realm}': run \`gatewayctl login\``);
    if (session.issuer !== this.issuer) {
      throw signInAgain(`the stored session is for ${session.issuer}, but KEYCLOAK_URL/KEYCLOAK_REALM now name ${this.issuer}`);
    }
    const fresh = session.expires_at - REFRESH_MARGIN_MS > this.now() ? session : await this.refresh(session);
    return this.principalOf(fresh, true);
  }

  async logout(): Promise<SignedOut> {
    const session = this.deps.sessions.read();
    if (!session) return { username: null, remote: 'none' };
    let remote: SignedOut['remote'] = 'none';
    if (session.refresh_token && session.issuer === this.issuer) {
      remote = await this.client(session.client_id).logout(session.refresh_token);
    }
    this.deps.sessions.remove();
    return { username: session.username, remote };
  }

  /** Drops the local session without asking Keycloak (for when it is gone for good). */
  forget(): boolean {
    return this.deps.sessions.remove();
  }

  private async establish(client: OidcClient, tokens: TokenSet): Promise<Principal> {
    const jwks = await client.jwks();
    const draft = this.toSession(client.client.clientId, '', tokens, jwks);
    const principal = await this.principalOf(draft, false);
    this.deps.sessions.write({ ...draft, username: principal.username });
    return principal;
  }

  private async refresh(session: StoredSession): Promise<StoredSession> {
    if (!session.refresh_token || (session.refresh_expires_at !== null && session.refresh_expires_at <= this.now())) {
      throw signInAgain('your Keycloak session has expired');
    }
    const tokens = await this.client(session.client_id).refresh(session.refresh_token);
    const next = this.toSession(session.client_id, session.username, tokens, session.jwks);
    this.deps.sessions.write(next);
    return next;
  }

  private async principalOf(session: StoredSession, mayRetry: boolean): Promise<Principal> {
    const client = this.client(session.client_id);
    let jwks: JSONWebKeySet = session.jwks ?? (await client.jwks());
    const expect = { issuer: this.issuer, clientId: session.client_id };
    let checked = await verifyAccessToken(session.access_token, jwks, expect);
    if (!checked.ok && checked.reason === 'unknown-key') {
      // Keycloak rotated its keys since we cached them.
      jwks = await client.jwks();
      this.deps.sessions.write({ ...session, jwks });
      checked = await verifyAccessToken(session.access_token, jwks, expect);
    }
    if (!checked.ok && checked.reason === 'expired' && mayRetry) {
      return this.principalOf(await this.refresh({ ...session, jwks }), false);
    }
    if (!checked.ok) throw signInAgain(checked.reason === 'expired' ? 'your access token has expired' : 'the realm no longer knows the key that signed your token');
    return principalFromClaims(checked.claims, session.client_id);
  }

  private toSession(clientId: string, username: string, t: TokenSet, jwks: JSONWebKeySet | undefined): StoredSession {
    return {
      version: 1, issuer: this.issuer, client_id: clientId, username,
      access_token: t.accessToken, refresh_token: t.refreshToken, expires_at: t.expiresAt, refresh_expires_at: t.refreshExpiresAt,
      ...(jwks ? { jwks: { keys: jwks.keys as Record<string, unknown>[] } } : {}),
    };
  }
}
