// Who is calling, from where: the key (Authorization: Bearer or x-api-key), the client address
// (X-Forwarded-For believed only from configured trusted proxies) and the referrer, checked
// against the snapshot. Denials are values; the route turns them into responses.
import type { IncomingMessage } from 'node:http';
import { type BlockList, isIP } from 'node:net';
import { buildBlockList, normalizeIp } from '../shared/ip-rules.js';
import { type AuthOk, authenticate, ipAllowed, referrerAllowed } from '../shared/snapshot/auth.js';
import type { Snapshot } from '../shared/snapshot/types.js';
import { type PublicError, publicError } from './errors.js';

export type AuthStepResult = { ok: true; auth: AuthOk; clientIp: string } | { ok: false; error: PublicError };

export interface AuthStep {
  (req: IncomingMessage, snapshot: Snapshot, now: number): AuthStepResult;
  clientIp(req: IncomingMessage): string;
}

const BEARER_RE = /^Bearer\s+(\S+)\s*$/i;

/**
 * The token of `Bearer <token>`. The usual header (that exact prefix, then printable ASCII
 * without a space) is taken by a character loop; anything else goes to BEARER_RE, which the
 * loop agrees with wherever it answers (the regex's match array and substring cost ~0.5 µs a
 * request).
 */
export function bearerToken(h: string): string | null {
  if (h.length > 7 && h.startsWith('Bearer ')) {
    let plain = true;
    for (let i = 7; i < h.length; i++) {
      const c = h.charCodeAt(i);
      if (c <= 0x20 || c >= 0x7f) {
        plain = false;
        break;
      }
    }
    if (plain) return h.slice(7);
  }
  return BEARER_RE.exec(h)?.[1] ?? null;
}

/**
 * The presented key, or null: a Bearer token, else x-api-key. An Authorization header that is
 * not a Bearer token (Basic credentials a reverse proxy added) does not hide an x-api-key.
 */
export function presentedKey(req: IncomingMessage): string | null {
  const h = req.headers.authorization;
  const bearer = h ? bearerToken(h) : null;
  if (bearer !== null) return bearer;
  const x = req.headers['x-api-key'];
  return typeof x === 'string' && x.trim() ? x.trim() : null;
}

function trusted(list: BlockList | null, ip: string): boolean {
  if (!list) return false;
  const v = isIP(ip);
  return v !== 0 && list.check(ip, v === 4 ? 'ipv4' : 'ipv6');
}

/**
 * The client address: the socket peer, unless that peer is a trusted proxy, in which case
 * X-Forwarded-For is walked from the right and the first hop that is not trusted is the client.
 */
/** A hop's address without the port some load balancers add: `203.0.113.9:1234`, `[2001:db8::1]:443`. */
function hopAddress(hop: string): string {
  if (hop.startsWith('[')) {
    const end = hop.indexOf(']');
    return end > 0 ? hop.slice(1, end) : hop;
  }
  const colon = hop.indexOf(':');
  // One colon: IPv4 with a port (an IPv6 address has several).
  return colon > 0 && colon === hop.lastIndexOf(':') ? hop.slice(0, colon) : hop;
}

export function clientIpResolver(trustedProxies: readonly string[]): (req: IncomingMessage) => string {
  const list = trustedProxies.length ? buildBlockList(trustedProxies) : null;
  return (req) => {
    const peer = normalizeIp(req.socket.remoteAddress ?? '');
    if (!trusted(list, peer)) return peer;
    const xff = req.headers['x-forwarded-for'];
    const hops = (Array.isArray(xff) ? xff.join(',') : (xff ?? '')).split(',').map((s) => normalizeIp(hopAddress(s.trim()))).filter(Boolean);
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = hops[i]!;
      // A hop that is no address (garbled or forged): the client is unknown, and no IP
      // allow-list admits an unknown client. Falling back to the peer (the trusted proxy) let a
      // key whose allow-list holds the proxy's network admit every client.
      if (isIP(hop) === 0) return '';
      if (!trusted(list, hop)) return hop;
    }
    return hops[0] ?? peer;
  };
}

export function createAuthStep(trustedProxies: readonly string[]): AuthStep {
  const clientIp = clientIpResolver(trustedProxies);
  const step = (req: IncomingMessage, snapshot: Snapshot, now: number): AuthStepResult => {
    const key = presentedKey(req);
    if (!key) {
      return { ok: false, error: publicError('invalid_api_key', 'No API key provided: send it as "Authorization: Bearer <key>".') };
    }
    const auth = authenticate(snapshot, key, now);
    if (!auth.ok) return { ok: false, error: publicError(auth.code, auth.message) };
    const ip = clientIp(req);
    if (!ipAllowed(auth, ip)) return { ok: false, error: publicError('ip_not_allowed', `Key ${auth.key.id} may not be used from ${ip}.`) };
    // An empty Referer (a policy that strips it) is no Referer: the Origin is judged instead.
    const referrer = req.headers.referer || req.headers.origin;
    if (!referrerAllowed(auth, referrer)) {
      return { ok: false, error: publicError('referrer_not_allowed', `Key ${auth.key.id} may not be used from this referrer.`) };
    }
    return { ok: true, auth, clientIp: ip };
  };
  return Object.assign(step, { clientIp });
}
