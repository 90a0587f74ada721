// SQLite half of the store schema. schema-pg.ts mirrors it table for table, column for column;
// test/shared/schema-parity.test.ts and the type assertions in schema.ts keep the two in step.
import { index, integer, primaryKey, sqliteTable, text, uniqueIndex } from 'drizzle-orm/sqlite-core';

const ts = (name: string) => integer(name, { mode: 'timestamp_ms' });
const json = <T>(name: string) => text(name, { mode: 'json' }).$type<T>();

export const configVersion = sqliteTable('config_version', {
  id: integer('id').primaryKey().default(1),
  version: integer('version').notNull(),
  updatedAt: ts('updated_at').notNull(),
});

export const orgs = sqliteTable('orgs', {
  id: text('id').primaryKey(),
  name: text('name').notNull().unique(),
  provider: text('provider').notNull(),
  baseUrl: text('base_url'),
  upstreamKeyEnc: text('upstream_key_enc'),
  upstreamKeyHint: text('upstream_key_hint'),
  failureMode: text('failure_mode').notNull(),
  unknownModelPolicy: text('unknown_model_policy').notNull(),
  defaultMaxTokens: integer('default_max_tokens'),
  httpReferer: text('http_referer'),
  appTitle: text('app_title'),
  metadata: json<Record<string, unknown>>('metadata').notNull(),
  createdAt: ts('created_at').notNull(),
  updatedAt: ts('updated_at').notNull(),
});

export const orgModels = sqliteTable(
  'org_models',
  {
    orgId: text('org_id')
      .notNull()
      .references(() => orgs.id, { onDelete: 'cascade' }),
    pattern: text('pattern').notNull(),
    createdAt: ts('created_at').notNull(),
  },
  (t) => [primaryKey({ columns: [t.orgId, t.pattern] })],
);

export const users = sqliteTable(
  'users',
  {
    id: text('id').primaryKey(),
    orgId: text('org_id').references(() => orgs.id, { onDelete: 'set null' }),
    username: text('username').notNull().unique(),
    email: text('email').unique(),
    status: text('status').notNull(),
    roles: json<string[]>('roles').notNull(),
    groups: json<string[]>('groups').notNull(),
    source: text('source').notNull(),
    externalId: text('external_id').unique(),
    createdAt: ts('created_at').notNull(),
    updatedAt: ts('updated_at').notNull(),
  },
  (t) => [index('users_org_idx').on(t.orgId)],
);

export const apiKeys = sqliteTable(
  'api_keys',
  {
    id: text('id').primaryKey(),
    orgId: text('org_id')
      .notNull()
      .references(() => orgs.id, { onDelete: 'cascade' }),
    userId: text('user_id').references(() => users.id, { onDelete: 'set null' }),
    parentId: text('parent_id'),
    type: text('type').notNull(),
    name: text('name').notNull(),
    env: text('env').notNull(),
    status: text('status').notNull(),
    keyHash: text('key_hash').notNull().unique(),
    prevKeyHash: text('prev_key_hash'),
    prevKeyExpiresAt: ts('prev_key_expires_at'),
    models: json<string[] | null>('models'),
    ipAllow: json<string[]>('ip_allow').notNull(),
    referrerAllow: json<string[]>('referrer_allow').notNull(),
    expiresAt: ts('expires_at'),
    metadata: json<Record<string, unknown>>('metadata').notNull(),
    createdBy: text('created_by').notNull(),
    lastUsedAt: ts('last_used_at'),
    revokedAt: ts('revoked_at'),
    createdAt: ts('created_at').notNull(),
    updatedAt: ts('updated_at').notNull(),
  },
  (t) => [
    index('api_keys_org_idx').on(t.orgId),
    index('api_keys_user_idx').on(t.userId),
    index('api_keys_parent_idx').on(t.parentId),
  ],
);

export const limits = sqliteTable(
  'limits',
  {
    id: text('id').primaryKey(),
    scopeType: text('scope_type').notNull(),
    scopeId: text('scope_id').notNull(),
    // '' means every model; a model id narrows the limit to that model.
    model: text('model').notNull(),
    metric: text('metric').notNull(),
    window: text('window').notNull(),
    max: integer('max').notNull(),
    createdAt: ts('created_at').notNull(),
    updatedAt: ts('updated_at').notNull(),
  },
  (t) => [uniqueIndex('limits_unique_idx').on(t.scopeType, t.scopeId, t.model, t.metric, t.window)],
);

