// The Postgres half of the usage batch write: the same four steps as sqlite-batch.ts (events
// idempotent on request id, rollups, credit charges, keys' last use) as hand-written statements,
// one per step, each taking its rows as column arrays through unnest(). Drizzle built the same
// statements value by value: on a Postgres store that was ~28% of the proxy's CPU under load
// (a batch of 500 events is 9,000 parameters to walk, type and number), about as much again as
// serving the request. Here a batch is 18 array parameters, and the statements are prepared once
// per connection (named), so Postgres does not parse or plan them again either.
//
// Row order: rollup rows and keys are locked in sorted order, so two instances writing batches
// that touch the same rows wait for each other instead of deadlocking.
import type pg from 'pg';
import type { BatchResult } from './write-batch.js';
import { creditCharges, lastUses, rollupGroups } from './write-batch.js';
import type { UsageRecord } from './types.js';

// Epoch milliseconds to timestamptz, exactly: a millisecond interval times an integer below 2^53
// microseconds is computed without rounding (to_timestamp(ms / 1000.0) goes through a double).
const AT = (ms: string) => `timestamptz 'epoch' + ${ms} * interval '1 millisecond'`;

const INSERT_EVENTS = {
  name: 'gw_usage_events_v1',
  text: `insert into usage_events (request_id, ts, org_id, user_id, key_id, model, provider, prompt_tokens, completion_tokens, total_tokens,
      cost_micros, status, error_code, latency_ms, ttfb_ms, stream, usage_source, instance)
    select e.request_id, ${AT('e.ms')}, e.org_id, e.user_id, e.key_id, e.model, e.provider, e.prompt_tokens, e.completion_tokens, e.total_tokens,
      e.cost_micros, e.status, e.error_code, e.latency_ms, e.ttfb_ms, e.stream, e.usage_source, $18::text
    from unnest($1::text[], $2::int8[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::int8[], $9::int8[], $10::int8[],
      $11::int8[], $12::int4[], $13::text[], $14::int4[], $15::int4[], $16::bool[], $17::text[])
      as e(request_id, ms, org_id, user_id, key_id, model, provider, prompt_tokens, completion_tokens, total_tokens,
        cost_micros, status, error_code, latency_ms, ttfb_ms, stream, usage_source)
    on conflict do nothing
    returning request_id`,
};

const UPSERT_DAILY = {
  name: 'gw_usage_daily_v1',
  text: `insert into usage_daily (day, org_id, key_id, user_id, model, requests, errors, prompt_tokens, completion_tokens, total_tokens, cost_micros)
    select * from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int8[], $7::int8[], $8::int8[], $9::int8[], $10::int8[], $11::int8[])
    on conflict (day, org_id, key_id, user_id, model) do update set
      requests = usage_daily.requests + excluded.requests,
      errors = usage_daily.errors + excluded.errors,
      prompt_tokens = usage_daily.prompt_tokens + excluded.prompt_tokens,
      completion_tokens = usage_daily.completion_tokens + excluded.completion_tokens,
      total_tokens = usage_daily.total_tokens + excluded.total_tokens,
      cost_micros = usage_daily.cost_micros + excluded.cost_micros`,
};

const INSERT_CHARGES = {
  name: 'gw_usage_charges_v1',
  text: `insert into credit_ledger (scope_type, scope_id, amount_micros, kind, reason, actor, created_at)
    select c.scope_type, c.scope_id, c.amount_micros, 'charge', 'usage', $4::text, ${AT('$5::int8')}
    from unnest($1::text[], $2::text[], $3::int8[]) as c(scope_type, scope_id, amount_micros)`,
};

const TOUCH_KEYS = {
  name: 'gw_usage_touch_keys_v1',
  text: `update api_keys k set last_used_at = u.at
    from (select id, ${AT('ms')} as at from unnest($1::text[], $2::int8[]) as v(id, ms)) u
    where k.id = u.id and (k.last_used_at is null or k.last_used_at < u.at)`,
};

