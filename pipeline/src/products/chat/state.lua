-- The random chat's states, changed only here, atomically (Redis runs a script alone).
-- ARGV: op, now (ms), op key ('' = none), then the op's arguments.
-- Keys (prefix herald:chat:): st:<u> hash {s = 'q' | 'c', p = partner, n = chat, t = since};
-- queue zset (user -> join ms); chatting set; pair:<n> hash {a, b}; active zset
-- (chat -> last message ms); hist:<u> list of the last 10 chats' 'partner:how';
-- reported:<u> set; ban:<u> (reason, with its expiry); chats:<u> count; cool:<u> the
-- /chat cooldown (its expiry); last:<u>
-- 'n:partner' of the last chat (an hour, for a late /report); ev:<n> evidence;
-- op:<key> an op's cached result, so a redelivered update gets the same answer.
-- Ids stay strings (cjson would print large numbers in floating point).
local P = 'herald:chat:'
local op, now, opkey = ARGV[1], tonumber(ARGV[2]), ARGV[3]

if opkey ~= '' then
  local done = redis.call('GET', P .. 'op:' .. opkey)
  if done then return done end
end

local function state(u)
  local st = redis.call('HMGET', P .. 'st:' .. u, 's', 'p', 'n')
  return st[1], st[2], st[3]
end

local function online()
  return redis.call('ZCARD', P .. 'queue') + redis.call('SCARD', P .. 'chatting')
end

-- u reported c, or skipped c in one of u's last 10 chats
local function avoids(u, c)
  if redis.call('SISMEMBER', P .. 'reported:' .. u, c) == 1 then return true end
  for _, h in ipairs(redis.call('LRANGE', P .. 'hist:' .. u, 0, 9)) do
    if h == c .. ':skip' then return true end
  end
  return false
end

local function remember(u, partner, how)
  redis.call('LPUSH', P .. 'hist:' .. u, partner .. ':' .. how)
  redis.call('LTRIM', P .. 'hist:' .. u, 0, 9)
end

-- ends chat n; `by` ended it ('' = timeout, block, ban) with `how` (skip, stop, report)
local function finish(n, by, how)
  local pair = redis.call('HMGET', P .. 'pair:' .. n, 'a', 'b')
  local a, b = pair[1], pair[2]
  if not a then return nil end
  for _, u in ipairs({a, b}) do
    local _, _, m = state(u)
    if m == n then redis.call('DEL', P .. 'st:' .. u) end
    redis.call('SREM', P .. 'chatting', u)
  end
  redis.call('DEL', P .. 'pair:' .. n)
  redis.call('ZREM', P .. 'active', n)
  redis.call('SET', P .. 'last:' .. a, n .. ':' .. b, 'EX', 3600)
  redis.call('SET', P .. 'last:' .. b, n .. ':' .. a, 'EX', 3600)
  redis.call('EXPIRE', P .. 'ev:' .. n, 3600)
  if by == a or by == b then
    local other = (by == a) and b or a
    remember(by, other, how)
    remember(other, by, 'left')
    if how == 'report' then redis.call('SADD', P .. 'reported:' .. by, other) end
  else
    remember(a, b, how)
    remember(b, a, how)
  end
  return {a = a, b = b}
end

-- u searches: paired, queued, or refused (banned, too soon after the last search, the
-- queue full at `cap` live entries); `cooldown` ms until u may search again (0 = none)
local function join(u, ttl, cap, cooldown)
  if redis.call('EXISTS', P .. 'ban:' .. u) == 1 then return {s = 'banned'} end
  local s, p, n = state(u)
  if s == 'c' then return {s = 'in_chat', p = p, n = n} end
  if s == 'q' then return {s = 'still_queued', online = online()} end
  if cooldown > 0 then
    local wait = redis.call('PTTL', P .. 'cool:' .. u)
    if wait > 0 then return {s = 'too_soon', wait = wait} end
    redis.call('SET', P .. 'cool:' .. u, '1', 'PX', cooldown)
  end
  local candidates = redis.call('ZRANGEBYSCORE', P .. 'queue', now - ttl, '+inf', 'LIMIT', 0, 200)
  for _, c in ipairs(candidates) do
    if c ~= u and not avoids(u, c) and not avoids(c, u) and redis.call('EXISTS', P .. 'ban:' .. c) == 0 then
      local chat = tostring(redis.call('INCR', P .. 'seq'))
      redis.call('ZREM', P .. 'queue', c)
      redis.call('HSET', P .. 'st:' .. u, 's', 'c', 'p', c, 'n', chat, 't', now)
      redis.call('HSET', P .. 'st:' .. c, 's', 'c', 'p', u, 'n', chat, 't', now)
      redis.call('SADD', P .. 'chatting', u, c)
      redis.call('HSET', P .. 'pair:' .. chat, 'a', c, 'b', u)
      redis.call('ZADD', P .. 'active', now, chat)
      redis.call('INCR', P .. 'chats:' .. u)
      redis.call('INCR', P .. 'chats:' .. c)
      return {s = 'paired', p = c, n = chat, online = online()}
    end
  end
  if cap > 0 and redis.call('ZCOUNT', P .. 'queue', now - ttl, '+inf') >= cap then
    -- a refused search does not count against the cooldown
    redis.call('DEL', P .. 'cool:' .. u)
    return {s = 'queue_full'}
  end
  redis.call('ZADD', P .. 'queue', now, u)
  redis.call('HSET', P .. 'st:' .. u, 's', 'q', 't', now)
  return {s = 'queued', online = online()}
