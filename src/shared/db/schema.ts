// The one schema, seen through the Postgres types. Both dialects produce identical row types
// (asserted below at compile time), so services are written once against `Tables` and run on
// either store; the runtime table objects come from the store's own dialect.
import type { InferInsertModel, InferSelectModel, Table } from 'drizzle-orm';
import * as pg from './schema-pg.js';
import * as sqlite from './schema-sqlite.js';

export type Tables = typeof pg;
export const pgTables: Tables = pg;
// The SQLite table objects stand in for the Postgres ones: same names, columns and row types.
export const sqliteTables = sqlite as unknown as Tables;
export const sqliteSchema = sqlite;
export const pgSchema = pg;

type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type RowsAgree<P extends Table, S extends Table> = Same<InferSelectModel<P>, InferSelectModel<S>> extends true
  ? Same<InferInsertModel<P>, InferInsertModel<S>>
  : false;
type AllAgree = {
  [K in keyof typeof pg & keyof typeof sqlite]: (typeof pg)[K] extends Table
    ? (typeof sqlite)[K] extends Table
      ? RowsAgree<(typeof pg)[K], (typeof sqlite)[K]>
      : false
    : false;
};
// A compile error here means the two schema files disagree on some table's row types.
export const schemaParity: { [K in keyof AllAgree]: AllAgree[K] extends true ? true : never } = {
  configVersion: true,
  orgs: true,
  orgModels: true,
  users: true,
  apiKeys: true,
  limits: true,
  limitResets: true,
  creditLedger: true,
  usageEvents: true,
  usageDaily: true,
  models: true,
  auditLog: true,
};

export type Org = InferSelectModel<Tables['orgs']>;
export type User = InferSelectModel<Tables['users']>;
export type ApiKey = InferSelectModel<Tables['apiKeys']>;
export type Limit = InferSelectModel<Tables['limits']>;
export type LimitReset = InferSelectModel<Tables['limitResets']>;
export type CreditEntry = InferSelectModel<Tables['creditLedger']>;
export type UsageEvent = InferSelectModel<Tables['usageEvents']>;
export type UsageDaily = InferSelectModel<Tables['usageDaily']>;
export type Model = InferSelectModel<Tables['models']>;
export type AuditEntry = InferSelectModel<Tables['auditLog']>;
