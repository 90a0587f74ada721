// JSON shape of a signed-in identity (login, whoami): snake_case, stable for scripts.
import type { Principal } from '../../../shared/identity/principal.js';
import type { Output } from '../../output.js';

export interface IdentityView {
  source: 'local' | 'keycloak';
  username: string;
  subject: string | null;
  email: string | null;
  roles: string[];
  /** The org an org-admin administers (the first when several). */
  org: string | null;
  orgs: string[];
  actor: string;
  expires_at: string | null;
}

export function identityView(p: Principal): IdentityView {
  return {
    source: p.source, username: p.username, subject: p.subject, email: p.email, roles: p.roles,
    org: p.orgs[0] ?? null, orgs: p.orgs, actor: p.actor, expires_at: p.expiresAt?.toISOString() ?? null,
  };
}

export function showIdentity(out: Output, v: IdentityView): void {
  out.fields([
    ['user', v.username],
    ['source', v.source === 'local' ? 'local operator (no Keycloak configured)' : 'Keycloak'],
    ['roles', v.roles.join(', ') || 'none'],
    ['org', v.orgs.join(', ')],
    ['email', v.email],
    ['id', v.subject],
    ['audit as', v.actor],
    ['token until', v.expires_at],
  ]);
}
