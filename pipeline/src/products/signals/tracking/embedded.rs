//! The embedded store: fjall, a maintained pure-Rust LSM-tree key-value engine with
//! crash recovery (a write-ahead journal; a batch is atomic across keyspaces and durable
//! once its commit with `SyncAll` returns), so the main job needs no database server.
//!
//! Why an LSM-tree: tracked calls are write-heavy (100 recipients per signal, each call
//! indexed by token and by user) and the by-user index takes its inserts at random
//! places. A B-tree (redb, this store's first engine) rewrites a random page per insert
//! once it outgrows its cache: 28,000 calls/s at 10M calls. An LSM-tree appends to its
//! journal and sorts in memory, then merges in the background.
//!
//! Writes go through one writer thread that commits whatever is queued in one batch
//! (group commit): every caller still waits for a durable commit, but a burst of writes
//! costs one fsync, not one each.
//!
//! Keyspaces (keys are bytes that sort as their parts do, see [`keys`]):
//! - `calls`: `<chain>:<token> 0x00 user_id` -> the call as made ([`Row`], postcard)
//! - `progress`: the same key -> the call's latest multiples and alerts ([`Reached`]),
//!   written blind (no read before the write, what an LSM-tree does best) and merged
//!   over the call when read
//! - `by_user`: `user_id (u64::MAX - called_at_ms) <chain>:<token>` -> nothing
//!   (`/calls`, newest first)
//!
//! Two inserts a call: retention scans `calls` hourly instead of keeping a time index (a
//! third insert on every call to save a scan an hour).

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};
use futures::stream::{self, BoxStream, StreamExt};
use herald_schemas::Chain;
use serde::{Deserialize, Serialize};

use super::store::{CallStore, Progress, TrackedCall};

/// A call's value: what the key does not hold. Encoded with postcard behind a version
/// byte (about 60 bytes a call against 250 as JSON; decoding 10M at start-up is seconds).
#[derive(Serialize, Deserialize)]
struct Row {
    chat_id: i64,
    symbol: Option<String>,
    caller_ids: Vec<String>,
    entry_price_usd: f64,
    called_at_ms: u64,
    best_multiple: f64,
    last_multiple: f64,
    alerted: u8,
}

const ROW_VERSION: u8 = 1;

impl Row {
    fn of(c: &TrackedCall) -> Row {
        Row {
            chat_id: c.chat_id,
            symbol: c.symbol.clone(),
            caller_ids: c.caller_ids.clone(),
            entry_price_usd: c.entry_price_usd,
            called_at_ms: c.called_at_ms,
            best_multiple: c.best_multiple,
            last_multiple: c.last_multiple,
            alerted: c.alerted,
        }
    }

    fn encode(&self) -> anyhow::Result<Vec<u8>> {
        Ok(postcard::to_extend(self, vec![ROW_VERSION])?)
    }

    fn decode(bytes: &[u8]) -> anyhow::Result<Row> {
        match bytes.split_first() {
            Some((&ROW_VERSION, rest)) => Ok(postcard::from_bytes(rest)?),
            Some((v, _)) => anyhow::bail!("stored call has version {v}; this build reads {ROW_VERSION}"),
            None => anyhow::bail!("stored call is empty"),
        }
    }

    fn into_call(self, token_key: &[u8], user_id: i64) -> TrackedCall {
        let token_key = String::from_utf8_lossy(token_key);
        let (chain, token) = token_key.split_once(':').unwrap_or(("", &token_key));
        TrackedCall {
            user_id,
            chat_id: self.chat_id,
            chain: Chain::from(chain),
            token: token.to_string(),
            symbol: self.symbol,
            caller_ids: self.caller_ids,
            entry_price_usd: self.entry_price_usd,
            called_at_ms: self.called_at_ms,
            best_multiple: self.best_multiple,
            last_multiple: self.last_multiple,
            alerted: self.alerted,
        }
    }
}

/// A write waiting for the next group commit.
enum Write {
    Insert(Vec<TrackedCall>),
    Progress(Vec<Progress>),
}

type Reply = tokio::sync::oneshot::Sender<Result<(), String>>;

/// Order-preserving key encodings.
mod keys {
    /// An i64 as 8 bytes that sort as the numbers do (sign bit flipped, big-endian).
    pub fn int(v: i64) -> [u8; 8] {
        ((v as u64) ^ (1 << 63)).to_be_bytes()
    }

