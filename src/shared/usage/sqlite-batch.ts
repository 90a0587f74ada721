// The SQLite half of the usage batch write: the same four steps as write-batch.ts (events
// idempotent on request id, rollups, credit charges, keys' last use) as statements prepared
// once per handle. The caller runs it inside store.transaction (BEGIN IMMEDIATE on this handle).
import type Database from 'better-sqlite3';
import type { BatchResult } from './write-batch.js';
import { creditCharges, lastUses, rollupGroups } from './write-batch.js';
import type { UsageRecord } from './types.js';

export function sqliteBatchWriter(db: Database.Database): (records: readonly UsageRecord[], instance: string, now: Date) => BatchResult {
  const insertEvent = db.prepare(
    `insert into usage_events (request_id, ts, org_id, user_id, key_id, model, provider, prompt_tokens, completion_tokens, total_tokens,
       cost_micros, status, error_code, latency_ms, ttfb_ms, stream, usage_source, instance)
     values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) on conflict do nothing`,
  );
  const upsertDaily = db.prepare(
    `insert into usage_daily (day, org_id, key_id, user_id, model, requests, errors, prompt_tokens, completion_tokens, total_tokens, cost_micros)
     values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
     on conflict (day, org_id, key_id, user_id, model) do update set
       requests = usage_daily.requests + excluded.requests,
       errors = usage_daily.errors + excluded.errors,
       prompt_tokens = usage_daily.prompt_tokens + excluded.prompt_tokens,
       completion_tokens = usage_daily.completion_tokens + excluded.completion_tokens,
       total_tokens = usage_daily.total_tokens + excluded.total_tokens,
       cost_micros = usage_daily.cost_micros + excluded.cost_micros`,
  );
  const insertCharge = db.prepare(
    `insert into credit_ledger (scope_type, scope_id, amount_micros, kind, reason, actor, created_at) values (?, ?, ?, 'charge', 'usage', ?, ?)`,
  );
  const touchKey = db.prepare('update api_keys set last_used_at = ? where id = ? and (last_used_at is null or last_used_at < ?)');

  return (records, instance, now) => {
    const fresh: UsageRecord[] = [];
    for (const r of records) {
      // changes is 0 for a request id already stored (or repeated earlier in this batch).
      const { changes } = insertEvent.run(
        r.requestId, r.ts, r.orgId, r.userId, r.keyId, r.model, r.provider, r.promptTokens, r.completionTokens, r.totalTokens,
        r.costMicros, r.status, r.errorCode, Math.round(r.latencyMs), r.ttfbMs === null ? null : Math.round(r.ttfbMs), r.stream ? 1 : 0, r.usageSource, instance,
      );
      if (changes > 0) fresh.push(r);
    }
    for (const g of rollupGroups(fresh)) {
      upsertDaily.run(g.day, g.orgId, g.keyId, g.userId, g.model, g.requests, g.errors, g.promptTokens, g.completionTokens, g.totalTokens, g.costMicros);
    }
    const actor = `proxy:${instance}`;
    for (const [scope, micros] of creditCharges(fresh)) {
      const i = scope.indexOf(':');
      insertCharge.run(scope.slice(0, i), scope.slice(i + 1), -micros, actor, now.getTime());
    }
    for (const [id, ts] of lastUses(fresh)) touchKey.run(ts, id, ts);
    return { inserted: fresh.length, duplicates: records.length - fresh.length };
  };
}
