//! The ledger, part of the core: each user's entries on `herald.ledger.<user_id>`
//! (stream LEDGER, money class), the last one carrying the balance. Amounts are exact
//! integers (`U256`, 18-decimal USD base units, see [`money`]); no float anywhere.
//! Every product that moves money (payments' deposits and subscriptions, the
//! lottery's tickets and prizes) writes through [`Ledger`]; [`crate::core::product::Ctx::ledger`]
//! opens it.
//!
//! - **Exactly once**: an entry's reference (`deposit:<tx>:<log index>`, ...) is applied
//!   once per user. The publish carries it as `Nats-Msg-Id` (the stream drops a repeat
//!   within its duplicate window), and the `herald_ledger_refs` KV bucket keeps it for
//!   good (the unique key); a crash between the two is caught by reading the user's
//!   ledger for the reference (entry by entry with direct gets while it is short: most
//!   are, and a consumer's set-up costs more than the reads).
//! - **Never below zero**: every write is conditional on the user's last entry
//!   (`Nats-Expected-Last-Subject-Sequence`), so of two concurrent debits that each
//!   saw enough balance, the second is refused by the server and re-decided on the new
//!   balance.

pub mod money;

use alloy::primitives::U256;
use async_nats::jetstream::{self, context::PublishErrorKind, kv};
use herald_schemas::{subjects, LedgerEntry, LedgerKind};

/// The ledger's stream (LEDGER) and its references bucket (`herald_ledger_refs`), both
/// money class: the core's, whichever products run.
pub fn definitions() -> (Vec<herald_runtime::setup::StreamDef>, Vec<herald_runtime::setup::BucketDef>) {
    (
        vec![crate::stream_def!("core.ledger.json")],
        vec![herald_runtime::setup::BucketDef::forever(subjects::CREDITS_BUCKET).money()],
    )
}

/// What a write did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// Written; the new balance.
    Done(U256),
    /// The reference was applied before; nothing written.
    AlreadyApplied,
    /// A debit larger than the balance (shown); nothing written.
    Insufficient(U256),
}

/// Users' balances and histories.
#[derive(Clone)]
pub struct Ledger {
    js: herald_runtime::Js,
    /// LEDGER, looked up once (each lookup is a request to the server).
    stream: jetstream::stream::Stream,
    refs: kv::Store,
}

/// A ledger this short is searched for a reference with direct gets, one per entry;
/// a longer one is read through a consumer (its set-up costs several requests).
const SHORT_LEDGER: usize = 16;

fn parse_amount(s: &str) -> anyhow::Result<U256> {
    s.parse().map_err(|e| anyhow::anyhow!("ledger amount {s:?}: {e}"))
}

impl Ledger {
    /// Errors: the LEDGER stream or `herald_ledger_refs` bucket is missing (`pipeline setup`).
    pub async fn open(js: herald_runtime::Js) -> anyhow::Result<Self> {
        let stream = js.get_stream(subjects::LEDGER_STREAM).await?;
        let refs = js.get_key_value(subjects::CREDITS_BUCKET).await?;
        Ok(Ledger { js, stream, refs })
    }

    /// The JetStream context the ledger writes through.
    pub fn context(&self) -> &herald_runtime::Js {
        &self.js
    }

    /// The user's balance and the sequence of their last entry (0: no entries).
    pub async fn balance(&self, user_id: i64) -> anyhow::Result<(U256, u64)> {
        use async_nats::jetstream::stream::LastRawMessageErrorKind;
        match self.stream.get_last_raw_message_by_subject(&subjects::ledger(user_id)).await {
            Ok(m) => {
                let entry: LedgerEntry = herald_schemas::decode(&m.payload)?;
                Ok((parse_amount(&entry.balance)?, m.sequence))
            }
            Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => Ok((U256::ZERO, 0)),
            Err(e) => Err(e.into()),
        }
    }

    /// The user's entries, newest first, at most `limit`.
    pub async fn history(&self, user_id: i64, limit: usize) -> anyhow::Result<Vec<LedgerEntry>> {
        let mut entries = self.entries(user_id).await?;
        entries.reverse();
        entries.truncate(limit);
        Ok(entries)
    }

    async fn entries(&self, user_id: i64) -> anyhow::Result<Vec<LedgerEntry>> {
        // a user's ledger is short (deposits and purchases), read in full
        herald_runtime::reader::read(&self.js, subjects::LEDGER_STREAM, &subjects::ledger(user_id))
            .await?
            .iter()
            .map(|m| herald_schemas::decode::<LedgerEntry>(&m.payload).map_err(Into::into))
            .collect()
    }

