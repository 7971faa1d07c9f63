//! The lottery's shared state: the journal, its KV bucket, the bundles, the ledger,
//! and a cache of folded rounds (read incrementally: only entries after the last one
//! seen).

use std::collections::HashMap;

use async_nats::jetstream::{kv, object_store::ObjectStore};
use herald_draw::beacon::ChainInfo;
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use super::config::RoundRules;
use super::journal::{Journal, Tip};
use super::relays::Relays;
use super::round::Round;
use crate::core::ledger::Ledger;

/// Everything the lottery's stage and scheduler share.
pub struct Lottery {
    pub journal: Journal,
    /// `herald_lottery`.
    pub kv: kv::Store,
    /// `herald_lottery_bundles`.
    pub bundles: ObjectStore,
    pub ledger: Ledger,
    /// The core user records (referrers).
    pub users: kv::Store,
    pub js: herald_runtime::Js,
    pub rules: RoundRules,
    pub chain: ChainInfo,
    pub relays: Relays,
    pub referral_bps: Vec<u32>,
    /// Seconds after `time(R)` before an unrevealed seed refunds the round.
    pub reveal_deadline_s: u64,
    pub public_url: String,
    pub bot_username: String,
    pub max_tickets: u64,
    /// Told when a settlement is refused.
    pub admins: Vec<i64>,
    rounds: Mutex<HashMap<u64, Round>>,
    /// Purchases append one at a time per process, from the tip the last append left:
    /// racing each other on the conditional append, all but one would lose and retry.
    pub(super) purchase_tip: Mutex<Option<(u64, Tip)>>,
}

/// One purchase as its buyer's `/tickets` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Holding {
    pub round: u64,
    pub receipt_id: String,
    pub first_ticket: u64,
    pub count: u64,
    /// Base units.
    pub amount: String,
}

/// How many purchases `/tickets` keeps per user (the journal keeps them all).
const HOLDINGS_KEPT: usize = 200;

