"""
The chat's data in Redis, and the Lua scripts that change and read it, each
one atomic and one round trip.

Every key starts with a prefix (C{ARGV[1]}, C{chat:} by default), and each
server has an id (C{sid}):

  - C{servers}: a sorted set of server ids, scored by the time (Redis's
    clock, in ms) until which each is alive; a heartbeat moves it on.
  - C{nick:KEY}: who holds a nick, by its L{nickKey}: C{"sid nick"}, set
    with C{NX}-like care and an expiry the heartbeat refreshes, so that the
    nicks of a server that dies are free once it runs out.
  - C{rooms:sid}: a hash of a server's rooms with members there, room key
    (lower case) to its spelling; C{in:sid:ROOM}: the nicks of that server's
    members in that room. Both expire with the server's heartbeat.
  - C{guests}: a counter that hands out blocks of guest numbers.

Channels: C{room:ROOM} carries C{"sid\\n"} and a line for a room (the
publishing server has already delivered it to its own members);
C{server:sid} carries C{"nick\\n"} and a private line for one of that
server's members.

Reads go over the live servers only (those whose time has not run out), so
a dead server's members vanish from C{/who} and C{/rooms} at once, and its
keys expire by themselves.
"""

from __future__ import annotations

PREFIX = "chat:"
"""The default prefix of every key and channel."""

_COMMON = b"""
local P = ARGV[1]
local function now()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function live()
  return redis.call('ZRANGEBYSCORE', P .. 'servers', '(' .. now(), '+inf')
end
local function ownerOf(value)
  if not value then return nil end
  return string.match(value, '^(%S+) ')
end
local function spelling(room, given)
  for _, sid in ipairs(live()) do
    local name = redis.call('HGET', P .. 'rooms:' .. sid, room)
    if name then return name end
  end
  return given
end
local function addTo(sid, ttl, room, name, nick)
  local set = P .. 'in:' .. sid .. ':' .. room
  redis.call('HSET', P .. 'rooms:' .. sid, room, name)
  redis.call('SADD', set, nick)
  redis.call('PEXPIRE', P .. 'rooms:' .. sid, ttl)
  redis.call('PEXPIRE', set, ttl)
end
local function removeFrom(sid, room, nick)
  if room == '' then return end
  local set = P .. 'in:' .. sid .. ':' .. room
  redis.call('SREM', set, nick)
  if redis.call('SCARD', set) == 0 then
    redis.call('HDEL', P .. 'rooms:' .. sid, room)
  end
end
"""

ENTER = (
    _COMMON
    + b"""
-- P, sid, ttl, nick key, nick, room key, room: claim the nick, enter the room.
local sid, ttl = ARGV[2], ARGV[3]
local key = P .. 'nick:' .. ARGV[4]
local current = redis.call('GET', key)
if current and ownerOf(current) ~= sid then return {0} end
redis.call('SET', key, sid .. ' ' .. ARGV[5], 'PX', ttl)
local name = spelling(ARGV[6], ARGV[7])
addTo(sid, ttl, ARGV[6], name, ARGV[5])
return {1, name}
"""
)

JOIN = (
    _COMMON
    + b"""
-- P, sid, ttl, nick, old room key, room key, room: move a member.
local sid, ttl, nick = ARGV[2], ARGV[3], ARGV[4]
removeFrom(sid, ARGV[5], nick)
local name = spelling(ARGV[6], ARGV[7])
addTo(sid, ttl, ARGV[6], name, nick)
return name
"""
)

RENAME = (
    _COMMON
    + b"""
-- P, sid, ttl, old key, old nick, new key, new nick, room key: 1 or 0 (taken).
local sid, ttl = ARGV[2], ARGV[3]
local new = P .. 'nick:' .. ARGV[6]
local current = redis.call('GET', new)
if current and ownerOf(current) ~= sid then return 0 end
redis.call('SET', new, sid .. ' ' .. ARGV[7], 'PX', ttl)
if ARGV[4] ~= ARGV[6] then
  local old = P .. 'nick:' .. ARGV[4]
  if ownerOf(redis.call('GET', old)) == sid then redis.call('DEL', old) end
end
if ARGV[8] ~= '' then
  local set = P .. 'in:' .. sid .. ':' .. ARGV[8]
  redis.call('SREM', set, ARGV[5])
  redis.call('SADD', set, ARGV[7])
  redis.call('PEXPIRE', set, ttl)
end
return 1
"""
)

