//! The signer's journal, in the `herald_signer` bucket (money class: fsync'd): per
//! withdrawal (`wd.<id>`), its state, its nonce and every transaction signed for it,
//! written *before* a transaction is broadcast; per nonce of a hot wallet on a chain
//! (`nonce.<chain id>.<address>.<n>`), the withdrawal that claimed it. After a crash the journal is the truth: a withdrawal with a signed
//! transaction gets that same transaction again, never a new signature for a new nonce.

use async_nats::jetstream::kv;
use herald_schemas::Withdrawal;
use serde::{Deserialize, Serialize};

use crate::chain::SignedTx;

/// Where a withdrawal stands in the signer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Waiting for the hot wallet's funds; nothing signed.
    Queued,
    /// Signed and broadcast; watched until final.
    Sent,
    /// Mined and confirmed.
    Final,
    /// Mined and reverted, or refused for good.
    Failed,
}

/// One withdrawal's journal entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub withdrawal: Withdrawal,
    pub state: State,
    /// The nonce claimed for it (every transaction below uses it).
    pub nonce: Option<u64>,
    /// Every transaction signed for it, oldest first: the first, then replacements at
    /// higher gas prices. All share the nonce, so at most one can be mined.
    pub txs: Vec<SignedTx>,
    /// The hash of the one mined.
    pub mined: Option<String>,
    pub reason: Option<String>,
}

impl Entry {
    /// A new entry for `w`, queued.
    pub fn new(w: Withdrawal) -> Self {
        Entry {
            withdrawal: w,
            state: State::Queued,
            nonce: None,
            txs: Vec::new(),
            mined: None,
            reason: None,
        }
    }
}

/// The journal.
#[derive(Clone)]
pub struct Journal {
    kv: kv::Store,
}

fn key(id: &str) -> String {
    format!("wd.{}", herald_schemas::subjects::kv_key(id))
}

impl Journal {
    /// The journal in `kv` (`herald_signer`).
    pub fn new(kv: kv::Store) -> Self {
        Journal { kv }
    }

    /// Withdrawal `id`'s entry and its revision.
    ///
    /// Errors: KV unreachable, or an undecodable entry.
    pub async fn load(&self, id: &str) -> anyhow::Result<Option<(Entry, u64)>> {
        match self.kv.entry(key(id)).await? {
            Some(e) if e.operation == kv::Operation::Put => Ok(Some((serde_json::from_slice(&e.value)?, e.revision))),
            _ => Ok(None),
        }
    }

    /// Records `entry` if its withdrawal has none yet; the entry that stands (this one,
    /// or the one found).
    ///
    /// Errors: KV unreachable.
    pub async fn create(&self, entry: Entry) -> anyhow::Result<(Entry, u64)> {
        let id = entry.withdrawal.id.clone();
        match self.kv.create(key(&id), serde_json::to_vec(&entry)?.into()).await {
            Ok(revision) => Ok((entry, revision)),
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => self
                .load(&id)
                .await?
                .ok_or_else(|| anyhow::anyhow!("journal entry {id} exists but cannot be read")),
            Err(e) => Err(e.into()),
        }
    }

    /// Writes `entry` over `revision` (compare-and-set); the new revision.
    ///
    /// Errors: another writer changed it (the caller re-reads), or KV unreachable.
    pub async fn save(&self, entry: &Entry, revision: u64) -> anyhow::Result<u64> {
        Ok(self
            .kv
            .update(key(&entry.withdrawal.id), serde_json::to_vec(entry)?.into(), revision)
            .await?)
    }

    /// Entries still in the signer's hands (queued or sent), oldest withdrawal first.
    ///
    /// Errors: KV unreachable.
    pub async fn open(&self) -> anyhow::Result<Vec<(Entry, u64)>> {
        use futures::StreamExt as _;
        let mut keys = self.kv.keys().await?;
        let mut open = Vec::new();
        while let Some(k) = keys.next().await {
            let k = k?;
            let Some(id) = k.strip_prefix("wd.") else { continue };
            if let Some((entry, revision)) = self.load_key(id).await? {
                if matches!(entry.state, State::Queued | State::Sent) {
                    open.push((entry, revision));
                }
            }
        }
        open.sort_by_key(|(e, _)| e.withdrawal.approved_ms);
        Ok(open)
    }

    async fn load_key(&self, kv_id: &str) -> anyhow::Result<Option<(Entry, u64)>> {
        match self.kv.entry(format!("wd.{kv_id}")).await? {
            Some(e) if e.operation == kv::Operation::Put => Ok(Some((serde_json::from_slice(&e.value)?, e.revision))),
            _ => Ok(None),
        }
    }

    /// The nonce of withdrawal `id` from the hot wallet `wallet` (chain id, address): the
    /// one it claimed before (a crash between the
    /// claim and the journal write), else the first free one from `from` (the chain's
    /// next nonce), claimed by `create`, so two withdrawals never share one.
    ///
    /// Errors: KV unreachable, or 10,000 nonces claimed in a row.
    pub async fn claim_nonce(&self, id: &str, wallet: (u64, alloy::primitives::Address), from: u64) -> anyhow::Result<u64> {
        let (chain_id, address) = wallet;
        for n in from..from + 10_000 {
            let k = format!("nonce.{chain_id}.{}.{n}", alloy::hex::encode(address));
            match self.kv.create(&k, id.to_string().into()).await {
                Ok(_) => return Ok(n),
                Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {
                    if self.kv.get(&k).await?.is_some_and(|v| v.as_ref() == id.as_bytes()) {
                        return Ok(n);
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        anyhow::bail!("10,000 nonces from {from} claimed: the journal or the chain is wrong")
    }
}