impl Lottery {
    /// The lottery on its stores.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        journal: Journal,
        kv: kv::Store,
        bundles: ObjectStore,
        ledger: Ledger,
        users: kv::Store,
        js: herald_runtime::Js,
        rules: RoundRules,
        chain: ChainInfo,
        relays: Relays,
    ) -> Self {
        Lottery {
            journal,
            kv,
            bundles,
            ledger,
            users,
            js,
            referral_bps: rules.referral_bps.clone(),
            rules,
            chain,
            relays,
            reveal_deadline_s: 3600,
            public_url: String::new(),
            bot_username: String::new(),
            max_tickets: 1000,
            admins: Vec::new(),
            rounds: Mutex::new(HashMap::new()),
            purchase_tip: Mutex::new(None),
        }
    }

    /// The round on sale (or the last one opened); `None` before the first.
    ///
    /// Errors: KV unreachable, or a value that is not a number.
    pub async fn current(&self) -> anyhow::Result<Option<u64>> {
        Ok(self.kv.get("current").await?.map(|v| String::from_utf8_lossy(&v).parse()).transpose()?)
    }

    /// Moves `current` forward to `round` (never back: of two writers the older loses).
    ///
    /// Errors: KV unreachable.
    pub async fn advance_current(&self, round: u64) -> anyhow::Result<()> {
        loop {
            let entry = self.kv.entry("current").await?;
            let result = match entry.filter(|e| e.operation == kv::Operation::Put) {
                Some(e) if String::from_utf8_lossy(&e.value).parse::<u64>().unwrap_or(0) >= round => return Ok(()),
                Some(e) => self.kv.update("current", round.to_string().into(), e.revision).await.map(|_| ()).map_err(anyhow::Error::from),
                None => self.kv.create("current", round.to_string().into()).await.map(|_| ()).map_err(anyhow::Error::from),
            };
            if result.is_ok() {
                return Ok(());
            }
            // another writer moved it: look again
        }
    }

    /// The round folded from its journal, read from where the cache left it.
    ///
    /// Errors: NATS failed, or the journal is malformed (broken chain, step out of order).
    pub async fn round(&self, id: u64) -> anyhow::Result<Round> {
        let mut rounds = self.rounds.lock().await;
        let mut round = rounds.remove(&id).unwrap_or_else(|| Round { id, ..Default::default() });
        // one direct get when nothing was appended (the scheduler asks every tick)
        let tip = self.journal.tip(id).await?.map_or(0, |t| t.seq);
        if tip > round.last_seq {
            let new = self.journal.entries_after(id, round.last_seq, round.last_hash).await?;
            round.extend(&new)?;
        }
        // keep the last few rounds only: a round's purchases can be many
        if rounds.len() > 4 {
            let oldest = *rounds.keys().min().expect("not empty");
            rounds.remove(&oldest);
        }
        rounds.insert(id, round.clone());
        Ok(round)
    }

    /// The round's secret seed, created on first use (`None`: lost or withheld).
    ///
    /// Errors: KV unreachable.
    pub async fn seed(&self, round: u64, create: bool) -> anyhow::Result<Option<[u8; 32]>> {
        let key = format!("seed.{round}");
        if create {
            let fresh: [u8; 32] = rand::random();
            // create-only: of two instances opening the round, both end up with the first seed
            let _ = self.kv.create(&key, hex::encode(fresh).into()).await;
        }
        Ok(self
            .kv
            .get(&key)
            .await?
            .and_then(|v| hex::decode(&v).ok())
            .and_then(|b| b.try_into().ok()))
    }

    /// Whether sales are paused by an admin.
    ///
    /// Errors: KV unreachable.
    pub async fn paused(&self) -> anyhow::Result<bool> {
        Ok(self.kv.get("paused").await?.is_some_and(|v| v.as_ref() == b"1"))
    }

    /// Pauses or resumes sales.
    ///
    /// Errors: KV unreachable.
    pub async fn set_paused(&self, paused: bool) -> anyhow::Result<()> {
        self.kv.put("paused", if paused { "1" } else { "0" }.into()).await?;
        Ok(())
    }

    /// The user's purchases, newest first.
    ///
    /// Errors: KV unreachable, or a malformed record.
    pub async fn holdings(&self, user_id: i64) -> anyhow::Result<Vec<Holding>> {
        match self.kv.get(format!("user.{user_id}")).await? {
            Some(v) => Ok(serde_json::from_slice(&v)?),
            None => Ok(Vec::new()),
        }
    }

    /// Records a purchase in the user's list, once per receipt.
    ///
    /// Errors: KV unreachable.
    pub async fn add_holding(&self, user_id: i64, h: Holding) -> anyhow::Result<()> {
        let key = format!("user.{user_id}");
        loop {
            let entry = self.kv.entry(&key).await?.filter(|e| e.operation == kv::Operation::Put);
            let mut list: Vec<Holding> = match &entry {
                Some(e) => serde_json::from_slice(&e.value)?,
                None => Vec::new(),
            };
            if list.iter().any(|x| x.receipt_id == h.receipt_id) {
                return Ok(());
            }
            list.insert(0, h.clone());
            list.truncate(HOLDINGS_KEPT);
            let value = serde_json::to_vec(&list)?.into();
            let written = match entry {
                Some(e) => self.kv.update(&key, value, e.revision).await.is_ok(),
                None => self.kv.create(&key, value).await.is_ok(),
            };
            if written {
                return Ok(());
            }
        }
    }

    /// The URL of a round's bundle.
    pub fn bundle_url(&self, round: u64) -> String {
        format!("{}/lottery/rounds/{round}/bundle.json", self.public_url.trim_end_matches('/'))
    }

    /// Where ticket `ticket`'s inclusion proof is served.
    pub fn proof_url(&self, round: u64, ticket: u64) -> String {
        format!("{}/lottery/rounds/{round}/proof/{ticket}.json", self.public_url.trim_end_matches('/'))
    }

    /// The name of a round's bundle in the object store.
    pub fn bundle_name(round: u64) -> String {
        format!("round-{round}.json")
    }
}