export const limitResets = sqliteTable(
  'limit_resets',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    scopeType: text('scope_type').notNull(),
    scopeId: text('scope_id').notNull(),
    window: text('window').notNull(),
    resetAt: ts('reset_at').notNull(),
    actor: text('actor').notNull(),
  },
  (t) => [index('limit_resets_scope_idx').on(t.scopeType, t.scopeId)],
);

export const creditLedger = sqliteTable(
  'credit_ledger',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    scopeType: text('scope_type').notNull(),
    scopeId: text('scope_id').notNull(),
    amountMicros: integer('amount_micros').notNull(),
    kind: text('kind').notNull(),
    reason: text('reason'),
    actor: text('actor').notNull(),
    createdAt: ts('created_at').notNull(),
  },
  (t) => [index('credit_ledger_scope_idx').on(t.scopeType, t.scopeId)],
);

export const usageEvents = sqliteTable(
  'usage_events',
  {
    requestId: text('request_id').primaryKey(),
    ts: ts('ts').notNull(),
    orgId: text('org_id').notNull(),
    userId: text('user_id'),
    keyId: text('key_id').notNull(),
    model: text('model').notNull(),
    provider: text('provider').notNull(),
    promptTokens: integer('prompt_tokens').notNull(),
    completionTokens: integer('completion_tokens').notNull(),
    totalTokens: integer('total_tokens').notNull(),
    costMicros: integer('cost_micros').notNull(),
    status: integer('status').notNull(),
    errorCode: text('error_code'),
    latencyMs: integer('latency_ms').notNull(),
    ttfbMs: integer('ttfb_ms'),
    stream: integer('stream', { mode: 'boolean' }).notNull(),
    usageSource: text('usage_source').notNull(),
    instance: text('instance').notNull(),
  },
  (t) => [
    index('usage_events_ts_idx').on(t.ts),
    index('usage_events_key_ts_idx').on(t.keyId, t.ts),
    index('usage_events_org_ts_idx').on(t.orgId, t.ts),
  ],
);

export const usageDaily = sqliteTable(
  'usage_daily',
  {
    day: text('day').notNull(),
    orgId: text('org_id').notNull(),
    keyId: text('key_id').notNull(),
    // '' when the key has no user.
    userId: text('user_id').notNull(),
    model: text('model').notNull(),
    requests: integer('requests').notNull(),
    errors: integer('errors').notNull(),
    promptTokens: integer('prompt_tokens').notNull(),
    completionTokens: integer('completion_tokens').notNull(),
    totalTokens: integer('total_tokens').notNull(),
    costMicros: integer('cost_micros').notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.day, t.orgId, t.keyId, t.userId, t.model] }),
    index('usage_daily_org_day_idx').on(t.orgId, t.day),
    index('usage_daily_key_day_idx').on(t.keyId, t.day),
  ],
);

export const models = sqliteTable('models', {
  id: text('id').primaryKey(),
  name: text('name').notNull(),
  contextLength: integer('context_length'),
  // Prices are integer micro-dollars per million tokens (= picodollars per token), exact for
  // any upstream price with up to 12 decimal places.
  promptPrice: integer('prompt_price').notNull(),
  completionPrice: integer('completion_price').notNull(),
  requestPrice: integer('request_price').notNull(),
  priceOverridden: integer('price_overridden', { mode: 'boolean' }).notNull(),
  source: text('source').notNull(),
  updatedAt: ts('updated_at').notNull(),
});

export const auditLog = sqliteTable(
  'audit_log',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    ts: ts('ts').notNull(),
    actor: text('actor').notNull(),
    action: text('action').notNull(),
    targetType: text('target_type').notNull(),
    targetId: text('target_id').notNull(),
    details: json<Record<string, unknown>>('details').notNull(),
  },
  (t) => [index('audit_log_ts_idx').on(t.ts), index('audit_log_target_idx').on(t.targetType, t.targetId)],
);
