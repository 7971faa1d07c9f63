-- The relay's outbox: per recipient, the messages waiting to be copied to them.
-- ARGV[1] = op. Prefix herald:chat:; ob:<r> zset (item JSON, scored by message id),
-- due zset (recipient -> when to look again), inflight:<r> (the batch being sent),
-- pace:<r> (set while a relay to r is less than a pace old), done:<from>:<msg>.
local P = 'herald:chat:'
local op = ARGV[1]

if op == 'enqueue' then
  -- sender, message id, recipient, item, chat, now: once per message
  local from, msg, r, item, n, now = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], tonumber(ARGV[7])
  if not redis.call('SET', P .. 'done:' .. from .. ':' .. msg, '1', 'NX', 'EX', 86400) then return 0 end
  redis.call('ZADD', P .. 'ob:' .. r, tonumber(msg), item)
  redis.call('LPUSH', P .. 'ev:' .. n, from .. ':' .. msg)
  redis.call('LTRIM', P .. 'ev:' .. n, 0, 19)
  redis.call('EXPIRE', P .. 'ev:' .. n, 86400)
  redis.call('ZADD', P .. 'active', 'XX', now, n)
  redis.call('ZADD', P .. 'due', 'NX', now, r)
  return 1
elseif op == 'take' then
  -- recipient, now, album wait, pace: the next batch to send, or nothing yet
  local r, now, wait, pace = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
  local inflight = redis.call('GET', P .. 'inflight:' .. r)
  if inflight then return inflight end
  local left = redis.call('PTTL', P .. 'pace:' .. r)
  if left > 0 then
    redis.call('ZADD', P .. 'due', now + left, r)
    return false
  end
  local raw = redis.call('ZRANGE', P .. 'ob:' .. r, 0, 99)
  if #raw == 0 then
    redis.call('ZREM', P .. 'due', r)
    return false
  end
  local items, latest = {}, {}
  for i, s in ipairs(raw) do
    items[i] = cjson.decode(s)
    local g = items[i].g
    if g then latest[g] = math.max(latest[g] or 0, tonumber(items[i].t)) end
  end
  local function open(it) return it.g and now - latest[it.g] < wait end
  local first = items[1]
  if open(first) then
    redis.call('ZADD', P .. 'due', latest[first.g] + wait, r)
    return false
  end
  -- consecutive messages of one sender, none a reply or alone, no album still arriving
  local batch, taken = {first}, {raw[1]}
  if not first.r and not first.s then
    for i = 2, #items do
      local it = items[i]
      if it.f ~= first.f or it.r or it.s or open(it) then break end
      batch[#batch + 1] = it
      taken[#taken + 1] = raw[i]
    end
  end
  redis.call('ZREM', P .. 'ob:' .. r, unpack(taken))
  local out = cjson.encode(batch)
  redis.call('SET', P .. 'inflight:' .. r, out, 'EX', 86400)
  redis.call('SET', P .. 'pace:' .. r, '1', 'PX', pace)
  redis.call('ZADD', P .. 'due', now + pace, r)
  return out
elseif op == 'sent' then
  redis.call('DEL', P .. 'inflight:' .. ARGV[2])
  return 1
end
return redis.error_reply('unknown op ' .. op)