const byText = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * Postgres text cannot hold U+0000, and one such value fails its whole batch, again on every
 * retry. The proxy refuses such a model name at the edge; anything that still carries one (a
 * record from another path) is stored with U+FFFD in its place rather than block every event.
 */
const pgText = (s: string) => (s.includes('\u0000') ? s.replaceAll('\u0000', '\uFFFD') : s);

/** Writes one batch on `client`, inside the caller's transaction. */
export async function writeBatchPg(client: pg.ClientBase, batch: readonly UsageRecord[], instance: string, now: Date): Promise<BatchResult> {
  const records = batch.some((r) => r.model.includes('\u0000')) ? batch.map((r) => ({ ...r, model: pgText(r.model) })) : batch;
  const n = records.length;
  const cols = Array.from({ length: 17 }, () => new Array<unknown>(n));
  for (let i = 0; i < n; i++) {
    const r = records[i]!;
    cols[0]![i] = r.requestId;
    cols[1]![i] = r.ts;
    cols[2]![i] = r.orgId;
    cols[3]![i] = r.userId;
    cols[4]![i] = r.keyId;
    cols[5]![i] = r.model;
    cols[6]![i] = r.provider;
    cols[7]![i] = r.promptTokens;
    cols[8]![i] = r.completionTokens;
    cols[9]![i] = r.totalTokens;
    cols[10]![i] = r.costMicros;
    cols[11]![i] = r.status;
    cols[12]![i] = r.errorCode;
    cols[13]![i] = Math.round(r.latencyMs);
    cols[14]![i] = r.ttfbMs === null ? null : Math.round(r.ttfbMs);
    cols[15]![i] = r.stream;
    cols[16]![i] = r.usageSource;
  }
  const inserted = await client.query<[string]>({ ...INSERT_EVENTS, values: [...cols, instance], rowMode: 'array' });
  const insertedIds = new Set(inserted.rows.map((row) => row[0]));
  // A duplicate id within the batch itself is inserted once; later copies are duplicates too.
  const fresh: UsageRecord[] = [];
  for (const r of records) if (insertedIds.delete(r.requestId)) fresh.push(r);
  if (fresh.length === 0) return { inserted: 0, duplicates: n };

  const groups = rollupGroups(fresh).sort(
    (a, b) => byText(a.day, b.day) || byText(a.orgId, b.orgId) || byText(a.keyId, b.keyId) || byText(a.userId, b.userId) || byText(a.model, b.model),
  );
  await client.query({
    ...UPSERT_DAILY,
    values: [
      groups.map((g) => g.day),
      groups.map((g) => g.orgId),
      groups.map((g) => g.keyId),
      groups.map((g) => g.userId),
      groups.map((g) => g.model),
      groups.map((g) => g.requests),
      groups.map((g) => g.errors),
      groups.map((g) => g.promptTokens),
      groups.map((g) => g.completionTokens),
      groups.map((g) => g.totalTokens),
      groups.map((g) => g.costMicros),
    ],
  });

  const charges = [...creditCharges(fresh)];
  if (charges.length > 0) {
    const types: string[] = [];
    const ids: string[] = [];
    const amounts: number[] = [];
    for (const [scope, micros] of charges) {
      const i = scope.indexOf(':');
      types.push(scope.slice(0, i));
      ids.push(scope.slice(i + 1));
      amounts.push(-micros);
    }
    await client.query({ ...INSERT_CHARGES, values: [types, ids, amounts, `proxy:${instance}`, now.getTime()] });
  }

  const uses = [...lastUses(fresh)].sort((a, b) => byText(a[0], b[0]));
  await client.query({ ...TOUCH_KEYS, values: [uses.map((u) => u[0]), uses.map((u) => u[1])] });
  return { inserted: fresh.length, duplicates: n - fresh.length };
}
