// Turning what goes wrong between gatewayctl and Keycloak into one sentence an operator can act
// on: unreachable, timed out, refused our client, realm missing. Never a stack trace.
import { GatewayError } from '../errors.js';

/** Why a fetch never produced a response: "connection refused", "timed out", … */
export function transportReason(err: unknown): string | undefined {
  if (!(err instanceof Error)) return undefined;
  if (err.name === 'TimeoutError' || err.name === 'AbortError') return 'timed out';
  if (err.name !== 'TypeError') return undefined;
  const cause = (err as { cause?: unknown }).cause;
  const code = typeof cause === 'object' && cause !== null ? (cause as { code?: unknown }).code : undefined;
  const known: Record<string, string> = {
    ECONNREFUSED: 'connection refused',
    ECONNRESET: 'connection reset',
    ENOTFOUND: 'host not found',
    EAI_AGAIN: 'host lookup failed',
    ETIMEDOUT: 'timed out',
    UND_ERR_SOCKET: 'connection closed without an answer',
    UND_ERR_CONNECT_TIMEOUT: 'connect timed out',
    CERT_HAS_EXPIRED: 'TLS certificate expired',
    DEPTH_ZERO_SELF_SIGNED_CERT: 'self-signed TLS certificate',
  };
  if (typeof code === 'string') return known[code] ?? code.toLowerCase();
  return err.message === 'fetch failed' ? 'no answer' : undefined;
}

export function unreachable(url: string, doing: string, err: unknown): GatewayError {
  const reason = transportReason(err) ?? (err instanceof Error ? err.message : String(err));
  return new GatewayError('identity_unavailable', `Keycloak at ${url} is unreachable (${reason}) while ${doing}`, { cause: err });
}

export function identityUnavailable(message: string, cause?: unknown): GatewayError {
  return new GatewayError('identity_unavailable', message, cause === undefined ? {} : { cause });
}

/** A sign-in that no longer holds: exit 5 with the one remedy. */
export function signInAgain(why: string): GatewayError {
  return new GatewayError('unauthenticated', `${why}: sign in again with \`gatewayctl login\``);
}
