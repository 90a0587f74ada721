// The Lua scripts behind RedisLimitBackend. Each runs atomically in Redis, so check-and-reserve
// across every counter of a request is one indivisible step for all proxy instances.
//
// Per counter, three keys: the committed usage (a string for calendar/total windows, whose name
// carries the window start; a hash bucket → amount for rolling windows), and the in-flight
// reservations (a zset reservation → expiry, a hash reservation → amount with a `_sum` field).
// An in-flight reservation that is never settled (crashed instance) expires and stops counting.
// Rolling windows need no pending set: a reservation goes straight into the current bucket and
// leaves the window with it; settlement corrects that bucket by the difference.

/**
 * KEYS: 3 per counter (base, pending zset, pending hash).
 * ARGV: mode ('reserve' | 'peek'), now, reservation id, pending expiry (ms epoch), pending key ttl (ms), n,
 *       then per counter: kind ('r' | 'c'), max, amount, min bucket (r) | allow missing (c: 1/0),
 *       current bucket (r), rolling key ttl ms (r).
 * Returns {1, used…, newest…} on success (newest: a rolling counter's newest bucket holding
 * anything, -1 for none or a calendar counter), {0, i, used, pinned, idx, amt, idx, amt…} on refusal of
 * counter i (buckets of a rolling counter, oldest first), or {-1, i…} when calendar/total
 * counters are missing and must be seeded first.
 */
export const RESERVE_LUA = `
local mode = ARGV[1]
local now = tonumber(ARGV[2])
local res = ARGV[3]
local pexp = tonumber(ARGV[4])
local pttl = tonumber(ARGV[5])
local n = tonumber(ARGV[6])
local used, pinned, missing, newest = {}, {}, {}, {}
local denied, deniedBuckets = nil, nil
for i = 1, n do
  local base, pz, ph = KEYS[3*i-2], KEYS[3*i-1], KEYS[3*i]
  local o = 6 + (i-1)*6
  local kind, max, amt, p = ARGV[o+1], tonumber(ARGV[o+2]), tonumber(ARGV[o+3]), tonumber(ARGV[o+4])
  local expired = redis.call('ZRANGEBYSCORE', pz, '-inf', now)
  for _, m in ipairs(expired) do
    local a = redis.call('HGET', ph, m)
    if a then
      redis.call('HINCRBY', ph, '_sum', -tonumber(a))
      redis.call('HDEL', ph, m)
    end
  end
  if #expired > 0 then redis.call('ZREMRANGEBYSCORE', pz, '-inf', now) end
  local pend = tonumber(redis.call('HGET', ph, '_sum') or '0')
  local b = 0
  local buckets = {}
  newest[i] = -1
  if kind == 'r' then
    local all = redis.call('HGETALL', base)
    for j = 1, #all, 2 do
      local idx = tonumber(all[j])
      if idx < p then
        redis.call('HDEL', base, all[j])
      else
        local a = tonumber(all[j+1])
        b = b + a
        table.insert(buckets, {idx, a})
        if a > 0 and idx > newest[i] then newest[i] = idx end
      end
    end
  else
    local v = redis.call('GET', base)
    if v then b = tonumber(v) elseif p == 0 then table.insert(missing, i) end
  end
  used[i] = b + pend
  pinned[i] = pend
  if mode == 'reserve' and denied == nil and (used[i] + amt > max or used[i] >= max) then
    denied = i
    deniedBuckets = buckets
  end
end
if #missing > 0 then
  local out = {-1}
  for _, i in ipairs(missing) do table.insert(out, i) end
  return out
end
if denied then
  table.sort(deniedBuckets, function(x, y) return x[1] < y[1] end)
  local out = {0, denied, used[denied], pinned[denied]}
  for _, bk in ipairs(deniedBuckets) do
    table.insert(out, bk[1])
    table.insert(out, bk[2])
  end
  return out
end
if mode == 'reserve' then
  for i = 1, n do
    local o = 6 + (i-1)*6
    local kind, amt = ARGV[o+1], tonumber(ARGV[o+3])
    if amt > 0 and kind == 'r' then
      redis.call('HINCRBY', KEYS[3*i-2], ARGV[o+5], amt)
      redis.call('PEXPIRE', KEYS[3*i-2], tonumber(ARGV[o+6]))
      if tonumber(ARGV[o+5]) > newest[i] then newest[i] = tonumber(ARGV[o+5]) end
    elseif amt > 0 then
      local pz, ph = KEYS[3*i-1], KEYS[3*i]
      redis.call('HSET', ph, res, amt)
      redis.call('HINCRBY', ph, '_sum', amt)
      redis.call('ZADD', pz, pexp, res)
      redis.call('PEXPIRE', ph, pttl)
      redis.call('PEXPIRE', pz, pttl)
    end
  end
end
local out = {1}
for i = 1, n do table.insert(out, used[i]) end
for i = 1, n do table.insert(out, newest[i]) end
return out
`;

