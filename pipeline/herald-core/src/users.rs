//! The core user record ([`User`]) in the `herald_users` KV bucket, by compare-and-set
//! (see `herald_runtime::records`).

use async_nats::jetstream::kv;
use herald_schemas::User;

use herald_runtime::records;

/// A user and the KV revision it was read at.
pub type Versioned = records::Revised<User>;

/// Loads a user. `Ok(None)` if unknown or deleted.
///
/// Errors: KV unreachable, or a stored value is undecodable (names the user).
pub async fn load(store: &kv::Store, user_id: i64) -> anyhow::Result<Option<Versioned>> {
    records::load(store, user_id).await
}

/// Writes `user` if the stored revision is still `revision` (`None` = must not exist
/// yet). Errors on a conflict: the caller re-reads and retries.
pub async fn save(store: &kv::Store, user: &User, revision: Option<u64>) -> anyhow::Result<u64> {
    records::save(store, user.user_id, user, revision).await
}

/// Applies `change` to a stored user by compare-and-set, retrying on conflicts; false
/// if there is no such user. Idempotent when `change` sets absolute values.
///
/// Errors: KV unreachable, or 20 conflicting writes in a row.
pub async fn update(store: &kv::Store, user_id: i64, change: impl Fn(&mut User)) -> anyhow::Result<bool> {
    if load(store, user_id).await?.is_none() {
        return Ok(false);
    }
    let now = herald_schemas::now_ms();
    records::upsert(
        store,
        user_id,
        || User::new(user_id, user_id, now),
        |u| {
            let before = u.clone();
            change(u);
            if *u != before {
                u.updated_at_ms = now;
            }
        },
    )
    .await?;
    Ok(true)
}

/// Sets `active` (false after Telegram's 403 "bot was blocked by the user"), retrying
/// on write conflicts. Unknown users are left alone.
///
/// Errors: KV unreachable, or too many concurrent writes.
pub async fn set_active(store: &kv::Store, user_id: i64, active: bool) -> anyhow::Result<()> {
    update(store, user_id, |u| u.active = active).await.map(|_| ())
}

/// Every stored user: a full read of the bucket (admin commands, hourly reminders).
///
/// Errors: KV unreachable, or a stored value is undecodable.
pub async fn all(store: &kv::Store) -> anyhow::Result<Vec<User>> {
    records::all(store).await
}
