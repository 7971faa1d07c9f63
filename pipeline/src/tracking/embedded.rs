//! The embedded store: redb, a maintained pure-Rust embedded database with ACID
//! transactions and crash safety (copy-on-write B-trees, a commit is durable once it
//! returns), so the main job needs no database server.
//!
//! Writes go through one writer thread that commits whatever is queued in one
//! transaction (group commit): every caller still waits for a durable commit, but a
//! burst of writes costs one fsync, not one each. The page cache is capped at 64 MiB
//! (redb's default is 1 GiB).
//!
//! Tables (tuple keys compare element by element, so ranges give the queries):
//! - `calls`: `(<chain>:<token> bytes, user_id)` -> the call ([`Row`], postcard)
//! - `by_user`: `(user_id, u64::MAX - called_at_ms, <chain>:<token>)` (`/calls`, newest first)
//!
//! Two B-tree inserts a call: retention scans `calls` hourly instead of keeping a time
//! index (a third insert on every call to save a scan an hour).

use std::path::Path;
use std::sync::Arc;

use futures::stream::{self, BoxStream, StreamExt};
use herald_schemas::Chain;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use super::store::{CallStore, Progress, TrackedCall};

/// Token keys are bytes, not `&str`: redb would check a `&str` is UTF-8 at every
/// comparison (a tenth of the write path under perf).
const CALLS: TableDefinition<(&[u8], i64), &[u8]> = TableDefinition::new("calls.v3");
const BY_USER: TableDefinition<(i64, u64, &[u8]), ()> = TableDefinition::new("by_user.v3");

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

/// A redb file holding tracked calls.
///
/// ```no_run
/// use herald_pipeline::tracking::{embedded::EmbeddedStore, store::CallStore};
/// # async fn demo() -> anyhow::Result<()> {
/// let store = EmbeddedStore::open(std::path::Path::new("herald-data/calls.redb"))?;
/// let (page, total) = store.for_user(42, 0, 10).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct EmbeddedStore {
    db: Arc<Database>,
    writes: std::sync::mpsc::Sender<(Write, Reply)>,
}

/// The writer thread: one transaction per batch of queued writes. It holds the database
/// weakly, so dropping the last store handle closes the file at once.
fn writer(db: std::sync::Weak<Database>, queue: std::sync::mpsc::Receiver<(Write, Reply)>) {
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

fn apply<'a>(db: &Database, writes: impl Iterator<Item = &'a Write>) -> anyhow::Result<()> {
    let txn = db.begin_write()?;
    {
        let mut calls = txn.open_table(CALLS)?;
        let mut by_user = txn.open_table(BY_USER)?;
        for w in writes {
            match w {
                Write::Insert(new) => {
                    for c in new {
                        let key = c.token_key();
                        let stored = calls
                            .insert((key.as_bytes(), c.user_id), Row::of(c).encode()?.as_slice())?
                            .map(|old| old.value().to_vec());
                        match stored {
                            // stored already (rare: the tracker inserts new calls): put it back
                            Some(old) => {
                                calls.insert((key.as_bytes(), c.user_id), old.as_slice())?;
                            }
                            None => {
                                by_user.insert((c.user_id, u64::MAX - c.called_at_ms, key.as_bytes()), ())?;
                            }
                        }
                    }
                }
                Write::Progress(progress) => {
                    for p in progress {
                        let key = (p.token_key.as_bytes(), p.user_id);
                        let Some(mut row) = calls.get(key)?.map(|v| Row::decode(v.value())).transpose()? else {
                            continue;
                        };
                        row.last_multiple = p.last_multiple;
                        row.best_multiple = p.best_multiple;
                        row.alerted = p.alerted;
                        calls.insert(key, row.encode()?.as_slice())?;
                    }
                }
            }
        }
    }
    txn.commit()?;
    Ok(())
}

impl EmbeddedStore {
    /// Opens (or creates) the store at `path`, creating its directory.
    ///
    /// Errors: the file is not a redb database, or is locked by another process.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        Self::open_with_cache(path, 64 << 20)
    }

    /// [`Self::open`] with a page cache of `cache_bytes` (more cache, fewer reads when
    /// the B-trees outgrow it: about 120 bytes a call).
    pub fn open_with_cache(path: &Path, cache_bytes: usize) -> anyhow::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let db = Database::builder()
            .set_cache_size(cache_bytes)
            .create(path)
            .map_err(|e| anyhow::anyhow!("opening {}: {e}", path.display()))?;
        let txn = db.begin_write()?;
        txn.open_table(CALLS)?;
        txn.open_table(BY_USER)?;
        txn.commit()?;
        let db = Arc::new(db);
        let (writes, queue) = std::sync::mpsc::channel();
        let writer_db = Arc::downgrade(&db);
        std::thread::Builder::new()
            .name("redb-writer".into())
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

    async fn blocking<T: Send + 'static>(&self, f: impl FnOnce(&Database) -> anyhow::Result<T> + Send + 'static) -> anyhow::Result<T> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || f(&db)).await?
    }
}

/// Scans `calls` in key order on a blocking thread, sending chunks of 4096 calls made at
/// or after `since_ms` (a scan in key order reads pages sequentially; the time index
/// would read them at random).
fn scan(db: &Database, since_ms: u64, out: &tokio::sync::mpsc::Sender<anyhow::Result<Vec<TrackedCall>>>) -> anyhow::Result<()> {
    let txn = db.begin_read()?;
    let calls = txn.open_table(CALLS)?;
    let mut chunk = Vec::with_capacity(4096);
    for row in calls.iter()? {
        let (k, v) = row?;
        let row = Row::decode(v.value())?;
        if row.called_at_ms < since_ms {
            continue;
        }
        let (token_key, user_id) = k.value();
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
            let txn = db.begin_read()?;
            let by_user = txn.open_table(BY_USER)?;
            let calls = txn.open_table(CALLS)?;
            let mut total = 0;
            let mut page = Vec::new();
            for row in by_user.range((user_id, 0, [].as_slice())..)? {
                let (k, _) = row?;
                let (user, _, token_key) = k.value();
                if user != user_id {
                    break;
                }
                if total >= offset && page.len() < limit {
                    if let Some(v) = calls.get((token_key, user_id))? {
                        page.push(Row::decode(v.value())?.into_call(token_key, user_id));
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
            // find them in a read transaction (writers go on meanwhile), delete in a write
            let old: Vec<(Vec<u8>, i64, u64)> = {
                let txn = db.begin_read()?;
                let calls = txn.open_table(CALLS)?;
                let mut old = Vec::new();
                for row in calls.iter()? {
                    let (k, v) = row?;
                    let at = Row::decode(v.value())?.called_at_ms;
                    if at < before_ms {
                        let (token_key, user_id) = k.value();
                        old.push((token_key.to_vec(), user_id, at));
                    }
                }
                old
            };
            let txn = db.begin_write()?;
            let mut removed = 0;
            {
                let mut calls = txn.open_table(CALLS)?;
                let mut by_user = txn.open_table(BY_USER)?;
                for (token_key, user_id, at) in old {
                    if calls.remove((token_key.as_slice(), user_id))?.is_some() {
                        by_user.remove((user_id, u64::MAX - at, token_key.as_slice()))?;
                        removed += 1;
                    }
                }
            }
            txn.commit()?;
            Ok(removed)
        })
        .await
    }
}
