//! Per-user records in KV buckets (the core user, access, a product's part), keyed by
//! the user id, read with their revision and written by compare-and-set, so concurrent
//! writers never lose each other's changes.

use async_nats::jetstream::kv;
use herald_schemas::Versioned;

/// A record and the KV revision it was read at.
pub type Revised<T> = (T, u64);

/// Loads the record of `user_id`; `Ok(None)` if there is none (or it was deleted).
///
/// Errors: KV unreachable, or the stored value is undecodable (names the key).
pub async fn load<T: Versioned>(store: &kv::Store, user_id: i64) -> anyhow::Result<Option<Revised<T>>> {
    let Some(entry) = store.entry(user_id.to_string()).await? else {
        return Ok(None);
    };
    if entry.operation != kv::Operation::Put {
        return Ok(None);
    }
    let value = herald_schemas::decode::<T>(&entry.value).map_err(|e| anyhow::anyhow!("{} {user_id}: {e}", T::SCHEMA_NAME))?;
    Ok(Some((value, entry.revision)))
}

/// Writes `value` as `user_id`'s record if the stored revision is still `revision`
/// (`None`: there must be none yet).
///
/// Errors: a conflict (the caller re-reads and retries), or KV unreachable.
pub async fn save<T: Versioned>(store: &kv::Store, user_id: i64, value: &T, revision: Option<u64>) -> anyhow::Result<u64> {
    let key = user_id.to_string();
    let bytes = herald_schemas::encode(value).into();
    Ok(match revision {
        Some(r) => store.update(key, bytes, r).await?,
        None => store.create(key, bytes).await?,
    })
}

/// Applies `change` to `user_id`'s record, starting from `fresh()` when there is none,
/// by compare-and-set, retrying on conflicts. Writes nothing when `change` changes
/// nothing, so absolute changes are idempotent. Returns the record as stored.
///
/// Errors: KV unreachable, or 20 conflicting writes in a row.
pub async fn upsert<T: Versioned + Clone + PartialEq>(
    store: &kv::Store,
    user_id: i64,
    fresh: impl Fn() -> T,
    change: impl Fn(&mut T),
) -> anyhow::Result<T> {
    for _ in 0..20 {
        let (mut value, revision) = match load::<T>(store, user_id).await? {
            Some((v, r)) => (v, Some(r)),
            None => (fresh(), None),
        };
        let before = value.clone();
        change(&mut value);
        if revision.is_some() && value == before {
            return Ok(value);
        }
        if save(store, user_id, &value, revision).await.is_ok() {
            return Ok(value);
        }
    }
    anyhow::bail!("{} {user_id}: too many concurrent writes", T::SCHEMA_NAME)
}

/// Every record of a bucket: a full read (admin commands, hourly reminders).
///
/// Errors: KV unreachable, or a stored value is undecodable.
pub async fn all<T: Versioned>(store: &kv::Store) -> anyhow::Result<Vec<T>> {
    use futures::TryStreamExt;
    let keys: Vec<String> = store.keys().await?.try_collect().await?;
    let mut out = Vec::with_capacity(keys.len());
    for k in keys {
        if let Some(v) = store.get(&k).await? {
            out.push(herald_schemas::decode::<T>(&v).map_err(|e| anyhow::anyhow!("{} {k}: {e}", T::SCHEMA_NAME))?);
        }
    }
    Ok(out)
}
