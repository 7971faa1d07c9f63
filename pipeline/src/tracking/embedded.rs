//! The embedded store: redb, a maintained pure-Rust embedded database with ACID
//! transactions and crash safety (copy-on-write B-trees, a commit is durable once it
//! returns), so the main job needs no database server.
//!
//! Writes go through one writer thread that commits whatever is queued in one
//! transaction (group commit): every caller still waits for a durable commit, but a
//! burst of price updates costs one fsync, not one each. The page cache is capped at
//! 64 MiB (redb's default is 1 GiB).
//!
//! Tables (string keys sort as the queries need them):
//! - `calls`: `<chain>:<token>\0<user_id>` -> the call (JSON)
//! - `by_user`: `<user_id:020>\0<u64::MAX - called_at:020>\0<calls key>` (newest first)
//! - `by_time`: `<called_at:020>\0<calls key>` (retention)

use std::path::Path;
use std::sync::Arc;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use super::store::{CallStore, Progress, TrackedCall};

const CALLS: TableDefinition<&str, &[u8]> = TableDefinition::new("calls");
const BY_USER: TableDefinition<&str, &[u8]> = TableDefinition::new("by_user");
const BY_TIME: TableDefinition<&str, &[u8]> = TableDefinition::new("by_time");

fn call_key(token_key: &str, user_id: i64) -> String {
    format!("{token_key}\0{user_id}")
}

fn user_key(c: &TrackedCall) -> String {
    format!(
        "{:020}\0{:020}\0{}",
        c.user_id,
        u64::MAX - c.called_at_ms,
        call_key(&c.token_key(), c.user_id)
    )
}

fn time_key(c: &TrackedCall) -> String {
    format!("{:020}\0{}", c.called_at_ms, call_key(&c.token_key(), c.user_id))
}

/// A write waiting for the next group commit.
enum Write {
    Insert(Vec<TrackedCall>),
    Progress(Vec<Progress>),
}

type Reply = tokio::sync::oneshot::Sender<Result<(), String>>;

/// A redb file holding tracked calls.
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
        let mut by_time = txn.open_table(BY_TIME)?;
        for w in writes {
            match w {
                Write::Insert(new) => {
                    for c in new {
                        let key = call_key(&c.token_key(), c.user_id);
                        if calls.get(key.as_str())?.is_some() {
                            continue;
                        }
                        calls.insert(key.as_str(), serde_json::to_vec(c)?.as_slice())?;
                        by_user.insert(user_key(c).as_str(), [].as_slice())?;
                        by_time.insert(time_key(c).as_str(), [].as_slice())?;
                    }
                }
                Write::Progress(progress) => {
                    for p in progress {
                        let key = call_key(&p.token_key, p.user_id);
                        let current = calls.get(key.as_str())?.map(|v| decode(v.value())).transpose()?;
                        let Some(mut c) = current else { continue };
                        if p.best_multiple <= c.best_multiple && p.alerted <= c.alerted && p.last_multiple == c.last_multiple {
                            continue;
                        }
                        c.last_multiple = p.last_multiple;
                        c.best_multiple = c.best_multiple.max(p.best_multiple);
                        c.alerted = c.alerted.max(p.alerted);
                        calls.insert(key.as_str(), serde_json::to_vec(&c)?.as_slice())?;
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
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let db = Database::builder()
            .set_cache_size(64 << 20)
            .create(path)
            .map_err(|e| anyhow::anyhow!("opening {}: {e}", path.display()))?;
        let txn = db.begin_write()?;
        txn.open_table(CALLS)?;
        txn.open_table(BY_USER)?;
        txn.open_table(BY_TIME)?;
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

fn decode(bytes: &[u8]) -> anyhow::Result<TrackedCall> {
    Ok(serde_json::from_slice(bytes)?)
}

impl CallStore for EmbeddedStore {
    async fn insert(&self, calls: Vec<TrackedCall>) -> anyhow::Result<()> {
        self.write(Write::Insert(calls)).await
    }

    async fn update_progress(&self, progress: Vec<Progress>) -> anyhow::Result<()> {
        self.write(Write::Progress(progress)).await
    }

    async fn load_since(&self, since_ms: u64) -> anyhow::Result<Vec<TrackedCall>> {
        self.blocking(move |db| {
            let txn = db.begin_read()?;
            let t = txn.open_table(CALLS)?;
            let mut out = Vec::new();
            for row in t.iter()? {
                let (_, v) = row?;
                let c = decode(v.value())?;
                if c.called_at_ms >= since_ms {
                    out.push(c);
                }
            }
            Ok(out)
        })
        .await
    }

    async fn for_user(&self, user_id: i64, offset: usize, limit: usize) -> anyhow::Result<(Vec<TrackedCall>, usize)> {
        self.blocking(move |db| {
            let txn = db.begin_read()?;
            let by_user = txn.open_table(BY_USER)?;
            let calls = txn.open_table(CALLS)?;
            let (from, to) = (format!("{user_id:020}\0"), format!("{user_id:020}\u{1}"));
            let mut total = 0;
            let mut page = Vec::new();
            for row in by_user.range(from.as_str()..to.as_str())? {
                let (k, _) = row?;
                if total >= offset && page.len() < limit {
                    let key = k.value().splitn(3, '\0').nth(2).unwrap_or_default().to_string();
                    if let Some(v) = calls.get(key.as_str())? {
                        page.push(decode(v.value())?);
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
            let txn = db.begin_write()?;
            let mut removed = 0;
            {
                let mut by_time = txn.open_table(BY_TIME)?;
                let mut calls = txn.open_table(CALLS)?;
                let mut by_user = txn.open_table(BY_USER)?;
                let end = format!("{before_ms:020}");
                let old: Vec<String> = by_time
                    .range(..end.as_str())?
                    .map(|r| r.map(|(k, _)| k.value().to_string()))
                    .collect::<Result<_, _>>()?;
                for tk in old {
                    by_time.remove(tk.as_str())?;
                    let key = tk.split_once('\0').map(|(_, k)| k.to_string()).unwrap_or_default();
                    if let Some(v) = calls.remove(key.as_str())? {
                        let c = decode(v.value())?;
                        by_user.remove(user_key(&c).as_str())?;
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