/**
 * KEYS: the settled marker, then 3 per counter to settle (base, pending zset, pending hash, as
 *       keyed when the request was admitted), then 3 per counter to read (as keyed now), which
 *       are left out when they are the same keys (the usual case: no window passed meanwhile).
 * ARGV: reservation id, marker ttl (ms), n, create missing (1/0), now, then per counter: kind,
 *       actual, bucket (r) | 0, expire-at for a new calendar key (ms epoch, 0 = never), rolling key
 *       ttl (ms), reserved, min bucket now (r) | 0.
 * With a seeder, a missing calendar/total key is NOT created (create missing = 0): it was lost
 * (Redis restarted empty, or flushed) and the next reserve seeds it from the store, which holds
 * this request too. Creating it from this one amount would forget everything spent before.
 * Settles once (idempotent: a second settlement of the reservation changes nothing), then reads
 * every counter as RESERVE_LUA's peek does, in the same step (the states a response reports; a
 * separate peek was a third command per request). Returns {settled now 1/0, a counter to read is
 * missing 1/0, used…, newest…, skipped…} (newest as RESERVE_LUA's; skipped: 1 where a missing
 * calendar/total key was left alone, see below); with a missing counter the caller peeks
 * instead, which seeds it, and then adds what it skipped.
 */