    fn int_from(b: &[u8]) -> Option<i64> {
        Some((u64::from_be_bytes(b.try_into().ok()?) ^ (1 << 63)) as i64)
    }

    /// `calls` key: the token key, a 0 byte (token keys are text, so it ends them), the user.
    pub fn call(token_key: &[u8], user_id: i64) -> Vec<u8> {
        [token_key, &[0], &int(user_id)].concat()
    }

    /// `(token key, user)` of a `calls` key.
    pub fn split_call(key: &[u8]) -> Option<(&[u8], i64)> {
        let (token_key, rest) = key.split_at_checked(key.len().checked_sub(9)?)?;
        Some((token_key, int_from(rest.get(1..)?)?))
    }

    /// `by_user` key: the user, then newest first, then the token key.
    pub fn by_user(user_id: i64, called_at_ms: u64, token_key: &[u8]) -> Vec<u8> {
        [&int(user_id)[..], &(u64::MAX - called_at_ms).to_be_bytes(), token_key].concat()
    }

    /// The token key of a `by_user` key.
    pub fn by_user_token(key: &[u8]) -> Option<&[u8]> {
        key.get(16..)
    }
}

/// The open database and its keyspaces.
struct Db {
    db: Database,
    calls: Keyspace,
    progress: Keyspace,
    by_user: Keyspace,
}

/// What a call reached since it was made: the `progress` keyspace's value.
#[derive(Serialize, Deserialize)]
struct Reached {
    best_multiple: f64,
    last_multiple: f64,
    alerted: u8,
}

impl Reached {
    fn encode(&self) -> anyhow::Result<Vec<u8>> {
        Ok(postcard::to_extend(self, vec![ROW_VERSION])?)
    }

    /// Lays this over the call as made.
    fn apply(bytes: &[u8], row: &mut Row) -> anyhow::Result<()> {
        let reached: Reached = match bytes.split_first() {
            Some((&ROW_VERSION, rest)) => postcard::from_bytes(rest)?,
            _ => anyhow::bail!("stored progress has an unknown version"),
        };
        row.best_multiple = reached.best_multiple;
        row.last_multiple = reached.last_multiple;
        row.alerted = reached.alerted;
        Ok(())
    }
}

/// A fjall database (a directory) holding tracked calls.
///
/// ```no_run
/// use herald_pipeline::products::signals::tracking::{embedded::EmbeddedStore, store::CallStore};
/// # async fn demo() -> anyhow::Result<()> {
/// let store = EmbeddedStore::open(std::path::Path::new("herald-data/calls"))?;
/// let (page, total) = store.for_user(42, 0, 10).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct EmbeddedStore {
    db: Arc<Db>,
    writes: std::sync::mpsc::Sender<(Write, Reply)>,
}

/// The writer thread: one batch per run of queued writes. It holds the database weakly,
/// so dropping the last store handle closes it at once.
fn writer(db: std::sync::Weak<Db>, queue: std::sync::mpsc::Receiver<(Write, Reply)>) {
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while let Ok(next) = queue.try_recv() {
            batch.push(next);
            if batch.len() >= 4096 {
                break;
            }
        }
        let result = match db.upgrade() {
            Some(db) => apply(&db, batch.iter().map(|(w, _)| w)).map_err(|e| format!("{e:#}")),
            None => Err("the store was closed".to_string()),
        };
        for (_, reply) in batch {
            let _ = reply.send(result.clone());
        }
    }
}

/// Applies a run of writes as one atomic, synced batch. Calls inserted earlier in the
/// run are known from `new_keys`, since the batch is not visible before its commit.
fn apply<'a>(db: &Db, writes: impl Iterator<Item = &'a Write>) -> anyhow::Result<()> {
    let mut new_keys = HashSet::new();
    let mut batch = db.db.batch().durability(Some(PersistMode::SyncAll));
    for w in writes {
        match w {
            Write::Insert(new) => {
                for c in new {
                    let token_key = c.token_key();
                    let key = keys::call(token_key.as_bytes(), c.user_id);
                    // stored already (rare: the tracker inserts new calls): keep it; a
                    // miss costs a bloom-filter probe per table, no read
                    if new_keys.contains(&key) || db.calls.contains_key(&key)? {
                        continue;
                    }
                    batch.insert(&db.by_user, keys::by_user(c.user_id, c.called_at_ms, token_key.as_bytes()), []);
                    batch.insert(&db.calls, key.clone(), Row::of(c).encode()?);
                    new_keys.insert(key);
                }
            }
            Write::Progress(progress) => {
                for p in progress {
                    let reached = Reached {
                        best_multiple: p.best_multiple,
                        last_multiple: p.last_multiple,
                        alerted: p.alerted,
                    };
                    batch.insert(&db.progress, keys::call(p.token_key.as_bytes(), p.user_id), reached.encode()?);
                }
            }
        }
    }
    batch.commit()?;
    Ok(())
}