end

-- u leaves the queue or their chat
local function leave(u, how)
  local s, p, n = state(u)
  if s == 'q' then
    redis.call('ZREM', P .. 'queue', u)
    redis.call('DEL', P .. 'st:' .. u)
    return {s = 'left_queue'}
  end
  if s == 'c' then
    finish(n, u, how)
    return {s = 'ended', p = p, n = n}
  end
  return {s = 'idle'}
end

local result
if op == 'join' then
  result = join(ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7]))
elseif op == 'leave' then
  result = leave(ARGV[4], 'stop')
elseif op == 'next' then
  local left = leave(ARGV[4], 'skip')
  result = join(ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6]), 0)
  result.ended_p, result.ended_n = left.p, left.n
elseif op == 'report' then
  local u = ARGV[4]
  local s, p, n = state(u)
  if s == 'c' then
    finish(n, u, 'report')
  else
    local last = redis.call('GET', P .. 'last:' .. u)
    if last then
      n, p = string.match(last, '^(%d+):(.+)$')
      redis.call('SADD', P .. 'reported:' .. u, p)
    end
  end
  if p then
    local id = tostring(redis.call('INCR', P .. 'reports:seq'))
    result = {s = 'reported', p = p, n = n, id = id, ended = (s == 'c') and '1' or nil,
              evidence = redis.call('LRANGE', P .. 'ev:' .. n, 0, 49)}
    redis.call('LPUSH', P .. 'reports', cjson.encode({id = id, by = u, user = p, chat = n, at = ARGV[2]}))
    redis.call('LTRIM', P .. 'reports', 0, 999)
  else
    result = {s = 'idle'}
  end
elseif op == 'end' then
  -- end chat n (timeout), or the chat of user ARGV[5] (blocked the bot)
  local n = ARGV[4]
  if n == '' then
    local s, _, m = state(ARGV[5])
    if s == 'c' then n = m end
  end
  local ended = (n ~= '') and finish(n, '', ARGV[6]) or nil
  if ended then result = {s = 'ended', a = ended.a, b = ended.b, n = n} else result = {s = 'gone'} end
elseif op == 'expire' then
  -- a queue entry of ARGV[4] that joined at ARGV[5]
  local u = ARGV[4]
  local s = state(u)
  if s == 'q' and redis.call('ZSCORE', P .. 'queue', u) == ARGV[5] then
    redis.call('ZREM', P .. 'queue', u)
    redis.call('DEL', P .. 'st:' .. u)
    result = {s = 'expired'}
  else
    result = {s = 'gone'}
  end
elseif op == 'ban' then
  local u, secs, why = ARGV[4], tonumber(ARGV[5]), ARGV[6]
  redis.call('SET', P .. 'ban:' .. u, why, 'EX', secs)
  local left = leave(u, 'ban')
  result = {s = 'banned', p = left.p, n = left.n}
elseif op == 'counts' then
  result = {s = 'counts', queued = redis.call('ZCOUNT', P .. 'queue', now - tonumber(ARGV[4]), '+inf'),
            chatting = redis.call('SCARD', P .. 'chatting')}
elseif op == 'unban' then
  result = {s = (redis.call('DEL', P .. 'ban:' .. ARGV[4]) == 1) and 'unbanned' or 'not_banned'}
else
  return redis.error_reply('unknown op ' .. op)
end

local encoded = cjson.encode(result)
if opkey ~= '' then redis.call('SET', P .. 'op:' .. opkey, encoded, 'EX', 86400) end
return encoded