export const SETTLE_LUA = `
local res = ARGV[1]
local n = tonumber(ARGV[3])
local create = ARGV[4] == '1'
local now = tonumber(ARGV[5])
local settled = 0
local skipped = {}
if redis.call('SET', KEYS[1], '1', 'NX', 'PX', tonumber(ARGV[2])) then
  settled = 1
  for i = 1, n do
    local base, pz, ph = KEYS[3*i-1], KEYS[3*i], KEYS[3*i+1]
    local o = 5 + (i-1)*7
    local kind, actual, slot, at, rttl, reserved = ARGV[o+1], tonumber(ARGV[o+2]), ARGV[o+3], tonumber(ARGV[o+4]), tonumber(ARGV[o+5]), tonumber(ARGV[o+6])
    if kind == 'r' then
      -- Only while the bucket is still in the window; a gone bucket no longer counts anyway.
      local cur = redis.call('HGET', base, slot)
      if cur and actual ~= reserved then
        redis.call('HSET', base, slot, math.max(0, tonumber(cur) + actual - reserved))
      end
    else
      local a = redis.call('HGET', ph, res)
      if a then
        redis.call('HINCRBY', ph, '_sum', -tonumber(a))
        redis.call('HDEL', ph, res)
        redis.call('ZREM', pz, res)
      end
      if actual > 0 and (create or redis.call('EXISTS', base) == 1) then
        redis.call('INCRBY', base, actual)
        if at > 0 and redis.call('PTTL', base) == -1 then redis.call('PEXPIREAT', base, at) end
      elseif actual > 0 then
        skipped[i] = 1
      end
    end
  end
end
local out = {settled, 0}
local newest = {}
local read = #KEYS > 1 + 3*n and 3*n or 0
for i = 1, n do
  local k = 1 + read + 3*i
  local base, pz, ph = KEYS[k-2], KEYS[k-1], KEYS[k]
  local o = 5 + (i-1)*7
  local kind, p = ARGV[o+1], tonumber(ARGV[o+7])
  local expired = redis.call('ZRANGEBYSCORE', pz, '-inf', now)
  for _, m in ipairs(expired) do
    local a = redis.call('HGET', ph, m)
    if a then
      redis.call('HINCRBY', ph, '_sum', -tonumber(a))
      redis.call('HDEL', ph, m)
    end
  end
  if #expired > 0 then redis.call('ZREMRANGEBYSCORE', pz, '-inf', now) end
  local b = tonumber(redis.call('HGET', ph, '_sum') or '0')
  local top = -1
  if kind == 'r' then
    local all = redis.call('HGETALL', base)
    for j = 1, #all, 2 do
      local idx = tonumber(all[j])
      if idx < p then
        redis.call('HDEL', base, all[j])
      else
        local a = tonumber(all[j+1])
        b = b + a
        if a > 0 and idx > top then top = idx end
      end
    end
  else
    local v = redis.call('GET', base)
    if v then b = b + tonumber(v) elseif not create then out[2] = 1 end
  end
  table.insert(out, b)
  newest[i] = top
end
for i = 1, n do table.insert(out, newest[i]) end
for i = 1, n do table.insert(out, skipped[i] or 0) end
return out
`;

/** KEYS: calendar/total keys. ARGV: amounts. Adds each amount only where the key exists (fallback reconciliation). */
export const ADD_IF_EXISTS_LUA = `
local added = 0
for i = 1, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    redis.call('INCRBY', KEYS[i], tonumber(ARGV[i]))
    added = added + 1
  end
end
return added
`;

/**
 * KEYS: one rolling-window key per item. ARGV: create (1/0), then per item: bucket, amount, key
 * ttl (ms). Adds each amount to its bucket; without `create` only where the key exists (a late
 * charge: a window nobody reserved on is left alone, as the memory backend leaves a counter it
 * has no state for). A fallback's handover creates (rolling windows are never seeded).
 */
export const ADD_ROLLING_LUA = `
local create = ARGV[1] == '1'
for i = 1, #KEYS do
  local o = 1 + (i-1)*3
  if create or redis.call('EXISTS', KEYS[i]) == 1 then
    redis.call('HINCRBY', KEYS[i], ARGV[o+1], tonumber(ARGV[o+2]))
    redis.call('PEXPIRE', KEYS[i], tonumber(ARGV[o+3]))
  end
end
return 1
`;

/**
 * Keeps reservations of requests still running from expiring (see RedisLimitBackend's
 * heartbeat): a reservation still pending gets a later expiry (never an earlier one), and its
 * pending keys a new TTL. A settled or already expired one is left alone.
 * KEYS: 2 per reservation and counter (pending zset, pending hash). ARGV: expiry (ms epoch),
 * pending key ttl (ms), then the reservation id of each pair.
 */
export const REFRESH_LUA = `
local pexp = tonumber(ARGV[1])
local pttl = tonumber(ARGV[2])
local refreshed = 0
for i = 1, #KEYS / 2 do
  local pz, ph, res = KEYS[2*i-1], KEYS[2*i], ARGV[i+2]
  local cur = redis.call('ZSCORE', pz, res)
  if cur then
    if tonumber(cur) < pexp then redis.call('ZADD', pz, 'XX', pexp, res) end
    if redis.call('PTTL', pz) < pttl then
      redis.call('PEXPIRE', pz, pttl)
      redis.call('PEXPIRE', ph, pttl)
    end
    refreshed = refreshed + 1
  end
end
return {refreshed}
`;