impl EmbeddedStore {
    /// Opens (or creates) the store in the directory `path`.
    ///
    /// Errors: `path` is a file (a redb store of an earlier version: the message says how
    /// to move on), the directory holds something else, or another process has it open.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        Self::open_with_cache(path, 64 << 20)
    }

    /// [`Self::open`] with a block cache of `cache_bytes` (fewer reads for `/calls` and
    /// checkpoints when the store outgrows it).
    pub fn open_with_cache(path: &Path, cache_bytes: usize) -> anyhow::Result<Self> {
        anyhow::ensure!(
            !path.is_file(),
            "{} is a file: a tracked-call store from before Herald moved to fjall (a redb file). \
             Move it away and point --store-path at a directory; to re-track the calls, replay the \
             TRACKED stream: `pipeline replay --stream TRACKED --since 30d --to-stage track`",
            path.display()
        );
        let db = Database::builder(path)
            .cache_size(cache_bytes as u64)
            .open()
            .map_err(|e| anyhow::anyhow!("opening the tracked-call store {}: {e}", path.display()))?;
        let calls = db.keyspace("calls.v4", KeyspaceCreateOptions::default)?;
        let progress = db.keyspace("progress.v4", KeyspaceCreateOptions::default)?;
        let by_user = db.keyspace("by_user.v4", KeyspaceCreateOptions::default)?;
        let db = Arc::new(Db {
            db,
            calls,
            progress,
            by_user,
        });
        let (writes, queue) = std::sync::mpsc::channel();
        let writer_db = Arc::downgrade(&db);
        std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || writer(writer_db, queue))?;
        Ok(EmbeddedStore { db, writes })
    }

    async fn write(&self, w: Write) -> anyhow::Result<()> {
        let (reply, done) = tokio::sync::oneshot::channel();
        self.writes
            .send((w, reply))
            .map_err(|_| anyhow::anyhow!("the store's writer thread is gone"))?;
        done.await?.map_err(|e| anyhow::anyhow!(e))
    }

    async fn blocking<T: Send + 'static>(&self, f: impl FnOnce(&Db) -> anyhow::Result<T> + Send + 'static) -> anyhow::Result<T> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || f(&db)).await?
    }
}

/// Every stored call with its progress, in key order, with its key: a merge join of
/// `calls` and `progress` (both sorted by the same key).
fn all_calls(db: &Db) -> impl Iterator<Item = anyhow::Result<(Vec<u8>, Row)>> + '_ {
    let mut progress = db.progress.iter().map(|g| g.into_inner()).peekable();
    db.calls.iter().map(move |guard| {
        let (k, v) = guard.into_inner()?;
        let mut row = Row::decode(&v)?;
        // progress of calls gone since (expired) sorts before this key: skip it
        while let Some(Ok((pk, _))) = progress.peek() {
            if pk.as_ref() >= k.as_ref() {
                break;
            }
            progress.next();
        }
        match progress.peek() {
            Some(Ok((pk, pv))) if pk.as_ref() == k.as_ref() => Reached::apply(pv, &mut row)?,
            Some(Err(_)) => progress.next().transpose().map(|_| ())?,
            _ => {}
        }
        Ok((k.to_vec(), row))
    })
}

/// One call by key, with its progress.
fn get_call(db: &Db, key: &[u8]) -> anyhow::Result<Option<Row>> {
    let Some(v) = db.calls.get(key)? else { return Ok(None) };
    let mut row = Row::decode(&v)?;
    if let Some(p) = db.progress.get(key)? {
        Reached::apply(&p, &mut row)?;
    }
    Ok(Some(row))
}

