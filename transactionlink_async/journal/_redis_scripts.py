"""RedisJournal's one Lua script: a batch of operations, applied atomically in order.

Each key's record is a JSON object in one hash field: `s` the state (claimed, in_doubt,
launched, released), `o` the claim's owner, `x` the execution id, `e` the execution's
JSON text, `f` the final status, `r` the result path. An owner is alive while its lease
key (lease prefix .. owner) exists; each journal renews its own. The transitions mirror
`_states` (the model tests hold both to one model).

KEYS[1] the entries hash. ARGV[1] lease prefix, ARGV[2] this journal's owner id,
ARGV[3] seen-set prefix, ARGV[4] seen-set ttl (ms), ARGV[5] the operations as one JSON
array, each an array of a code and its arguments (see `_redis.py`): one argument for
the whole batch instead of several per operation keeps both ends' encoding cheap. One
reply per operation, in order.
"""

from __future__ import annotations

__all__ = ["APPLY"]

APPLY = """
local entries = KEYS[1]
local lease_prefix, me, seen_prefix, seen_ttl = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local ops = cjson.decode(ARGV[5])
-- Keys per HMGET/SADD call: well under the Lua stack's limit on unpack().
local SLICE = 1000

local function decode(raw)
  if raw then return cjson.decode(raw) end
  return nil
end
local function live_claim(rec)
  if not rec or rec.s ~= 'claimed' or not rec.o then return false end
  return rec.o == me or redis.call('EXISTS', lease_prefix .. rec.o) == 1
end
local function live_raw(raw)
  -- Most records are not claims: skip decoding those.
  if not raw or not string.find(raw, '"claimed"', 1, true) then return 0 end
  if live_claim(cjson.decode(raw)) then return 1 end
  return 0
end
local function put(key, rec) redis.call('HSET', entries, key, cjson.encode(rec)) end

local function launched(key, rec, xid, exe)
  if rec and rec.s == 'launched' and rec.x == xid then
    if exe ~= '' and rec.e ~= exe then rec.e = exe; put(key, rec) end
    return 'ok'
  end
  local new = {s = 'launched', x = xid}
  if exe ~= '' then new.e = exe end
  put(key, new)
  return 'ok'
end

local function change(key, kind, xid, exe, status, result)
  local rec = decode(redis.call('HGET', entries, key))
  local mine = rec and rec.s == 'claimed' and rec.o == me
  if kind == 'launched' then
    return launched(key, rec, xid, exe)
  elseif kind == 'released' or kind == 'in_doubt' then
    if mine then put(key, {s = kind}) end
  elseif kind == 'finished' then
    if rec and rec.s == 'launched' and rec.f ~= status then rec.f = status; put(key, rec) end
  elseif kind == 'downloaded' then
    if rec and rec.s == 'launched' and rec.r ~= result then rec.r = result; put(key, rec) end
  elseif kind == 'resolve' then
    if live_claim(rec) then return 'busy' end
    if xid ~= '' then return launched(key, rec, xid, exe) end
    if not (rec and rec.s == 'released') then put(key, {s = 'released'}) end
  else
    return 'unknown'
  end
  return 'ok'
end

-- Which of `keys` the set `seen` held before, adding them all: 1 (held, or earlier in
-- `keys`) or 0 for each key.
local function mark_seen(seen, keys)
  local repeated, fresh, first = {}, {}, {}
  for j, key in ipairs(keys) do
    if first[key] then
      repeated[j] = 1
    else
      first[key] = j
      repeated[j] = 0
      fresh[#fresh + 1] = key
    end
  end
  for s = 1, #fresh, SLICE do
    local part = {unpack(fresh, s, math.min(#fresh, s + SLICE - 1))}
    -- SMISMEMBER (Redis 6.2) asks for a whole slice at once; older servers ask per key.
    local held = redis.pcall('SMISMEMBER', seen, unpack(part))
    if type(held) == 'table' and held.err == nil then
      for n, key in ipairs(part) do
        if held[n] == 1 then repeated[first[key]] = 1 end
      end
      redis.call('SADD', seen, unpack(part))
    else
      for _, key in ipairs(part) do
        if redis.call('SADD', seen, key) == 0 then repeated[first[key]] = 1 end
      end
    end
  end
  redis.call('PEXPIRE', seen, seen_ttl)
  return repeated
end

-- Look keys up: repeated, record, live, for each key.
local function lookup(run, keys)
  local repeated = nil
  if run then repeated = mark_seen(seen_prefix .. run, keys) end
  local reply = {}
  for s = 1, #keys, SLICE do
    local part = {unpack(keys, s, math.min(#keys, s + SLICE - 1))}
    local raws = redis.call('HMGET', entries, unpack(part))
    for n = 1, #part do
      local raw = raws[n]
      reply[#reply + 1] = repeated and repeated[s + n - 1] or 0
      reply[#reply + 1] = raw or false
      reply[#reply + 1] = live_raw(raw)
    end
  end
  return reply
end

local claimed = cjson.encode({s = 'claimed', o = me})
local out = {}
for i, op in ipairs(ops) do
  local code = op[1]
  if code == 'L' then
    out[i] = lookup(op[2], op[3])
  elseif code == 'G' then
    out[i] = lookup(nil, op[2])
  elseif code == 'C' then
    -- Claim: won, the record after the attempt, live.
    local key = op[2]
    local raw = redis.call('HGET', entries, key)
    local rec = decode(raw)
    if not rec or rec.s == 'released' then
      redis.call('HSET', entries, key, claimed)
      out[i] = {1, claimed, 1}
    else
      out[i] = {0, raw, live_raw(raw)}
    end
  elseif code == 'X' then
    out[i] = change(op[2], op[3], op[4], op[5], op[6], op[7])
  elseif code == 'E' then
    redis.call('DEL', seen_prefix .. op[2])
    out[i] = 'ok'
  else
    return redis.error_reply('unknown journal operation ' .. tostring(code))
  end
end
return out
"""
