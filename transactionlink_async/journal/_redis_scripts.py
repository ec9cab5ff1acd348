"""RedisJournal's one Lua script: a batch of operations, applied atomically in order.

Each key's record is a JSON object in one hash field: `s` the state (claimed, in_doubt,
launched, released), `o` the claim's owner, `x` the execution id, `e` the execution's
JSON text, `f` the final status, `r` the result path. An owner is alive while its lease
key (lease prefix .. owner) exists; each journal renews its own. The transitions mirror
`_states` (the model tests hold both to one model).

KEYS[1] the entries hash. ARGV[1] lease prefix, ARGV[2] this journal's owner id,
ARGV[3] seen-set prefix, ARGV[4] seen-set ttl (ms); then the operations, each a code and
its arguments (see `_redis.py`). One reply per operation, in order.
"""

from __future__ import annotations

__all__ = ["APPLY"]

APPLY = """
local entries = KEYS[1]
local lease_prefix, me, seen_prefix, seen_ttl = ARGV[1], ARGV[2], ARGV[3], ARGV[4]

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

local out = {}
local i = 5
while i <= #ARGV do
  local code = ARGV[i]
  if code == 'L' or code == 'G' then
    -- Look keys up (L: and mark them seen by run ARGV[i+1]): repeated, record, live.
    local n = tonumber(ARGV[i + 2])
    local seen = false
    if code == 'L' then seen = seen_prefix .. ARGV[i + 1] end
    local reply = {}
    for j = 1, n do
      local key = ARGV[i + 2 + j]
      local repeated = 0
      if seen and redis.call('SADD', seen, key) == 0 then repeated = 1 end
      local raw = redis.call('HGET', entries, key)
      reply[#reply + 1] = repeated
      reply[#reply + 1] = raw or false
      reply[#reply + 1] = live_raw(raw)
    end
    if seen then redis.call('PEXPIRE', seen, seen_ttl) end
    out[#out + 1] = reply
    i = i + 3 + n
  elseif code == 'C' then
    -- Claim: won, the record after the attempt, live.
    local key = ARGV[i + 1]
    local raw = redis.call('HGET', entries, key)
    local rec = decode(raw)
    if not rec or rec.s == 'released' then
      local new = cjson.encode({s = 'claimed', o = me})
      redis.call('HSET', entries, key, new)
      out[#out + 1] = {1, new, 1}
    else
      out[#out + 1] = {0, raw, live_raw(raw)}
    end
    i = i + 2
  elseif code == 'X' then
    out[#out + 1] = change(
      ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5], ARGV[i + 6])
    i = i + 7
  elseif code == 'E' then
    redis.call('DEL', seen_prefix .. ARGV[i + 1])
    out[#out + 1] = 'ok'
    i = i + 2
  else
    return redis.error_reply('unknown journal operation ' .. tostring(code))
  end
end
return out
"""