LEAVE = (
    _COMMON
    + b"""
-- P, sid, nick key, nick, room key: give up a nick (if this server's) and room.
local sid = ARGV[2]
local key = P .. 'nick:' .. ARGV[3]
if ownerOf(redis.call('GET', key)) == sid then redis.call('DEL', key) end
removeFrom(sid, ARGV[5], ARGV[4])
return 1
"""
)

MEMBERS = (
    _COMMON
    + b"""
-- P, room key: the nicks in the room on every live server.
local nicks = {}
for _, sid in ipairs(live()) do
  for _, nick in ipairs(redis.call('SMEMBERS', P .. 'in:' .. sid .. ':' .. ARGV[2])) do
    table.insert(nicks, nick)
  end
end
return nicks
"""
)

ROOMS = (
    _COMMON
    + b"""
-- P: room, count, room, count, ... over every live server.
local counts, names, order = {}, {}, {}
for _, sid in ipairs(live()) do
  local rooms = redis.call('HGETALL', P .. 'rooms:' .. sid)
  for i = 1, #rooms, 2 do
    local room = rooms[i]
    local n = redis.call('SCARD', P .. 'in:' .. sid .. ':' .. room)
    if n > 0 then
      if not counts[room] then
        counts[room] = 0
        names[room] = rooms[i + 1]
        table.insert(order, room)
      end
      counts[room] = counts[room] + n
    end
  end
end
local reply = {}
for _, room in ipairs(order) do
  table.insert(reply, names[room])
  table.insert(reply, counts[room])
end
return reply
"""
)

PRIVATE = (
    _COMMON
    + b"""
-- P, nick key, line: to the server holding the nick; its spelling, or nil.
local current = redis.call('GET', P .. 'nick:' .. ARGV[2])
if not current then return false end
local sid, nick = string.match(current, '^(%S+) (.*)$')
local payload = nick .. '\\n' .. ARGV[3]
if redis.call('PUBLISH', P .. 'server:' .. sid, payload) == 0 then return false end
return nick
"""
)

HEARTBEAT = (
    _COMMON
    + b"""
-- P, sid, ttl, room count, then per room: key, name, n, n nicks; then pairs
-- of nick key, nick. Keeps the server alive and rewrites its part of the
-- chat from what it holds; returns the nicks another server holds now.
local sid, ttl = ARGV[2], tonumber(ARGV[3])
local t = now()
redis.call('ZADD', P .. 'servers', t + ttl, sid)
redis.call('ZREMRANGEBYSCORE', P .. 'servers', '-inf', t)
local rooms = P .. 'rooms:' .. sid
for _, room in ipairs(redis.call('HKEYS', rooms)) do
  redis.call('DEL', P .. 'in:' .. sid .. ':' .. room)
end
redis.call('DEL', rooms)
local i = 5
for _ = 1, tonumber(ARGV[4]) do
  local room, name, n = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  i = i + 3
  if n > 0 then
    local set = P .. 'in:' .. sid .. ':' .. room
    redis.call('HSET', rooms, room, name)
    -- In slices: unpack() has a stack limit of a few thousand values.
    for first = i, i + n - 1, 1000 do
      redis.call('SADD', set, unpack(ARGV, first, math.min(first + 999, i + n - 1)))
    end
    redis.call('PEXPIRE', set, ttl)
  end
  i = i + n
end
redis.call('PEXPIRE', rooms, ttl)
local conflicts = {}
while i < #ARGV do
  local key, nick = P .. 'nick:' .. ARGV[i], ARGV[i + 1]
  local current = redis.call('GET', key)
  if current and ownerOf(current) ~= sid then
    table.insert(conflicts, nick)
  else
    redis.call('SET', key, sid .. ' ' .. nick, 'PX', ttl)
  end
  i = i + 2
end
return conflicts
"""
)

GOODBYE = (
    _COMMON
    + b"""
-- P, sid, nick keys...: a server stopping gives up everything it holds.
local sid = ARGV[2]
local rooms = P .. 'rooms:' .. sid
for _, room in ipairs(redis.call('HKEYS', rooms)) do
  redis.call('DEL', P .. 'in:' .. sid .. ':' .. room)
end
redis.call('DEL', rooms)
redis.call('ZREM', P .. 'servers', sid)
for i = 3, #ARGV do
  local key = P .. 'nick:' .. ARGV[i]
  if ownerOf(redis.call('GET', key)) == sid then redis.call('DEL', key) end
end
return 1
"""
)
