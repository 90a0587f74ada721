// The JSON shapes scripts rely on (CLI.md): snake_case, one function per record type.
import type { ApiKey, Limit, Org } from '../shared/db/schema.js';
import { effectiveStatus } from '../shared/services/keys.js';
import { limitView } from '../shared/services/limits.js';

const iso = (d: Date | null) => (d ? d.toISOString() : null);

export function orgView(o: Org) {
  return {
    id: o.id,
    name: o.name,
    provider: o.provider,
    base_url: o.baseUrl,
    failure_mode: o.failureMode,
    unknown_model_policy: o.unknownModelPolicy,
    default_max_tokens: o.defaultMaxTokens,
    upstream_key_hint: o.upstreamKeyHint,
    http_referer: o.httpReferer,
    app_title: o.appTitle,
    created_at: iso(o.createdAt),
    updated_at: iso(o.updatedAt),
  };
}

export function keyView(k: ApiKey, limits: Limit[], now: Date) {
  return {
    id: k.id,
    org_id: k.orgId,
    user_id: k.userId,
    parent_id: k.parentId,
    type: k.type,
    name: k.name,
    env: k.env,
    status: effectiveStatus(k, now),
    expires_at: iso(k.expiresAt),
    models: k.models,
    ip_allow: k.ipAllow,
    referrers: k.referrerAllow,
    limits: limits.map(limitView),
    metadata: k.metadata,
    rotation_grace_until: iso(k.prevKeyExpiresAt),
    last_used_at: iso(k.lastUsedAt),
    created_by: k.createdBy,
    created_at: iso(k.createdAt),
    revoked_at: iso(k.revokedAt),
  };
}

export function createdKeyView(plaintext: string, k: ApiKey, limits: Limit[], now: Date) {
  return { key: plaintext, ...keyView(k, limits, now) };
}

export function describeLimits(limits: Limit[]): string {
  if (limits.length === 0) return '';
  return limits
    .map((l) => {
      const v = limitView(l);
      const max = v.metric === 'cost' ? `$${v.max}` : String(v.max);
      return `${v.metric}/${v.window}${v.model ? `[${v.model}]` : ''}≤${max}`;
    })
    .join(' ');
}
