//! The upgrade from one user record holding every product's state (version 1 of
//! `herald_users`, today's [`LegacyUser`]) to the small core record plus each part in
//! its owner's bucket: paid access in `herald_access` (the core's), signals'
//! preferences in `herald_signals_users` (taken by the signals product).
//!
//! Per legacy record, in this order: the access is created unless one exists, every
//! product adopts its part (likewise), then the record is rewritten as a core record by
//! compare-and-set. A crash anywhere repeats the record at the next start and changes
//! nothing twice; a record already at version 2 is left alone.

use std::sync::Arc;

use async_nats::jetstream;
use herald_runtime::records;
use herald_schemas::{subjects, LegacyUser};

use super::product::Product;

/// Migrates every version 1 record of `herald_users`; returns how many it migrated.
///
/// Errors: KV unreachable, or a record is neither version 1 nor 2 of the user record.
pub async fn legacy_users(js: &herald_runtime::Js, products: &[Arc<dyn Product>]) -> anyhow::Result<usize> {
    use futures::TryStreamExt;
    let users = js.get_key_value(subjects::USERS_BUCKET).await?;
    let access = js.get_key_value(subjects::ACCESS_BUCKET).await?;
    let keys: Vec<String> = users.keys().await?.try_collect().await?;
    let mut migrated = 0;
    for key in keys {
        let Some(entry) = users.entry(&key).await? else { continue };
        if entry.operation != jetstream::kv::Operation::Put {
            continue;
        }
        let v = serde_json::from_slice::<serde_json::Value>(&entry.value)
            .ok()
            .and_then(|v| v.get("v").and_then(serde_json::Value::as_u64))
            .unwrap_or(1);
        if v >= 2 {
            continue;
        }
        let legacy: LegacyUser = herald_schemas::decode(&entry.value).map_err(|e| anyhow::anyhow!("user {key}: {e}"))?;
        let id = legacy.user_id;
        records::upsert(&access, id, || legacy.access(), |_| {}).await?;
        for p in products {
            p.adopt_legacy(js, &legacy).await?;
        }
        let core = legacy.core();
        // a concurrent write (the user sent /start meanwhile) wins: its record is
        // already a core record
        if records::save(&users, id, &core, Some(entry.revision)).await.is_ok() {
            migrated += 1;
        }
    }
    if migrated > 0 {
        tracing::info!(migrated, "user records split into the core record and each product's part");
    }
    Ok(migrated)
}
