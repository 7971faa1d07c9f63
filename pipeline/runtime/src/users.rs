//! Reading and writing [`UserSettings`] in the `herald_users` KV bucket with
//! compare-and-set, so concurrent writers never lose each other's changes.

use async_nats::jetstream::kv;
use herald_schemas::UserSettings;

/// A user's settings and the KV revision they were read at.
pub type Versioned = (UserSettings, u64);

/// Loads a user. `Ok(None)` if unknown or deleted.
///
/// Errors: KV unreachable, or a stored value is undecodable (names the user).
pub async fn load(store: &kv::Store, user_id: i64) -> anyhow::Result<Option<Versioned>> {
    let Some(entry) = store.entry(user_id.to_string()).await? else {
        return Ok(None);
    };
    if entry.operation != kv::Operation::Put {
        return Ok(None);
    }
    let settings = herald_schemas::decode::<UserSettings>(&entry.value).map_err(|e| anyhow::anyhow!("user {user_id}: {e}"))?;
    Ok(Some((settings, entry.revision)))
}

/// Writes `settings` if the stored revision is still `revision` (`None` = must not
/// exist yet). Errors on a conflict: the caller re-reads and retries.
pub async fn save(store: &kv::Store, settings: &UserSettings, revision: Option<u64>) -> anyhow::Result<u64> {
    let key = settings.user_id.to_string();
    let value = herald_schemas::encode(settings).into();
    let rev = match revision {
        Some(r) => store.update(key, value, r).await?,
        None => store.create(key, value).await?,
    };
    Ok(rev)
}

/// Sets `active` (false after Telegram's 403 "bot was blocked by the user"), retrying
/// on write conflicts. Unknown users are left alone.
///
/// Errors: KV unreachable, or too many concurrent writes.
pub async fn set_active(store: &kv::Store, user_id: i64, active: bool) -> anyhow::Result<()> {
    update(store, user_id, |s| s.active = active).await.map(|_| ())
}

/// Every stored user: a full read of the bucket (admin commands, hourly reminders).
///
/// Errors: KV unreachable, or a stored value is undecodable.
pub async fn all(store: &kv::Store) -> anyhow::Result<Vec<UserSettings>> {
    use futures::TryStreamExt;
    let keys: Vec<String> = store.keys().await?.try_collect().await?;
    let mut out = Vec::with_capacity(keys.len());
    for k in keys {
        if let Some(v) = store.get(&k).await? {
            out.push(herald_schemas::decode::<UserSettings>(&v)?);
        }
    }
    Ok(out)
}

/// Applies `change` to a stored user by compare-and-set, retrying on conflicts; false
/// if there is no such user. Idempotent when `change` sets absolute values.
///
/// Errors: KV unreachable, or 20 conflicting writes in a row.
pub async fn update(store: &kv::Store, user_id: i64, change: impl Fn(&mut UserSettings)) -> anyhow::Result<bool> {
    for _ in 0..20 {
        let Some((mut s, rev)) = load(store, user_id).await? else {
            return Ok(false);
        };
        let before = s.clone();
        change(&mut s);
        if s == before {
            return Ok(true);
        }
        s.updated_at_ms = herald_schemas::now_ms();
        if save(store, &s, Some(rev)).await.is_ok() {
            return Ok(true);
        }
    }
    anyhow::bail!("user {user_id}: too many concurrent writes")
}