/// Scans `calls` in key order on a blocking thread, sending chunks of 4096 calls made at
/// or after `since_ms`.
fn scan(db: &Db, since_ms: u64, out: &tokio::sync::mpsc::Sender<anyhow::Result<Vec<TrackedCall>>>) -> anyhow::Result<()> {
    let mut chunk = Vec::with_capacity(4096);
    for entry in all_calls(db) {
        let (key, row) = entry?;
        if row.called_at_ms < since_ms {
            continue;
        }
        let (token_key, user_id) = keys::split_call(&key).ok_or_else(|| anyhow::anyhow!("malformed call key"))?;
        chunk.push(row.into_call(token_key, user_id));
        if chunk.len() == 4096 && out.blocking_send(Ok(std::mem::take(&mut chunk))).is_err() {
            return Ok(()); // the reader went away
        }
    }
    if !chunk.is_empty() {
        let _ = out.blocking_send(Ok(chunk));
    }
    Ok(())
}

impl CallStore for EmbeddedStore {
    async fn insert(&self, calls: Vec<TrackedCall>) -> anyhow::Result<()> {
        self.write(Write::Insert(calls)).await
    }

    async fn update_progress(&self, progress: Vec<Progress>) -> anyhow::Result<()> {
        self.write(Write::Progress(progress)).await
    }

    fn load_since(&self, since_ms: u64) -> BoxStream<'static, anyhow::Result<TrackedCall>> {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let db = self.db.clone();
        std::thread::spawn(move || {
            if let Err(e) = scan(&db, since_ms, &tx) {
                let _ = tx.blocking_send(Err(e));
            }
        });
        stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|chunk| (chunk, rx)) })
            .flat_map(|chunk| match chunk {
                Ok(calls) => stream::iter(calls.into_iter().map(Ok).collect::<Vec<_>>()),
                Err(e) => stream::iter(vec![Err(e)]),
            })
            .boxed()
    }

    async fn for_user(&self, user_id: i64, offset: usize, limit: usize) -> anyhow::Result<(Vec<TrackedCall>, usize)> {
        self.blocking(move |db| {
            let mut total = 0;
            let mut page = Vec::new();
            for guard in db.by_user.prefix(keys::int(user_id)) {
                let key = guard.key()?;
                if total >= offset && page.len() < limit {
                    let token_key = keys::by_user_token(&key).ok_or_else(|| anyhow::anyhow!("malformed by_user key"))?;
                    if let Some(row) = get_call(db, &keys::call(token_key, user_id))? {
                        page.push(row.into_call(token_key, user_id));
                    }
                }
                total += 1;
            }
            Ok((page, total))
        })
        .await
    }

    async fn expire(&self, before_ms: u64) -> anyhow::Result<u64> {
        self.blocking(move |db| {
            // find them on a snapshot (writers go on meanwhile), delete in batches of 64k
            let mut batch = db.db.batch();
            let mut removed = 0;
            for entry in all_calls(db) {
                let (key, row) = entry?;
                if row.called_at_ms >= before_ms {
                    continue;
                }
                let (token_key, user_id) = keys::split_call(&key).ok_or_else(|| anyhow::anyhow!("malformed call key"))?;
                batch.remove(&db.by_user, keys::by_user(user_id, row.called_at_ms, token_key));
                batch.remove(&db.progress, key.clone());
                batch.remove(&db.calls, key);
                removed += 1;
                if batch.len() >= 1 << 17 {
                    std::mem::replace(&mut batch, db.db.batch()).commit()?;
                }
            }
            batch.commit()?;
            db.db.persist(PersistMode::SyncAll)?;
            Ok(removed)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::{keys, EmbeddedStore};

    #[test]
    fn an_old_redb_file_is_refused_with_the_way_on() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("calls.redb");
        std::fs::write(&old, b"redb").unwrap();
        let err = EmbeddedStore::open(&old).err().expect("refused").to_string();
        assert!(err.contains("replay --stream TRACKED"), "{err}");
    }

    #[test]
    fn keys_sort_as_their_parts_and_split_back() {
        assert!(keys::int(-5) < keys::int(-1) && keys::int(-1) < keys::int(0) && keys::int(0) < keys::int(7));
        let k = keys::call(b"solana:Tok", -42);
        assert_eq!(keys::split_call(&k), Some((&b"solana:Tok"[..], -42)));
        assert!(
            keys::call(b"solana:A", i64::MAX) < keys::call(b"solana:AB", i64::MIN),
            "a token's calls stay together"
        );
        let newer = keys::by_user(7, 2_000, b"bsc:X");
        assert!(newer < keys::by_user(7, 1_000, b"bsc:X") && newer > keys::by_user(6, 0, b"bsc:X"));
        assert_eq!(keys::by_user_token(&newer), Some(&b"bsc:X"[..]));
    }
}
