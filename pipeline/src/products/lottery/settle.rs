//! Settlement: prizes, referral rewards or refunds credited to the ledger, each once
//! (its reference: `lottery:<round>:prize:<place>`, `lottery:<round>:referral:<user>`,
//! `lottery:<round>:refund:<receipt>`), and every participant told. Also the "sale
//! closed" notice.

use std::collections::{BTreeMap, HashMap};

use alloy::primitives::U256;
use futures::{StreamExt, TryStreamExt};
use herald_draw::money;
use herald_runtime::Output;
use herald_schemas::{subjects, LotteryStep, OutboundMessage, Payout, Priority};

use super::round::Round;
use super::service::Lottery;
use super::texts::{self, ticket_range, usd};
use crate::core::ledger::Applied;

/// Ledger credits a settlement makes at once.
const CREDITS_IN_FLIGHT: usize = 32;

/// Each participant's chat, ticket count and first ticket, in order of first purchase.
fn participants(round: &Round) -> Vec<(i64, i64, u64, u64)> {
    let mut order: Vec<i64> = Vec::new();
    let mut by_user: HashMap<i64, (i64, u64, u64)> = HashMap::new();
    for p in &round.purchases {
        let e = by_user.entry(p.user_id).or_insert_with(|| {
            order.push(p.user_id);
            (p.chat_id, 0, p.first_ticket)
        });
        e.1 += p.count;
    }
    order
        .into_iter()
        .map(|u| {
            let (chat, tickets, first) = by_user[&u];
            (u, chat, tickets, first)
        })
        .collect()
}

fn notice(key: String, chat_id: i64, text: String) -> Output {
    let msg = OutboundMessage::html(key, chat_id, text, Priority::Broadcast, herald_schemas::now_ms());
    Output {
        subject: subjects::notify(chat_id),
        msg_id: msg.idempotency_key.clone(),
        payload: herald_schemas::encode(&msg),
    }
}

/// Tells every participant the sale closed (once per round: a KV marker, and each
/// message under its own key).
///
/// Errors: NATS or KV failed.
pub async fn tell_closed(l: &Lottery, round: &Round) -> anyhow::Result<()> {
    let marker = format!("told.closed.{}", round.id);
    if l.kv.get(&marker).await?.is_some() {
        return Ok(());
    }
    let root = round.tickets_root.clone().unwrap_or_default();
    let outputs = participants(round)
        .into_iter()
        .map(|(user, chat, tickets, first)| {
            let text = format!(
                "🔒 <b>Round {} sale closed.</b> You hold {tickets} of {} tickets.\nTickets root: <code>{root}</code>\nProof that your ticket #{first} is in it: {}\nThe draw uses drand round {} ({}).",
                round.id,
                round.sold,
                herald_schemas::escape_html(&l.proof_url(round.id, first)),
                round.beacon_round,
                texts::at(herald_draw::beacon::round_time(&l.chain, round.beacon_round)),
            );
            notice(format!("lottery.{}.closed.{user}", round.id), chat, text)
        })
        .collect();
    herald_runtime::publish_all(&l.js, outputs).await?;
    l.kv.put(&marker, "1".into()).await?;
    Ok(())
}

/// Referral rewards of a drawn round (none for a refunded or empty one): per referrer,
/// the rates of `--lottery-referral-bps` on their referred users' spend, out of the fee.
///
/// Errors: the rewards would exceed the fee (refused, see [`money::referral_rewards`]).
pub fn referral_rewards(l: &Lottery, round: &Round, drawn: bool) -> anyhow::Result<BTreeMap<i64, u128>> {
    if !drawn || round.sold == 0 {
        return Ok(BTreeMap::new());
    }
    let mut spends: BTreeMap<i64, (u128, Vec<i64>)> = BTreeMap::new();
    for p in &round.purchases {
        let e = spends.entry(p.user_id).or_insert_with(|| (0, p.referrers.clone()));
        e.0 += p.amount;
    }
    let fee = money::split(round.pot, round.fee_bps, &round.shares_bps, 0)?.fee;
    let spends: Vec<(u128, Vec<i64>)> = spends.into_values().collect();
    Ok(money::referral_rewards(&spends, &l.referral_bps, fee)?)
}

