//! Which user owns which deposit address: each user gets the next HD index, persisted
//! in the `herald_wallet` KV bucket and never reused.
//!
//! Keys: `next` (the next free index), `user.<id>` -> index, `index.<i>` -> user id.
//! Indexes are reserved with a compare-and-set on `next`, so concurrent assignments
//! never share one; an index reserved by a request that lost a race for the same user
//! stays unused.

use async_nats::jetstream::kv::{self, CreateErrorKind};

use super::wallet::DepositWallet;

/// A user's deposit address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Assigned {
    pub index: u32,
    pub address: alloy::primitives::Address,
    /// Assigned by this call (false: the user had it already).
    pub fresh: bool,
}

fn parse<T: std::str::FromStr>(bytes: &[u8], what: &str) -> anyhow::Result<T> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("herald_wallet: {what} is not a number"))
}

/// The user's deposit address, assigning the next index on first use.
///
/// Errors: the bucket is missing (`pipeline setup`), NATS failed, or a stored value is
/// not a number.
pub async fn assign(kv: &kv::Store, wallet: &DepositWallet, user_id: i64) -> anyhow::Result<Assigned> {
    let user_key = format!("user.{user_id}");
    if let Some(v) = kv.get(&user_key).await? {
        let index = parse(&v, &user_key)?;
        return Ok(Assigned {
            index,
            address: wallet.address(index)?,
            fresh: false,
        });
    }
    let index = reserve(kv).await?;
    // the reverse entry first: the watcher may see the address as soon as the user does
    kv.put(format!("index.{index}"), user_id.to_string().into()).await?;
    match kv.create(&user_key, index.to_string().into()).await {
        Ok(_) => Ok(Assigned {
            index,
            address: wallet.address(index)?,
            fresh: true,
        }),
        Err(e) if e.kind() == CreateErrorKind::AlreadyExists => {
            // a concurrent request for the same user won; ours stays reserved, unused
            let v = kv.get(&user_key).await?.ok_or_else(|| anyhow::anyhow!("{user_key} vanished"))?;
            let index = parse(&v, &user_key)?;
            Ok(Assigned {
                index,
                address: wallet.address(index)?,
                fresh: false,
            })
        }
        Err(e) => Err(e.into()),
    }
}

/// The user's deposit address if they have one (assigns nothing).
///
/// Errors: NATS failed or the stored index is not a number.
pub async fn existing(kv: &kv::Store, wallet: &DepositWallet, user_id: i64) -> anyhow::Result<Option<alloy::primitives::Address>> {
    let key = format!("user.{user_id}");
    match kv.get(&key).await? {
        Some(v) => Ok(Some(wallet.address(parse(&v, &key)?)?)),
        None => Ok(None),
    }
}

/// Reserves the next index with a compare-and-set on `next`.
async fn reserve(kv: &kv::Store) -> anyhow::Result<u32> {
    for _ in 0..100 {
        let won = match kv.entry("next").await? {
            Some(e) if e.operation == kv::Operation::Put => {
                let next: u32 = parse(&e.value, "next")?;
                kv.update("next", (next + 1).to_string().into(), e.revision)
                    .await
                    .ok()
                    .map(|_| next)
            }
            _ => kv.create("next", "1".into()).await.ok().map(|_| 0),
        };
        if let Some(index) = won {
            return Ok(index);
        }
    }
    anyhow::bail!("herald_wallet: could not reserve an index after 100 attempts")
}

/// Every assigned index with its user, for the watcher.
///
/// Errors: NATS failed or a stored value is not a number.
pub async fn all(kv: &kv::Store) -> anyhow::Result<Vec<(u32, i64)>> {
    use futures::TryStreamExt;
    let keys: Vec<String> = kv.keys().await?.try_collect().await?;
    let mut out = Vec::new();
    for key in keys {
        let Some(index) = key.strip_prefix("index.") else { continue };
        if let Some(v) = kv.get(&key).await? {
            out.push((parse(index.as_bytes(), &key)?, parse(&v, &key)?));
        }
    }
    Ok(out)
}
