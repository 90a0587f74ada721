import type { User } from '../../../shared/db/schema.js';
import type { Output } from '../../output.js';

export function userView(u: User) {
  return {
    id: u.id,
    username: u.username,
    email: u.email,
    org_id: u.orgId,
    status: u.status,
    roles: u.roles,
    groups: u.groups,
    source: u.source,
    created_at: u.createdAt.toISOString(),
    updated_at: u.updatedAt.toISOString(),
  };
}

export function showUser(out: Output, u: ReturnType<typeof userView>): void {
  out.fields([
    ['id', u.id],
    ['username', u.username],
    ['email', u.email],
    ['org', u.org_id],
    ['status', u.status],
    ['roles', u.roles.join(', ')],
    ['groups', u.groups.join(', ')],
    ['source', u.source],
    ['created', u.created_at],
  ]);
}