/// One credit of a settlement: (user, chat, amount in base units, kind, ledger reference).
type PayoutLine = (i64, i64, u128, &'static str, String);

/// The payouts of a drawn round.
fn payouts(l: &Lottery, round: &Round) -> anyhow::Result<Vec<PayoutLine>> {
    let mut out = Vec::new();
    match round.outcome.as_deref() {
        Some("drawn") => {
            let split = money::split(round.pot, round.fee_bps, &round.shares_bps, round.winning_tickets.len())?;
            for (place, (ticket, prize)) in round.winning_tickets.iter().zip(&split.prizes).enumerate() {
                let p = round.holder(*ticket).ok_or_else(|| anyhow::anyhow!("round {}: ticket {ticket} has no purchase", round.id))?;
                out.push((p.user_id, p.chat_id, *prize, "prize", format!("lottery:{}:prize:{}", round.id, place + 1)));
            }
            let rewards = referral_rewards(l, round, true)?;
            for (referrer, amount) in rewards {
                // a referrer's private chat id is their user id
                out.push((referrer, referrer, amount, "referral", format!("lottery:{}:referral:{referrer}", round.id)));
            }
            let paid: u128 = out.iter().filter(|p| p.3 == "prize").map(|p| p.2).sum();
            // the invariant, once more on what is about to be paid
            let rollover = round.rollover_out.unwrap_or(0);
            anyhow::ensure!(
                paid + split.fee + rollover == round.pot,
                "round {}: prizes {paid} + fee {} + rollover {rollover} != pot {}",
                round.id,
                split.fee,
                round.pot
            );
        }
        Some("refunded") => {
            for p in &round.purchases {
                out.push((p.user_id, p.chat_id, p.amount, "refund", format!("lottery:{}:refund:{}", round.id, hex::encode(p.receipt_id))));
            }
        }
        _ => {}
    }
    Ok(out)
}

/// Credits every payout once, tells every participant and referrer, and returns the
/// Settled step. `None`: the settlement breaks the money invariant; it is refused,
/// nothing is paid, and the admins are told.
///
/// Errors: NATS, KV or the ledger failed (retrying is safe).
pub async fn settle(l: &Lottery, round: &Round) -> anyhow::Result<Option<LotteryStep>> {
    let payouts = match payouts(l, round) {
        Ok(p) => p,
        Err(e) => {
            metrics::counter!(super::metrics::SETTLEMENTS_REFUSED.name).increment(1);
            tracing::error!(round = round.id, error = %e, "lottery settlement refused");
            let outputs = l
                .admins
                .iter()
                .map(|&admin| notice(format!("lottery.{}.refused.{admin}", round.id), admin, format!("⚠️ Lottery round {} settlement refused: {}", round.id, herald_schemas::escape_html(&e.to_string()))))
                .collect();
            herald_runtime::publish_all(&l.js, outputs).await?;
            return Ok(None);
        }
    };
    // credits to different users go in parallel (a round can have thousands of referrers);
    // two to one user retry each other's conditional append in the ledger
    let mut credits = Vec::with_capacity(payouts.len());
    for (user, _, amount, kind, reference) in &payouts {
        credits.push(async move {
            let note = format!("lottery round {} {kind}", round.id);
            if let Applied::Done(_) = l.ledger.credit(*user, U256::from(*amount), reference, &note).await? {
                // the lottery's own count of credits made: a payout made twice would show here
                metrics::counter!(super::metrics::PAYOUTS.name, "kind" => *kind).increment(1);
            }
            anyhow::Ok(())
        });
    }
    let started = std::time::Instant::now();
    futures::stream::iter(credits)
        .buffer_unordered(CREDITS_IN_FLIGHT)
        .try_collect::<Vec<()>>()
        .await?;
    let credited_in = started.elapsed();
    let mut won: HashMap<i64, u128> = HashMap::new();
    for (user, _, amount, kind, _) in &payouts {
        if *kind != "referral" {
            *won.entry(*user).or_default() += amount;
        }
    }
    let mut outputs = Vec::new();
    let url = l.bundle_url(round.id);
    for (user, chat, tickets, _) in participants(round) {
        let text = result_text(round, tickets, won.get(&user).copied(), &url);
        outputs.push(notice(format!("lottery.{}.result.{user}", round.id), chat, text));
    }
    for (user, chat, amount, kind, _) in &payouts {
        if *kind == "referral" {
            let text = format!("🤝 Referral reward: {} USD from your referrals' tickets in round {}. It is in your /balance.", usd(*amount), round.id);
            outputs.push(notice(format!("lottery.{}.referral.{user}", round.id), *chat, text));
        }
    }
    let told = outputs.len();
    herald_runtime::publish_all(&l.js, outputs).await?;
    tracing::info!(round = round.id, credits = payouts.len(), credit_ms = credited_in.as_millis() as u64, told, told_ms = (started.elapsed() - credited_in).as_millis() as u64, "lottery round settled");
    let summary = super::views::DrawSummary {
        round: round.id,
        outcome: round.outcome.clone().unwrap_or_default(),
        tickets: round.sold,
        pot: round.pot.to_string(),
        winners: payouts.iter().filter(|p| p.3 == "prize").zip(&round.winning_tickets).map(|(p, t)| (*t, p.2.to_string())).collect(),
    };
    l.kv.put(format!("draw.{}", round.id), serde_json::to_vec(&summary)?.into()).await?;
    Ok(Some(LotteryStep::Settled {
        credits: payouts.len() as u64,
        credited: payouts.iter().map(|p| p.2).sum::<u128>().to_string(),
        prizes: payouts
            .into_iter()
            .filter(|p| p.3 == "prize")
            .map(|(user_id, _, amount, kind, reference)| Payout {
                user_id,
                amount: amount.to_string(),
                kind: kind.into(),
                reference,
            })
            .collect(),
        rollover_out: round.rollover_out.unwrap_or(0).to_string(),
    }))
}

fn result_text(round: &Round, tickets: u64, credited: Option<u128>, url: &str) -> String {
    let id = round.id;
    match round.outcome.as_deref() {
        Some("refunded") => format!(
            "↩️ <b>Round {id} refunded.</b> The draw's secret seed was not revealed in time, so every ticket is refunded: {} USD is back in your /balance.",
            usd(credited.unwrap_or(0))
        ),
        _ => {
            let winners: Vec<String> = round
                .winning_tickets
                .iter()
                .enumerate()
                .map(|(i, t)| format!("{}. ticket {}", i + 1, ticket_range(*t, 1)))
                .collect();
            let mine = match credited {
                Some(prize) => format!("🎉 <b>You won {} USD!</b> It is already in your /balance.", usd(prize)),
                None => "No prize for your tickets this time.".into(),
            };
            format!(
                "🎲 <b>Round {id} drawn.</b> You had {tickets} of {} tickets.\n{}\n{mine}\nVerify the draw: /verify {id} ({})",
                round.sold,
                winners.join("\n"),
                herald_schemas::escape_html(url)
            )
        }
    }
}
