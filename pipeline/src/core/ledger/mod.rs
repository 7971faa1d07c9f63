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
//! - **Holds**: a withdrawal's amount is held ([`Ledger::hold`]): it leaves the balance
//!   and is counted in the entry's `held` total until it is settled (the transaction is
//!   final) or released (it failed), each hold closed once, by whichever comes first.
//!   The invariant: `balance + held = credits − debits − settled`, neither below zero.
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

/// A user's position after their last entry (base units).
struct Position {
    balance: U256,
    held: U256,
    /// The entry's stream sequence (0: none).
    last: u64,
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

    /// The user's balance (spendable, base units) and the sequence of their last entry
    /// (0: no entries).
    pub async fn balance(&self, user_id: i64) -> anyhow::Result<(U256, u64)> {
        let p = self.position(user_id).await?;
        Ok((p.balance, p.last))
    }

    /// What the user has on hold (base units): the sum of their open holds.
    pub async fn held(&self, user_id: i64) -> anyhow::Result<U256> {
        Ok(self.position(user_id).await?.held)
    }

    /// The user's last entry's balance and held total, and its sequence.
    async fn position(&self, user_id: i64) -> anyhow::Result<Position> {
        use async_nats::jetstream::stream::LastRawMessageErrorKind;
        match self.stream.get_last_raw_message_by_subject(&subjects::ledger(user_id)).await {
            Ok(m) => {
                let entry: LedgerEntry = herald_schemas::decode(&m.payload)?;
                Ok(Position {
                    balance: parse_amount(&entry.balance)?,
                    held: parse_amount(&entry.held)?,
                    last: m.sequence,
                })
            }
            Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(Position {
                balance: U256::ZERO,
                held: U256::ZERO,
                last: 0,
            }),
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
    ///
    /// Errors: NATS failed.
    pub async fn applied(&self, user_id: i64, reference: &str) -> anyhow::Result<bool> {
        let key = Self::ref_key(user_id, reference);
        if self.refs.get(&key).await?.is_some() {
            return Ok(true);
        }
        if self.find_entry(user_id, reference).await?.is_some() {
            self.refs.put(&key, "1".into()).await?;
            return Ok(true);
        }
        Ok(false)
    }

    /// The user's entry with `reference`, if any: their first [`SHORT_LEDGER`] entries
    /// one direct get each, the rest through a consumer.
    async fn find_entry(&self, user_id: i64, reference: &str) -> anyhow::Result<Option<LedgerEntry>> {
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
                    let entry = herald_schemas::decode::<LedgerEntry>(&m.payload)?;
                    if entry.reference == reference {
                        return Ok(Some(entry));
                    }
                    seq = m.sequence + 1;
                }
                Err(e) if e.kind() == RawMessageErrorKind::NoMessageFound => return Ok(None),
                Err(e) => return Err(e.into()),
            }
        }
        Ok(self.entries(user_id).await?.into_iter().find(|e| e.reference == reference))
    }

    /// Adds `amount` to the user's balance, once per `reference`.
    ///
    /// Errors: NATS failed (nothing or everything was written; retrying is safe).
    pub async fn credit(&self, user_id: i64, amount: U256, reference: &str, note: &str) -> anyhow::Result<Applied> {
        self.write(user_id, Move::Credit(amount), reference, note).await
    }

    /// Takes `amount` from the user's balance if it holds that much, once per `reference`.
    ///
    /// Errors: NATS failed (retrying is safe).
    pub async fn debit(&self, user_id: i64, amount: U256, reference: &str, note: &str) -> anyhow::Result<Applied> {
        self.write(user_id, Move::Debit(amount), reference, note).await
    }

    /// Sets `amount` of the user's balance aside under `reference` (a withdrawal
    /// waiting for its transaction), once per reference: it leaves the balance and is
    /// counted as held until [`Ledger::settle`] (gone for good) or [`Ledger::release`]
    /// (back to the balance) closes it. `Done` carries the balance after the hold.
    ///
    /// Errors: NATS failed (retrying is safe).
    pub async fn hold(&self, user_id: i64, amount: U256, reference: &str, note: &str) -> anyhow::Result<Applied> {
        self.write(user_id, Move::Hold(amount), reference, note).await
    }

    /// Ends the hold `hold` for good (the withdrawal's transaction is final): its
    /// amount leaves the held total. A hold is closed once, by a settle or a release,
    /// whichever comes first (their entries share the reference `<hold>:closed`).
    ///
    /// Errors: NATS failed (retrying is safe).
    pub async fn settle(&self, user_id: i64, hold: &str, note: &str) -> anyhow::Result<Closed> {
        self.close(user_id, hold, LedgerKind::Settle, note).await
    }

    /// Gives the hold `hold` back to the balance (the withdrawal failed or was
    /// rejected), once; refused if the hold was settled.
    ///
    /// Errors: NATS failed (retrying is safe).
    pub async fn release(&self, user_id: i64, hold: &str, note: &str) -> anyhow::Result<Closed> {
        self.close(user_id, hold, LedgerKind::Release, note).await
    }

    /// The reference of the entry that closes hold `hold`.
    pub fn closing_reference(hold: &str) -> String {
        format!("{hold}:closed")
    }

    async fn close(&self, user_id: i64, hold: &str, kind: LedgerKind, note: &str) -> anyhow::Result<Closed> {
        let closing = Self::closing_reference(hold);
        let Some(held) = self.find_entry(user_id, hold).await?.filter(|e| e.kind == LedgerKind::Hold) else {
            return Ok(Closed::NoSuchHold);
        };
        let amount = parse_amount(&held.amount)?;
        let step = match kind {
            LedgerKind::Settle => Move::Settle(amount, hold.to_string()),
            _ => Move::Release(amount, hold.to_string()),
        };
        match self.write(user_id, step, &closing, note).await? {
            Applied::Done(balance) => Ok(Closed::Done(balance)),
            Applied::AlreadyApplied => {
                let by = self.find_entry(user_id, &closing).await?.map(|e| e.kind);
                Ok(Closed::Already(by.ok_or_else(|| {
                    anyhow::anyhow!("hold {hold}: closed, but its closing entry is not in the ledger")
                })?))
            }
            Applied::Insufficient(_) => anyhow::bail!("hold {hold}: a close cannot be short of balance"),
        }
    }

    async fn write(&self, user_id: i64, step: Move, reference: &str, note: &str) -> anyhow::Result<Applied> {
        if self.applied(user_id, reference).await? {
            return Ok(Applied::AlreadyApplied);
        }
        for _ in 0..1000 {
            let position = self.position(user_id).await?;
            let Some((balance, held)) = step.apply(position.balance, position.held)? else {
                return Ok(Applied::Insufficient(position.balance));
            };
            let entry = LedgerEntry {
                v: 1,
                user_id,
                kind: step.kind(),
                amount: step.amount().to_string(),
                balance: balance.to_string(),
                held: held.to_string(),
                hold: step.hold().map(str::to_string),
                reference: reference.to_string(),
                note: note.to_string(),
                ts_ms: herald_schemas::now_ms(),
            };
            let mut headers = herald_runtime::msg_id_headers(&format!("{user_id}:{reference}"));
            headers.insert(
                async_nats::header::NATS_EXPECTED_LAST_SUBJECT_SEQUENCE,
                position.last.to_string().as_str(),
            );
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
                    metrics::counter!(crate::core::metrics::LEDGER_ENTRIES.name, "kind" => step.kind().as_str()).increment(1);
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

/// What closing a hold did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Closed {
    /// Closed now; the balance after.
    Done(U256),
    /// Closed before, by this kind of entry (`Settle` or `Release`): nothing written.
    Already(LedgerKind),
    /// The user has no hold under that reference.
    NoSuchHold,
}

/// One change of a user's position: what an entry does to the balance and the held
/// total. Amounts in ledger base units.
#[derive(Debug, Clone)]
enum Move {
    Credit(U256),
    Debit(U256),
    Hold(U256),
    /// (amount, the hold's reference)
    Release(U256, String),
    Settle(U256, String),
}

impl Move {
    fn kind(&self) -> LedgerKind {
        match self {
            Move::Credit(_) => LedgerKind::Credit,
            Move::Debit(_) => LedgerKind::Debit,
            Move::Hold(_) => LedgerKind::Hold,
            Move::Release(..) => LedgerKind::Release,
            Move::Settle(..) => LedgerKind::Settle,
        }
    }

    fn amount(&self) -> U256 {
        match self {
            Move::Credit(a) | Move::Debit(a) | Move::Hold(a) | Move::Release(a, _) | Move::Settle(a, _) => *a,
        }
    }

    fn hold(&self) -> Option<&str> {
        match self {
            Move::Release(_, h) | Move::Settle(_, h) => Some(h),
            _ => None,
        }
    }

    /// The balance and held total after the move; `None` if the balance is short.
    ///
    /// Errors: the invariant broken (a close of more than is held, an overflow): the
    /// ledger refuses to write it.
    fn apply(&self, balance: U256, held: U256) -> anyhow::Result<Option<(U256, U256)>> {
        let add = |a: U256, b: U256| a.checked_add(b).ok_or_else(|| anyhow::anyhow!("ledger overflow"));
        let release = |h: U256, a: U256| {
            h.checked_sub(a)
                .ok_or_else(|| anyhow::anyhow!("ledger invariant: closing {a} of {h} held"))
        };
        Ok(match self {
            Move::Credit(a) => Some((add(balance, *a)?, held)),
            Move::Debit(a) => balance.checked_sub(*a).map(|b| (b, held)),
            Move::Hold(a) => match balance.checked_sub(*a) {
                Some(b) => Some((b, add(held, *a)?)),
                None => None,
            },
            Move::Release(a, _) => Some((add(balance, *a)?, release(held, *a)?)),
            Move::Settle(a, _) => Some((balance, release(held, *a)?)),
        })
    }
}
