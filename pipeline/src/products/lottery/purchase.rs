//! `/buy N`: a ledger debit, then the tickets appended to the round on sale.
//!
//! Idempotent per update: the debit's reference is `lottery:buy:<update id>`, and the
//! purchase, once appended, is recorded under `buy.<update id>`; a redelivery finds
//! the record (or, after a crash between the append and the record, the purchase in
//! the journal) and answers with the same receipt.
//!
//! Only a debit made before `t_close` buys tickets in that round: the append is
//! conditional on the round's last entry, so it lands strictly before or after the
//! Closed entry. A purchase too late for a round goes to the next one, and the buyer is
//! told.

use alloy::primitives::U256;
use async_nats::jetstream::kv;
use herald_core::users;
use herald_schemas::LotteryStep;
use serde::{Deserialize, Serialize};

use super::journal::{amount, Appended, Phase};
use super::service::{Holding, Lottery};
use crate::core::ledger::Applied;
use herald_runtime::Effect;

/// A purchase made: what the receipt shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Receipt {
    pub round: u64,
    /// 16 bytes, hex.
    pub receipt_id: String,
    pub first_ticket: u64,
    pub count: u64,
    /// Base units paid.
    pub amount: String,
    /// The round that was on sale when the user asked, if the tickets went to a later one.
    #[serde(default)]
    pub moved_from: Option<u64>,
}

/// What `/buy` did.
#[derive(Debug, Clone, PartialEq)]
pub enum Bought {
    Receipt(Receipt),
    /// The balance (base units) is below the cost; nothing debited.
    Insufficient { balance: U256, cost: u128 },
    Paused,
    NoRound,
}

/// Buys `count` tickets for the user, once per `update_id`: what the user is told, and
/// whether the purchase was made now, found made by an earlier delivery, or refused.
///
/// Errors: NATS, KV or the ledger failed, or the next round is not open yet after a
/// close (retrying is safe: the debit is applied once and the receipt is kept).
pub async fn buy(l: &Lottery, user_id: i64, chat_id: i64, update_id: i64, count: u64) -> anyhow::Result<(Bought, Effect)> {
    let record = format!("buy.{update_id}");
    // independent reads, at once: a purchase is on the path to the user's receipt
    let (kept, paused, current) = tokio::try_join!(
        async { l.kv.get(&record).await.map_err(anyhow::Error::from) },
        l.paused(),
        l.current()
    )?;
    if let Some(v) = kept {
        return Ok((Bought::Receipt(serde_json::from_slice(&v)?), Effect::AlreadyMade));
    }
    if paused {
        return Ok((Bought::Paused, Effect::NotMade));
    }
    let Some(on_sale) = current else {
        return Ok((Bought::NoRound, Effect::NotMade));
    };
    let asked_in = first_asked(l, update_id, on_sale).await?;
    let cost = (count as u128).checked_mul(l.rules.price).ok_or_else(|| anyhow::anyhow!("cost overflow"))?;
    let debit_ref = format!("lottery:buy:{update_id}");
    let note = format!("{count} lottery tickets");
    let (debited, referrers) = tokio::try_join!(l.ledger.debit(user_id, U256::from(cost), &debit_ref, &note), referrers(l, user_id))?;
    match debited {
        Applied::Insufficient(balance) => return Ok((Bought::Insufficient { balance, cost }, Effect::NotMade)),
        Applied::Done(_) => {}
        Applied::AlreadyApplied => {
            // a crash after the debit: the purchase may be in the journal already
            if let Some(r) = find(l, asked_in, &debit_ref).await? {
                return Ok((keep(l, user_id, &record, r).await?, Effect::AlreadyMade));
            }
        }
    }
    let receipt_id: [u8; 16] = rand::random();
    let mut round = asked_in;
    let mut last = l.purchase_tip.lock().await;
    for _ in 0..1000 {
        let tip = match last.take() {
            Some((r, tip)) if r == round => tip,
            _ => match l.journal.tip(round).await? {
                Some(tip) => tip,
                None => anyhow::bail!("round {round} is not open yet: the purchase waits for it"),
            },
        };
        let Some(opened) = l.journal.opened(round).await? else {
            anyhow::bail!("round {round} is not open yet: the purchase waits for it")
        };
        let LotteryStep::Opened { t_close, price, .. } = &opened.step else {
            unreachable!("opened() returns an Opened entry")
        };
        let on_sale = super::journal::phase(&tip.entry.step) == Phase::Selling && herald_schemas::now_ms() < t_close * 1000;
        if !on_sale {
            round += 1;
            continue;
        }
        anyhow::ensure!(amount(price)? == l.rules.price, "round {round} sells at another price than was paid: retry");
        let step = LotteryStep::Purchase {
            receipt_id: hex::encode(receipt_id),
            user_id,
            chat_id,
            first_ticket: tip.entry.sold,
            count,
            amount: cost.to_string(),
            debit_ref: debit_ref.clone(),
            referrers: referrers.clone(),
        };
        let spend = amount(&tip.entry.spend)? + cost;
        if let Appended::Done(new_tip) = l.journal.append(round, tip.next(), tip.entry.sold + count, spend, step).await? {
            *last = Some((round, *new_tip));
            drop(last);
            let r = Receipt {
                round,
                receipt_id: hex::encode(receipt_id),
                first_ticket: tip.entry.sold,
                count,
                amount: cost.to_string(),
                moved_from: (round != asked_in).then_some(asked_in),
            };
            return Ok((keep(l, user_id, &record, r).await?, Effect::Made));
        }
        // another instance's purchase (or the close) got in first: read the tip again
    }
    anyhow::bail!("round {round}: 1000 conflicting appends in a row")
}

