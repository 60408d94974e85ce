/**
 * The Lua scripts of the Redis Streams adapter. Every step that moves an entry from one place to
 * another (stream → delayed set → retry stream) is one script, so Redis runs it atomically: a
 * process that dies between two steps cannot lose or duplicate the entry.
 *
 * Time inside the scripts is Redis' own `TIME`, so producers and consumers on machines with
 * skewed clocks agree on when a delayed entry is due.
 *
 * @packageDocumentation
 */

/** Milliseconds since the epoch from Redis' clock (shared Lua prelude). */
const NOW = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`;

/**
 * nack: XACK the entry (and XDEL it when it came from the group's private retry stream), then put a
 * copy with the new `omniqueue-attempt` either straight onto the retry stream (delay ≤ 0) or into
 * the group's delayed sorted set, scored by its due time. Returns 0 when the entry was no longer
 * pending (already settled): nothing is re-added, so a late second settlement cannot duplicate it.
 *
 * KEYS: source stream, retry stream, delayed zset. ARGV: group, id, delete (0|1), delayMs, nonce, fields…
 */
export const NACK_SCRIPT = `
local acked = redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
if acked == 0 then return 0 end
if ARGV[3] == '1' then redis.call('XDEL', KEYS[1], ARGV[2]) end
local fields = {}
for i = 6, #ARGV do fields[#fields + 1] = ARGV[i] end
local delay = tonumber(ARGV[4])
if delay <= 0 then
  redis.call('XADD', KEYS[2], '*', unpack(fields))
else
  ${NOW}
  redis.call('ZADD', KEYS[3], now + delay, cmsgpack.pack({ ARGV[5], fields }))
end
return 1
`;

/**
 * Delayed publish: the entry waits in the topic's scheduled set until it is due.
 *
 * KEYS: scheduled zset. ARGV: delayMs, nonce, fields…
 */
export const SCHEDULE_SCRIPT = `
${NOW}
local fields = {}
for i = 3, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), cmsgpack.pack({ ARGV[2], fields }))
return 1
`;

/**
 * Moves every due member of a delayed set onto its stream (XADD + ZREM in one step). Returns
 * `{moved, msUntilNextDue}` with -1 when the set is empty.
 *
 * KEYS: zset, target stream. ARGV: most members to move.
 */
export const PROMOTE_SCRIPT = `
${NOW}
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
for _, member in ipairs(due) do
  local entry = cmsgpack.unpack(member)
  redis.call('XADD', KEYS[2], '*', unpack(entry[2]))
  redis.call('ZREM', KEYS[1], member)
end
local head = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if #head == 0 then return { #due, -1 } end
local wait = tonumber(head[2]) - now
if wait < 0 then wait = 0 end
return { #due, wait }
`;

/**
 * Recovers entries that a vanished consumer left pending: XAUTOCLAIM those idle for at least
 * min-idle, and read each one's delivery count from XPENDING (XAUTOCLAIM does not return it).
 * Returns `{nextCursor, entries, deliveryCounts}`.
 *
 * KEYS: stream. ARGV: group, consumer, minIdleMs, cursor, count.
 */
export const CLAIM_SCRIPT = `
local r = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4], 'COUNT', ARGV[5])
local entries = r[2]
local counts = {}
for i, entry in ipairs(entries) do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], entry[1], entry[1], 1)
  if p[1] then counts[i] = p[1][4] else counts[i] = 1 end
end
return { r[1], entries, counts }
`;

/**
 * Removes a consumer from its group only when it holds no pending entry (XGROUP DELCONSUMER would
 * silently drop them otherwise).
 *
 * KEYS: stream. ARGV: group, consumer.
 */
export const FORGET_CONSUMER_SCRIPT = `
local p = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2])
if #p > 0 then return -1 end
return redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
`;

/**
 * Retention: trims the stream by length and/or minimum id, but never past an entry that some group
 * has not acknowledged (pending) or not yet read (after its last-delivered id), unless ARGV[3] is 1.
 * Returns the number of entries removed.
 *
 * KEYS: stream. ARGV: maxLen ('' = none), minId ('' = none), trimUnacknowledged (0|1).
 */
export const TRIM_SCRIPT = `
local function parse(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  if ms == nil then ms = string.match(id, '^(%d+)$'); seq = '0' end
  return tonumber(ms), tonumber(seq)
end
local function less(a, b)
  local am, as = parse(a)
  local bm, bs = parse(b)
  if am ~= bm then return am < bm end
  return as < bs
end
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local target = nil
if ARGV[1] ~= '' then
  local keep = tonumber(ARGV[1])
  if redis.call('XLEN', KEYS[1]) > keep then
    local kept = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', keep)
    target = kept[#kept][1]
  end
end
if ARGV[2] ~= '' then
  if target == nil or less(target, ARGV[2]) then target = ARGV[2] end
end
if target == nil then return 0 end
if ARGV[3] ~= '1' then
  local groups = redis.call('XINFO', 'GROUPS', KEYS[1])
  for _, info in ipairs(groups) do
    local name, pending, last
    for i = 1, #info, 2 do
      if info[i] == 'name' then name = info[i + 1]
      elseif info[i] == 'pending' then pending = info[i + 1]
      elseif info[i] == 'last-delivered-id' then last = info[i + 1] end
    end
    local guard
    if pending > 0 then
      guard = redis.call('XPENDING', KEYS[1], name)[2]
    else
      local ms, seq = string.match(last, '^(%d+)-(%d+)$')
      guard = ms .. '-' .. string.format('%d', tonumber(seq) + 1)
    end
    if less(guard, target) then target = guard end
  end
end
return redis.call('XTRIM', KEYS[1], 'MINID', target)
`;
