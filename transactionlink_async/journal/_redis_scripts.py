"""The Lua scripts of RedisJournal: each one key change, atomic, mirroring `_states`.

A record is a JSON object in one hash field per key: `s` the state (claimed, in_doubt,
launched, released), `o` the claim's owner, `x` the execution id, `e` the execution's
JSON text, `f` the final status, `r` the result path. An owner is alive while its lease
key (ARGV[1] .. owner) exists; the journal renews its own.
"""

from __future__ import annotations

__all__ = ["CHANGE", "CLAIM", "LOOKUP"]

# Shared by the scripts: is `rec` a claim held by a batch that is alive?
_LIVE = """
local function live_claim(rec)
  if not rec or rec.s ~= 'claimed' or not rec.o then return false end
  return rec.o == ARGV[2] or redis.call('EXISTS', ARGV[1] .. rec.o) == 1
end
local function decode(raw)
  if raw then return cjson.decode(raw) end
  return nil
end
"""

#: KEYS[1] entries, KEYS[2] this run's seen-set (or KEYS[1] again: none);
#: ARGV[1] lease prefix, ARGV[2] me, ARGV[3] seen-set ttl (ms), ARGV[4..] keys.
#: Returns, per key: repeated (0/1), the record or false, live claim (0/1).
LOOKUP = (
    _LIVE
    + """
local marking = KEYS[2] ~= KEYS[1]
local out = {}
for i = 4, #ARGV do
  local key = ARGV[i]
  local repeated = 0
  if marking and redis.call('SADD', KEYS[2], key) == 0 then repeated = 1 end
  local raw = redis.call('HGET', KEYS[1], key)
  local live = 0
  if live_claim(decode(raw)) then live = 1 end
  out[#out + 1] = repeated
  out[#out + 1] = raw or false
  out[#out + 1] = live
end
if marking then redis.call('PEXPIRE', KEYS[2], ARGV[3]) end
return out
"""
)

#: KEYS[1] entries; ARGV[1] lease prefix, ARGV[2] me, ARGV[3] key.
#: Returns won (0/1), the record after the attempt, live claim (0/1).
CLAIM = (
    _LIVE
    + """
local raw = redis.call('HGET', KEYS[1], ARGV[3])
local rec = decode(raw)
if not rec or rec.s == 'released' then
  local new = cjson.encode({s = 'claimed', o = ARGV[2]})
  redis.call('HSET', KEYS[1], ARGV[3], new)
  return {1, new, 1}
end
local live = 0
if live_claim(rec) then live = 1 end
return {0, raw, live}
"""
)

#: KEYS[1] entries; ARGV[1] lease prefix, ARGV[2] me, ARGV[3] key, ARGV[4] kind,
#: ARGV[5] execution id, ARGV[6] execution, ARGV[7] status, ARGV[8] result ('' = none).
#: Returns 'ok', or 'busy' when a resolve meets a live claim.
CHANGE = (
    _LIVE
    + """
local rec = decode(redis.call('HGET', KEYS[1], ARGV[3]))
local kind, xid, exe, status, result = ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local function put(new) redis.call('HSET', KEYS[1], ARGV[3], cjson.encode(new)) end
local function launched()
  if rec and rec.s == 'launched' and rec.x == xid then
    if exe ~= '' and rec.e ~= exe then rec.e = exe; put(rec) end
    return 'ok'
  end
  local new = {s = 'launched', x = xid}
  if exe ~= '' then new.e = exe end
  put(new)
  return 'ok'
end
local mine = rec and rec.s == 'claimed' and rec.o == ARGV[2]
if kind == 'launched' then
  return launched()
elseif kind == 'released' or kind == 'in_doubt' then
  if mine then put({s = kind}) end
  return 'ok'
elseif kind == 'finished' then
  if rec and rec.s == 'launched' and rec.f ~= status then rec.f = status; put(rec) end
  return 'ok'
elseif kind == 'downloaded' then
  if rec and rec.s == 'launched' and rec.r ~= result then rec.r = result; put(rec) end
  return 'ok'
elseif kind == 'resolve' then
  if live_claim(rec) then return 'busy' end
  if xid ~= '' then return launched() end
  if not (rec and rec.s == 'released') then put({s = 'released'}) end
  return 'ok'
end
return redis.error_reply('unknown journal change ' .. kind)
"""
)