/// The round on sale when this update was first handled: a retry after the close
/// still tells the buyer their tickets moved.
async fn first_asked(l: &Lottery, update_id: i64, on_sale: u64) -> anyhow::Result<u64> {
    let key = format!("buy.{update_id}.asked");
    match l.kv.create(&key, on_sale.to_string().into()).await {
        Ok(_) => Ok(on_sale),
        Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => match l.kv.get(&key).await? {
            Some(v) => Ok(std::str::from_utf8(&v)?.parse()?),
            None => anyhow::bail!("{key} exists but could not be read: retry"),
        },
        Err(e) => Err(e.into()),
    }
}

/// Records the receipt (for redeliveries and `/tickets`) and returns it.
async fn keep(l: &Lottery, user_id: i64, record: &str, r: Receipt) -> anyhow::Result<Bought> {
    let holding = Holding {
        round: r.round,
        receipt_id: r.receipt_id.clone(),
        first_ticket: r.first_ticket,
        count: r.count,
        amount: r.amount.clone(),
    };
    let bytes = serde_json::to_vec(&r)?;
    tokio::try_join!(
        async { l.kv.put(record, bytes.into()).await.map_err(anyhow::Error::from) },
        l.add_holding(user_id, holding)
    )?;
    Ok(Bought::Receipt(r))
}

/// The purchase paid by `debit_ref`, searched in the rounds it can be in.
async fn find(l: &Lottery, asked_in: u64, debit_ref: &str) -> anyhow::Result<Option<Receipt>> {
    for round in asked_in.saturating_sub(1).max(1)..=asked_in + 1 {
        for p in l.round(round).await?.purchases {
            if p.debit_ref == debit_ref {
                return Ok(Some(Receipt {
                    round,
                    receipt_id: hex::encode(p.receipt_id),
                    first_ticket: p.first_ticket,
                    count: p.count,
                    amount: p.amount.to_string(),
                    moved_from: (round != asked_in).then_some(asked_in),
                }));
            }
        }
    }
    Ok(None)
}

/// The user's referrers, nearest first, as many levels as are paid. The chain is fixed
/// (a referrer is bound once, on the first `/start`), so it is recorded with the
/// purchase and settlement needs no lookup.
async fn referrers(l: &Lottery, user_id: i64) -> anyhow::Result<Vec<i64>> {
    let mut chain = Vec::new();
    let mut at = user_id;
    while chain.len() < l.referral_bps.len() {
        match users::load(&l.users, at).await?.and_then(|(u, _)| u.referrer) {
            // a cycle cannot be bound (see the router), but never loop on a bad record
            Some(r) if r != user_id && !chain.contains(&r) => {
                chain.push(r);
                at = r;
            }
            _ => break,
        }
    }
    Ok(chain)
}
