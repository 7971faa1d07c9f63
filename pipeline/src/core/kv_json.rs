//! A JSON record in a KV bucket changed by compare-and-set: read it with its revision,
//! change it, write it back only if nobody wrote in between (else read again).

use async_nats::jetstream::kv;
use serde::{de::DeserializeOwned, Serialize};

/// Applies `change` to the record at `key` (`None`: absent or deleted) until a write
/// lands. `change` returns the record to write, or `None` to write nothing. Returns the
/// record as it stands afterwards.
///
/// `change` runs once per round, so a caller learns how many rounds lost a race (and can
/// keep what `change` decided in the round that landed).
///
/// Errors: NATS failed, the stored record does not decode, or 100 rounds in a row lost
/// a race.
pub async fn update<T: Serialize + DeserializeOwned + Clone>(
    kv: &kv::Store,
    key: &str,
    mut change: impl FnMut(Option<T>) -> Option<T>,
) -> anyhow::Result<Option<T>> {
    for _ in 0..100 {
        let entry = kv.entry(key).await?;
        let (current, revision) = match &entry {
            Some(e) if e.operation == kv::Operation::Put => (Some(serde_json::from_slice::<T>(&e.value)?), Some(e.revision)),
            Some(e) => (None, Some(e.revision)),
            None => (None, None),
        };
        let Some(next) = change(current.clone()) else { return Ok(current) };
        let bytes = serde_json::to_vec(&next)?.into();
        let written = match revision {
            Some(r) => match kv.update(key, bytes, r).await {
                Ok(_) => true,
                Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => false,
                Err(e) => return Err(anyhow::anyhow!("{key}: {e}")),
            },
            None => match kv.create(key, bytes).await {
                Ok(_) => true,
                Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => false,
                Err(e) => return Err(anyhow::anyhow!("{key}: {e}")),
            },
        };
        if written {
            return Ok(Some(next));
        }
    }
    anyhow::bail!("{key}: 100 conflicting writes in a row")
}

/// The record at `key`, if any.
///
/// Errors: NATS failed or it does not decode.
pub async fn get<T: DeserializeOwned>(kv: &kv::Store, key: &str) -> anyhow::Result<Option<T>> {
    Ok(match kv.get(key).await? {
        Some(v) => Some(serde_json::from_slice(&v)?),
        None => None,
    })
}
