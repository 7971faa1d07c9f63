import json, os, re, hashlib
F='/work/shared/fixtures/'
def put(target, data):
    d=f'corpus/{target}'; os.makedirs(d, exist_ok=True)
    if isinstance(data,str): data=data.encode()
    open(f'{d}/{hashlib.sha1(data).hexdigest()[:16]}','wb').write(data)
def frames_of(raw):
    dec=json.JSONDecoder(); i=0; out=[]
    while i < len(raw):
        while i < len(raw) and raw[i] in ' \n\r\t,[]': i+=1
        if i>=len(raw): break
        v,i=dec.raw_decode(raw,i); out.append(v)
    return out
for name in ['create-pool.json','init.json','transactions.json']:
    for fr in frames_of(open(F+'token_events_raw/solana_raydium_helius_ws/'+name).read()):
        s=json.dumps(fr,separators=(',',':'))
        if len(s) < 64*1024: put('solana_frame', s)
# channel posts: each message of the call channels file, as text and as a channel_post
msgs=open(F+'token_events_raw/telegram_call_channels/executer-sol_bot-token-finder_messages.txt').read()
parts=[p.split('\n',1)[1].strip() if '\n' in p else '' for p in re.split(r'^-----', msgs, flags=re.M)[1:]]
for i,t in enumerate(p for p in parts if p):
    put('channel_post', t)
    put('channel_post', json.dumps({"message_id":i+1,"chat":{"id":-1001,"title":"Calls","type":"channel"},"date":1,"text":t}))
for line in open(F+'telegram_updates.jsonl'):
    if line.strip():
        put('commands', line.strip())
        put('channel_post', line.strip())
        u=json.loads(line)
        for k in ('message','channel_post','edited_message'):
            t=u.get(k,{}).get('text')
            if t: put('commands', t)
for t in ['/filters winrate 60','/filters fdv 10k 1m','/filters chains solana,bsc','f:wr:60','f:ch:+solana','f:minfdv:100000','c:2','/start ref_42','/trivia science easy','/calls 2','/buy 3','/admin flags']:
    put('commands', t)
for fr in [
  {"type":"call","id":"e1","chain":"sol","token":"8neDcPFwrvRNM9WXHCtHwTcKZrVm6wr4cs4PSN9Hpump","symbol":"kora","name":"Kora","price_usd":0.0225,"fdv_usd":258000,"caller_id":"c1","caller_name":"Alpha","caller_stats":{"win_rate":0.5,"avg_gain_pct":120,"calls":10},"ts_ms":1},
  {"type":"price","chain":"bsc","token":"0xe9e7CEA3DedcA5984780Bafc599bD69ADd087D56","price_usd":1.0,"ts_ms":2},
  {"type":"heartbeat","ts_ms":3}]:
    put('feed_frame', json.dumps(fr))
    put('schemas', json.dumps(fr))
for t in ['<b>$PEPE</b> on bsc\n<code>0xabc</code>','a < b & c','<a href="https://t.me/x">x</a>','<b>open','&lt;3 &#128512;','<pre><code class="language-rust">x</code></pre>']:
    put('html', t)
put('schemas', json.dumps({"v":1,"update_id":1,"kind":"message","update":{"update_id":1},"user_id":5,"chat_id":5}))
put('schemas', json.dumps({"v":2,"idempotency_key":"k","chat_id":5,"content":{"method":"send_message","text":"hi"},"priority":"reply","origin_ts_ms":1}))
put('bundle', '{}')