    fn ref_key(user_id: i64, reference: &str) -> String {
        subjects::kv_key(&format!("{user_id}.{reference}").replace(':', "."))
    }

    /// Whether `reference` was applied to the user (the unique key, else the ledger
    /// itself, repairing the key).
    async fn applied(&self, user_id: i64, reference: &str) -> anyhow::Result<bool> {
        let key = Self::ref_key(user_id, reference);
        if self.refs.get(&key).await?.is_some() {
            return Ok(true);
        }
        if self.has_entry(user_id, reference).await? {
            self.refs.put(&key, "1".into()).await?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Whether the user's ledger holds an entry with `reference`: its first
    /// [`SHORT_LEDGER`] entries one direct get each, the rest through a consumer.
    async fn has_entry(&self, user_id: i64, reference: &str) -> anyhow::Result<bool> {
        use async_nats::jetstream::stream::RawMessageErrorKind;
        let subject = subjects::ledger(user_id);
        let mut seq = 1;
        for _ in 0..SHORT_LEDGER {
            let next = self
                .stream
                .raw_message_builder()
                .sequence(seq)
                .next_by_subject(subject.as_str())
                .send()
                .await;
            match next {
                Ok(m) => {
                    if herald_schemas::decode::<LedgerEntry>(&m.payload)?.reference == reference {
                        return Ok(true);
                    }
                    seq = m.sequence + 1;
                }
                Err(e) if e.kind() == RawMessageErrorKind::NoMessageFound => return Ok(false),
                Err(e) => return Err(e.into()),
            }
        }
        Ok(self.entries(user_id).await?.iter().any(|e| e.reference == reference))
    }

    /// Adds `amount` to the user's balance, once per `reference`.
    ///
    /// Errors: NATS failed (nothing or everything was written; retrying is safe).
    pub async fn credit(&self, user_id: i64, amount: U256, reference: &str, note: &str) -> anyhow::Result<Applied> {
        self.write(user_id, LedgerKind::Credit, amount, reference, note).await
    }

    /// Takes `amount` from the user's balance if it holds that much, once per `reference`.
    ///
    /// Errors: NATS failed (retrying is safe).
    pub async fn debit(&self, user_id: i64, amount: U256, reference: &str, note: &str) -> anyhow::Result<Applied> {
        self.write(user_id, LedgerKind::Debit, amount, reference, note).await
    }

    async fn write(&self, user_id: i64, kind: LedgerKind, amount: U256, reference: &str, note: &str) -> anyhow::Result<Applied> {
        if self.applied(user_id, reference).await? {
            return Ok(Applied::AlreadyApplied);
        }
        for _ in 0..1000 {
            let (balance, last) = self.balance(user_id).await?;
            let balance = match kind {
                LedgerKind::Credit => balance.checked_add(amount).ok_or_else(|| anyhow::anyhow!("balance overflow"))?,
                LedgerKind::Debit => match balance.checked_sub(amount) {
                    Some(b) => b,
                    None => return Ok(Applied::Insufficient(balance)),
                },
            };
            let entry = LedgerEntry {
                v: 1,
                user_id,
                kind,
                amount: amount.to_string(),
                balance: balance.to_string(),
                reference: reference.to_string(),
                note: note.to_string(),
                ts_ms: herald_schemas::now_ms(),
            };
            let mut headers = herald_runtime::msg_id_headers(&format!("{user_id}:{reference}"));
            headers.insert(async_nats::header::NATS_EXPECTED_LAST_SUBJECT_SEQUENCE, last.to_string().as_str());
            let published = self
                .js
                .publish_with_headers(subjects::ledger(user_id), headers, herald_schemas::encode(&entry).into())
                .await?
                .await;
            match published {
                Ok(ack) => {
                    self.refs.put(Self::ref_key(user_id, reference), "1".into()).await?;
                    if ack.duplicate {
                        return Ok(Applied::AlreadyApplied);
                    }
                    // the ledger's own count of entries written: a repeat would show here
                    metrics::counter!(crate::core::metrics::LEDGER_ENTRIES.name, "kind" => kind.as_str()).increment(1);
                    return Ok(Applied::Done(balance));
                }
                // another write got there first: decide again on the new balance
                Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => continue,
                Err(e) => return Err(e.into()),
            }
        }
        anyhow::bail!("ledger of user {user_id}: 1000 conflicting writes in a row")
    }
}
