//! The audit trail: a round's [`LotteryEntry`]s on `herald.lottery.round.<round>`.
//!
//! Every append is conditional on the round's last entry
//! (`Nats-Expected-Last-Subject-Sequence`): of two processes taking the same step, one
//! writes and the other is told it lost and reads the new state. That is what makes
//! each step happen once across restarts and instances, and orders every purchase
//! strictly before or after the sale's close. Each entry carries the SHA-256 of the
//! entry before it ([`Tip::hash`]).

use async_nats::jetstream::{self, context::PublishErrorKind, stream::LastRawMessageErrorKind};
use herald_schemas::{subjects, LotteryEntry, LotteryStep};
use sha2::{Digest, Sha256};

/// A round's last entry, where the next append goes.
#[derive(Debug, Clone)]
pub struct Tip {
    pub entry: LotteryEntry,
    /// SHA-256 of the entry's stored bytes.
    pub hash: [u8; 32],
    /// Its stream sequence.
    pub seq: u64,
}

/// Where the next entry of a round goes.
#[derive(Debug, Clone, Copy)]
pub struct Position {
    /// The entry's index in the round.
    pub index: u64,
    /// SHA-256 of the entry before it.
    pub prev: [u8; 32],
    /// The stream sequence of the round's last entry (0: none yet).
    pub expected_seq: u64,
}

impl Position {
    /// The first entry of a round, chained to `prev` (the previous round's Closed entry).
    pub fn first(prev: [u8; 32]) -> Self {
        Position { index: 0, prev, expected_seq: 0 }
    }
}

impl Tip {
    /// Right after this entry.
    pub fn next(&self) -> Position {
        Position {
            index: self.entry.index + 1,
            prev: self.hash,
            expected_seq: self.seq,
        }
    }
}

/// A step's name, as metrics and logs call it.
pub fn step_name(step: &LotteryStep) -> &'static str {
    match step {
        LotteryStep::Opened { .. } => "opened",
        LotteryStep::Purchase { .. } => "purchase",
        LotteryStep::Closed { .. } => "closed",
        LotteryStep::Beacon { .. } => "beacon",
        LotteryStep::Revealed { .. } => "revealed",
        LotteryStep::Drawn { .. } => "drawn",
        LotteryStep::Settled { .. } => "settled",
    }
}

/// What an append did.
#[derive(Debug)]
pub enum Appended {
    /// Written: the new tip.
    Done(Box<Tip>),
    /// Another writer appended first: nothing written; read the tip again.
    Lost,
}

/// The LOTTERY stream.
#[derive(Clone)]
pub struct Journal {
    js: herald_runtime::Js,
    stream: jetstream::stream::Stream,
}

impl Journal {
    /// Errors: the LOTTERY stream is missing (`pipeline setup`).
    pub async fn open(js: herald_runtime::Js) -> anyhow::Result<Self> {
        let stream = js.get_stream(subjects::LOTTERY_STREAM).await?;
        Ok(Journal { js, stream })
    }

