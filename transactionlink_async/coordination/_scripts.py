"""The Lua scripts Redis runs for us: each is one atomic step, timed on Redis's own clock."""

from __future__ import annotations

__all__ = ["LEASE_EXTEND", "LEASE_RELEASE", "PAUSE", "READ_SHARED", "STORE_SHARED", "TAKE"]

# Scripts that write after reading TIME need effects replication before Redis 5 (it is the
# only mode from Redis 7 on, where the call is a harmless no-op).
_REPLICATE = "if redis.replicate_commands then redis.replicate_commands() end\n"

_NOW_US = (
    "local clock = redis.call('TIME')\n"
    "local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])\n"
)

#: KEYS[1] the bucket (its theoretical arrival time, in microseconds of Redis's clock).
#: ARGV interval and burst window (microseconds), count. Returns the first token's wait in
#: microseconds, as a string (negative: at once); see `_gcra.reserve` for the arithmetic.
TAKE = (
    _REPLICATE
    + _NOW_US
    + """
local interval = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local count = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
local start = math.max(tat, now)
local new_tat = start + count * interval
-- Gone once it would read as a full bucket anyway.
local keep_ms = math.floor((new_tat - now) / 1000) + 1000
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', keep_ms)
return string.format('%.0f', start + interval - now - window)
"""
)

#: KEYS[1] the pause of one kind, KEYS[2] the set of kinds ever paused.
#: ARGV milliseconds, kind, channel, message. Lengthens the pause, never shortens it, and
#: tells every subscribed process at once.
PAUSE = """
local ms = tonumber(ARGV[1])
if redis.call('PTTL', KEYS[1]) < ms then
  redis.call('SET', KEYS[1], '1', 'PX', ms)
end
redis.call('SADD', KEYS[2], ARGV[2])
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1
"""

#: KEYS[1] the shared token (hash: g generation, v sealed token, e expiry in ms of Redis's
#: clock or -1, l lifetime in ms or 'none'), KEYS[2] the renewal lease.
#: Returns generation, sealed token, ms left ('none' if unknown), lifetime, lease PTTL.
READ_SHARED = """
local v = redis.call('HMGET', KEYS[1], 'g', 'v', 'e', 'l')
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local left = 'none'
if v[3] and tonumber(v[3]) >= 0 then
  left = string.format('%.0f', tonumber(v[3]) - now)
end
return {v[1] or '0', v[2] or '', left, v[4] or 'none', redis.call('PTTL', KEYS[2])}
"""

#: KEYS[1] the shared token, KEYS[2] the renewal lease. ARGV owner, expected generation,
#: sealed token, ms it has left and ms it lived ('none' both if unknown), how long to keep
#: the entry (ms). Stores only for the lease's owner and only over the generation it
#: renewed; returns the new generation, -1 (lease lost) or -2 (someone else stored first).
STORE_SHARED = (
    _REPLICATE
    + """
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return -1 end
local generation = tonumber(redis.call('HGET', KEYS[1], 'g') or '0')
if generation ~= tonumber(ARGV[2]) then return -2 end
local expires = '-1'
if ARGV[4] ~= 'none' then
  local clock = redis.call('TIME')
  local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
  expires = string.format('%.0f', now + tonumber(ARGV[4]))
end
redis.call('HSET', KEYS[1], 'g', generation + 1, 'v', ARGV[3], 'e', expires, 'l', ARGV[5])
redis.call('PEXPIRE', KEYS[1], ARGV[6])
return generation + 1
"""
)

#: KEYS[1] a lease, ARGV owner and milliseconds: extends it while we still own it.
LEASE_EXTEND = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

#: KEYS[1] a lease, ARGV owner: lets it go if we still own it (never someone else's).
LEASE_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""
