-- The relay's outbox: per recipient, the messages waiting to be copied to them.
-- ARGV[1] = op. Prefix herald:chat:; ob:<r> zset (item JSON, scored by message id),
-- due zset (recipient -> when to look again), inflight:<r> (the batch being sent, with
-- its idempotency key), sent:<r> (set once it is in the stream: wait for its report),
-- pace:<r> (set while the last copy to r is less than a pace old), done:<from>:<msg>,
-- reported:<key> (a report handled), ev:<n> (chat n's delivered messages, evidence).
--
-- One batch per recipient is in flight until the bot's report on it arrives: the next
-- cannot overtake it, whatever Telegram answers (429s, retries), so a chat's messages
-- reach the partner in the order they were sent.
local P = 'herald:chat:'
local op = ARGV[1]

-- the idempotency key of a batch for recipient r: its sender, first message, and
-- whether it is a message sent again alone after a partial copy
local function key_of(first, r)
  local k = 'chat:' .. first.f .. ':' .. first.m .. ':' .. r
  if first.a then k = k .. ':alone' end
  return k
end

if op == 'enqueue' then
  -- sender, message id, recipient, item, chat, now: once per message
  local from, msg, r, item, n, now = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], tonumber(ARGV[7])
  if not redis.call('SET', P .. 'done:' .. from .. ':' .. msg, '1', 'NX', 'EX', 86400) then return 0 end
  redis.call('ZADD', P .. 'ob:' .. r, tonumber(msg), item)
  redis.call('ZADD', P .. 'active', 'XX', now, n)
  redis.call('ZADD', P .. 'due', 'NX', now, r)
  return 1
elseif op == 'take' then
  -- recipient, now, album wait, pace, report wait: the next batch to send
  -- ({"key":…,"items":[…]}), the one in flight again (not yet in the stream, or its
  -- report overdue), or nothing yet
  local r, now, wait, pace, report_wait = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
  local inflight = redis.call('GET', P .. 'inflight:' .. r)
  if inflight then
    local left = redis.call('PTTL', P .. 'sent:' .. r)
    if left > 0 then
      redis.call('ZADD', P .. 'due', now + left, r)
      return false
    end
    redis.call('ZADD', P .. 'due', now + report_wait, r)
    return inflight
  end
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
  local function open(it) return it.g and not it.a and now - latest[it.g] < wait end
  local first = items[1]
  if open(first) then
    redis.call('ZADD', P .. 'due', latest[first.g] + wait, r)
    return false
  end
  -- consecutive messages of one sender, none a reply or alone, no album still arriving
  local batch, taken = {first}, {raw[1]}
  if not first.r and not first.s and not first.a then
    for i = 2, #items do
      local it = items[i]
      if it.f ~= first.f or it.r or it.s or it.a or open(it) then break end
      batch[#batch + 1] = it
      taken[#taken + 1] = raw[i]
    end
  end
  redis.call('ZREM', P .. 'ob:' .. r, unpack(taken))
  local out = cjson.encode({key = key_of(first, r), items = batch})
  redis.call('SET', P .. 'inflight:' .. r, out, 'EX', 86400)
  redis.call('ZADD', P .. 'due', now + report_wait, r)
  return out
elseif op == 'sent' then
  -- recipient, report wait: the batch is in the stream; wait for its report
  redis.call('SET', P .. 'sent:' .. ARGV[2], '1', 'PX', tonumber(ARGV[3]))
  return 1
elseif op == 'reported' then
  -- recipient, key, now, pace, delivered ("from:msg" JSON list), again (items JSON
  -- list): the bot answered on the batch `key`. Its delivered messages become the
  -- chat's evidence, `again` goes back to the front of the outbox, and the next batch
  -- may go a pace from now. Once per key; a report on another batch changes nothing.
  local r, key, now, pace = ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
  if not redis.call('SET', P .. 'reported:' .. key, '1', 'NX', 'EX', 86400) then return 0 end
  local inflight = redis.call('GET', P .. 'inflight:' .. r)
  local batch = inflight and cjson.decode(inflight)
  if not batch or batch.key ~= key then return 0 end
  local n = batch.items[1].n
  if n then
    for _, d in ipairs(cjson.decode(ARGV[6])) do redis.call('LPUSH', P .. 'ev:' .. n, d) end
    redis.call('LTRIM', P .. 'ev:' .. n, 0, 49)
    -- a chat's evidence lives a day; once the chat ended, the hour `finish` gave it
    if redis.call('TTL', P .. 'ev:' .. n) < 0 then redis.call('EXPIRE', P .. 'ev:' .. n, 86400) end
  end
  for _, it in ipairs(cjson.decode(ARGV[7])) do
    redis.call('ZADD', P .. 'ob:' .. r, tonumber(it.m), cjson.encode(it))
  end
  redis.call('DEL', P .. 'inflight:' .. r, P .. 'sent:' .. r)
  redis.call('SET', P .. 'pace:' .. r, '1', 'PX', pace)
  redis.call('ZADD', P .. 'due', now + pace, r)
  return 1
end
return redis.error_reply('unknown op ' .. op)