    /// The round's last entry; `None` if it never opened.
    ///
    /// Errors: NATS failed, or the entry does not decode.
    pub async fn tip(&self, round: u64) -> anyhow::Result<Option<Tip>> {
        match self.stream.get_last_raw_message_by_subject(&subjects::lottery_round(round)).await {
            Ok(m) => Ok(Some(Tip {
                entry: herald_schemas::decode(&m.payload)?,
                hash: Sha256::digest(&m.payload).into(),
                seq: m.sequence,
            })),
            Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Appends `step` to `round` at `at`, carrying the running ticket count and spend.
    ///
    /// Errors: NATS failed (nothing or the entry was written; read the tip again).
    pub async fn append(&self, round: u64, at: Position, sold: u64, spend: u128, step: LotteryStep) -> anyhow::Result<Appended> {
        let name = step_name(&step);
        let entry = LotteryEntry::new(round, at.index, hex::encode(at.prev), sold, spend.to_string(), step);
        let bytes = herald_schemas::encode(&entry);
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(async_nats::header::NATS_EXPECTED_LAST_SUBJECT_SEQUENCE, at.expected_seq.to_string().as_str());
        let published = self.js.publish_with_headers(subjects::lottery_round(round), headers, bytes.clone().into()).await?.await;
        match published {
            Ok(ack) => {
                // the journal's own count of steps written: a step taken twice would show here
                metrics::counter!(super::metrics::STEPS.name, "step" => name).increment(1);
                Ok(Appended::Done(Box::new(Tip {
                    entry,
                    hash: Sha256::digest(&bytes).into(),
                    seq: ack.sequence,
                })))
            }
            Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => Ok(Appended::Lost),
            Err(e) => Err(e.into()),
        }
    }

    /// The round's entries after stream sequence `after` (0: all), in order, each with
    /// the SHA-256 of its bytes and its sequence; checks that each entry's `prev` is the
    /// hash of the one before (`after_hash`: the hash of the entry at `after`).
    ///
    /// Errors: NATS failed, an entry does not decode, or the chain is broken.
    pub async fn entries_after(&self, round: u64, after: u64, after_hash: Option<[u8; 32]>) -> anyhow::Result<Vec<(LotteryEntry, [u8; 32], u64)>> {
        let messages = herald_runtime::reader::read_from(&self.js, subjects::LOTTERY_STREAM, &subjects::lottery_round(round), after + 1).await?;
        let mut out: Vec<(LotteryEntry, [u8; 32], u64)> = Vec::with_capacity(messages.len());
        let mut prev = after_hash;
        for m in &messages {
            let entry: LotteryEntry = herald_schemas::decode(&m.payload)?;
            if let Some(p) = prev {
                anyhow::ensure!(entry.prev == hex::encode(p), "round {round}: entry {} does not chain to the entry before it", entry.index);
            }
            let hash: [u8; 32] = Sha256::digest(&m.payload).into();
            prev = Some(hash);
            out.push((entry, hash, m.info().map_err(|e| anyhow::anyhow!("{e}"))?.stream_sequence));
        }
        Ok(out)
    }

    /// The parameters the round opened with; `None` if it never opened.
    ///
    /// Errors: NATS failed, or the first entry is not an `Opened` one.
    pub async fn opened(&self, round: u64) -> anyhow::Result<Option<LotteryEntry>> {
        use async_nats::jetstream::stream::RawMessageErrorKind;
        match self.stream.get_first_raw_message_by_subject(subjects::lottery_round(round), 0).await {
            Ok(m) => {
                let e: LotteryEntry = herald_schemas::decode(&m.payload)?;
                anyhow::ensure!(matches!(e.step, LotteryStep::Opened { .. }), "round {round}: the first entry is not Opened");
                Ok(Some(e))
            }
            Err(e) if e.kind() == RawMessageErrorKind::NoMessageFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

/// Where a round stands, from its last entry (in the order a round goes through them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// Tickets on sale.
    Selling,
    Closed,
    BeaconIn,
    Revealed,
    Drawn,
    Settled,
}

/// The phase a step leaves the round in.
pub fn phase(step: &LotteryStep) -> Phase {
    match step {
        LotteryStep::Opened { .. } | LotteryStep::Purchase { .. } => Phase::Selling,
        LotteryStep::Closed { .. } => Phase::Closed,
        LotteryStep::Beacon { .. } => Phase::BeaconIn,
        LotteryStep::Revealed { .. } => Phase::Revealed,
        LotteryStep::Drawn { .. } => Phase::Drawn,
        LotteryStep::Settled { .. } => Phase::Settled,
    }
}

/// The amount in an entry's decimal string.
///
/// Errors: not an integer.
pub fn amount(s: &str) -> anyhow::Result<u128> {
    s.parse().map_err(|e| anyhow::anyhow!("amount {s:?}: {e}"))
}
