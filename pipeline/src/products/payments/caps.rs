//! Daily withdrawal caps: what each UTC day has let out, per user and for the hot
//! wallet, counted in the `herald_withdrawals` bucket (money class).
//!
//! A day's record (`day.<yyyy-mm-dd>.user.<id>`, `day.<yyyy-mm-dd>.wallet`) maps each
//! withdrawal id to its ledger amount, so reserving is idempotent (a redelivered
//! confirmation finds its id and counts nothing twice) and a rejection gives its amount
//! back. Every write is a compare-and-set on the record's revision: concurrent
//! confirmations of different users never overshoot the wallet's cap.

use std::collections::BTreeMap;

use alloy::primitives::U256;
use async_nats::jetstream::kv;

use crate::core::kv_json;

/// What a day has counted: withdrawal id -> ledger units (decimal).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
struct Day {
    ids: BTreeMap<String, String>,
}

impl Day {
    fn total(&self) -> U256 {
        self.ids.values().filter_map(|a| a.parse::<U256>().ok()).fold(U256::ZERO, |a, b| a + b)
    }
}

/// `yyyy-mm-dd` (UTC) of `ms` since the epoch.
///
/// ```
/// assert_eq!(herald_pipeline::products::payments::caps::day_of(0), "1970-01-01");
/// ```
pub fn day_of(ms: u64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp((ms / 1000) as i64).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!("{}-{:02}-{:02}", t.year(), t.month() as u8, t.day())
}

/// The key of a user's day (`Some(user)`) or of the hot wallet's (`None`).
pub fn key(day: &str, user: Option<i64>) -> String {
    match user {
        Some(u) => format!("day.{day}.user.{u}"),
        None => format!("day.{day}.wallet"),
    }
}

/// What `key`'s day has counted so far.
///
/// Errors: NATS failed or the record does not decode.
pub async fn used(kv: &kv::Store, key: &str) -> anyhow::Result<U256> {
    Ok(kv_json::get::<Day>(kv, key).await?.map(|d| d.total()).unwrap_or_default())
}

/// Counts `amount` for withdrawal `id` under `key` if the day stays within `cap`.
/// Returns true if counted now or before (idempotent), false if it would pass the cap.
///
/// Errors: NATS failed or the record does not decode.
pub async fn reserve(kv: &kv::Store, key: &str, id: &str, amount: U256, cap: U256) -> anyhow::Result<bool> {
    let day = kv_json::update(kv, key, |day: Option<Day>| {
        let mut day = day.unwrap_or_default();
        if day.ids.contains_key(id) || day.total() + amount > cap {
            return None;
        }
        day.ids.insert(id.to_string(), amount.to_string());
        Some(day)
    })
    .await?;
    Ok(day.is_some_and(|d| d.ids.contains_key(id)))
}

/// Gives withdrawal `id`'s amount back to `key`'s day (a rejection, a refusal after the
/// count). Nothing if it was not counted.
///
/// Errors: NATS failed or the record does not decode.
pub async fn unreserve(kv: &kv::Store, key: &str, id: &str) -> anyhow::Result<()> {
    kv_json::update(kv, key, |day: Option<Day>| {
        let mut day = day?;
        day.ids.remove(id)?;
        Some(day)
    })
    .await?;
    Ok(())
}
