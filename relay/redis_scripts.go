package relay

import "github.com/redis/go-redis/v9"

// The Lua scripts of RedisQueue (see redis.go for the keys they touch):
// each change of the queue is one script, so it is atomic whichever nodes
// run them.

// luaEntry defines entry(e): an entry's number and id.
const luaEntry = `
local function entry(e)
  local sp = string.find(e, ' ', 1, true)
  local nl = string.find(e, '\n', sp + 1, true)
  return string.sub(e, 1, sp - 1), string.sub(e, sp + 1, nl - 1)
end
`

// luaHead defines entry (luaEntry) and head(lane): the lane's first entry,
// its number and its id; nil when the lane is empty.
const luaHead = luaEntry + `
local function head(lane)
  local e = redis.call('LINDEX', lane, 0)
  if not e then return nil end
  return e, entry(e)
end
`

// addScript appends deliveries to their lanes, in order; a lane that was
// empty is due now. An id already queued in its lane (within the max age)
// is skipped: a stable id made by two nodes, or an Add made again after
// its answer was lost, queues once. It answers how many it took, or -1
// (full: none).
//
// KEYS: ready, waiting, seq, then per delivery its lane and seen keys.
// ARGV: max, now, max age, then per delivery id, JSON, created.
var addScript = redis.NewScript(`
local n = (#ARGV - 3) / 3
if redis.call('ZCARD', KEYS[2]) + n > tonumber(ARGV[1]) then return -1 end
local taken = 0
for i = 0, n - 1 do
  local lane, seen = KEYS[4 + 2*i], KEYS[5 + 2*i]
  local id, body, created = ARGV[4 + 3*i], ARGV[5 + 3*i], ARGV[6 + 3*i]
  if redis.call('SET', seen, '1', 'NX', 'PX', ARGV[3]) then
    local seq = redis.call('INCR', KEYS[3])
    if redis.call('RPUSH', lane, seq .. ' ' .. id .. '\n' .. body) == 1 then
      redis.call('ZADD', KEYS[1], ARGV[2], lane)
    end
    redis.call('ZADD', KEYS[2], created, seq)
    taken = taken + 1
  end
end
return taken`)

// nextScript claims the lane due first: its score moves to the end of the
// claim, and it answers the lane's head; false when none is due. A lane
// in ready with no entries (which no script leaves) is dropped.
//
// KEYS: ready. ARGV: now, end of the claim.
var nextScript = redis.NewScript(`
for _ = 1, 100 do
  local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 1)
  if #due == 0 then return false end
  local e = redis.call('LINDEX', due[1], 0)
  if e then
    redis.call('ZADD', KEYS[1], ARGV[2], due[1])
    return e
  end
  redis.call('ZREM', KEYS[1], due[1])
end
return false`)

// settleScript settles the head of a lane when its id is ARGV[2], and
// answers 1 (0: another delivery heads the lane, or none). retry writes
// the head anew, due at ARGV[5]; done and fail remove it (fail keeps it,
// written anew, in failed), and the lane's next entry is due now.
//
// KEYS: ready, waiting, failed, lane. ARGV: done|retry|fail, id, now,
// JSON, at, MaxFailed.
var settleScript = redis.NewScript(luaHead + `
local e, seq, id = head(KEYS[4])
if not e or id ~= ARGV[2] then return 0 end
if ARGV[1] == 'retry' then
  redis.call('LSET', KEYS[4], 0, seq .. ' ' .. id .. '\n' .. ARGV[4])
  redis.call('ZADD', KEYS[1], ARGV[5], KEYS[4])
  return 1
end
redis.call('LPOP', KEYS[4])
redis.call('ZREM', KEYS[2], seq)
if ARGV[1] == 'fail' then
  redis.call('LPUSH', KEYS[3], seq .. ' ' .. id .. '\n' .. ARGV[4])
  redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[6]) - 1)
end
if redis.call('EXISTS', KEYS[4]) == 1 then
  redis.call('ZADD', KEYS[1], ARGV[3], KEYS[4])
else
  redis.call('ZREM', KEYS[1], KEYS[4])
end
return 1`)

// findFailedScript answers the failed entries of the id ARGV[1], newest
// first. It writes nothing.
//
// KEYS: failed.
var findFailedScript = redis.NewScript(luaEntry + `
local out = {}
for _, e in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do
  local _, id = entry(e)
  if id == ARGV[1] then out[#out + 1] = e end
end
return out`)

// redeliverScript moves failed entries, each still in failed, to the tail
// of their lanes, numbered anew; a lane that was empty is due now. It
// answers, per entry, 1 when moved (0: another call moved it first).
//
// KEYS: ready, waiting, failed, seq, then each entry's lane. ARGV: now,
// then per entry the failed entry, id, JSON, created.
var redeliverScript = redis.NewScript(`
local out = {}
for i = 1, #KEYS - 4 do
  local lane, a = KEYS[4 + i], 2 + 4*(i - 1)
  out[i] = 0
  if redis.call('LREM', KEYS[3], 1, ARGV[a]) == 1 then
    local seq = redis.call('INCR', KEYS[4])
    if redis.call('RPUSH', lane, seq .. ' ' .. ARGV[a + 1] .. '\n' .. ARGV[a + 2]) == 1 then
      redis.call('ZADD', KEYS[1], ARGV[1], lane)
    end
    redis.call('ZADD', KEYS[2], ARGV[a + 3], seq)
    out[i] = 1
  end
end
return out`)
