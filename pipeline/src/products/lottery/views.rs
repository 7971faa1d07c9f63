//! The lottery's answers: `/lottery`, `/tickets`, `/draws`, `/verify`, `/ref`, the
//! receipt of `/buy`, and `/admin lottery`.

use herald_draw::beacon;
use herald_schemas::{escape_html, LotteryStep};
use serde::{Deserialize, Serialize};

use super::journal::phase;
use super::purchase::{Bought, Receipt};
use super::service::Lottery;
use super::texts::{self, at, ticket_range, time_left, usd};
use crate::core::ledger::money::{units, LEDGER_DECIMALS};

/// A settled round's summary (`draw.<round>` in the lottery's bucket), for `/draws`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DrawSummary {
    pub round: u64,
    pub outcome: String,
    pub tickets: u64,
    /// Base units.
    pub pot: String,
    /// (ticket, prize in base units), 1st place first.
    pub winners: Vec<(u64, String)>,
}

fn now_s() -> u64 {
    herald_schemas::now_ms() / 1000
}

/// The previous round's rollover into `round`, if already known.
async fn rollover_into(l: &Lottery, round: u64) -> anyhow::Result<Option<u128>> {
    if round <= 1 {
        return Ok(Some(0));
    }
    Ok(match l.journal.tip(round - 1).await? {
        Some(t) => match t.entry.step {
            LotteryStep::Settled { rollover_out, .. } => rollover_out.parse().ok(),
            _ => None,
        },
        None => Some(0),
    })
}

/// `/lottery`: the round on sale.
pub async fn lottery(l: &Lottery, user_id: i64) -> anyhow::Result<String> {
    let Some(id) = l.current().await? else {
        return Ok(texts::NO_ROUND.into());
    };
    let (Some(opened), Some(tip)) = (l.journal.opened(id).await?, l.journal.tip(id).await?) else {
        return Ok(texts::NO_ROUND.into());
    };
    let LotteryStep::Opened {
        price,
        t_close,
        beacon_round,
        commitment,
        fee_bps,
        shares_bps,
        ..
    } = opened.step
    else {
        unreachable!("opened() returns an Opened entry")
    };
    let price: u128 = price.parse()?;
    let mine: u64 = l.holdings(user_id).await?.iter().filter(|h| h.round == id).map(|h| h.count).sum();
    let spend: u128 = tip.entry.spend.parse()?;
    let pot = match rollover_into(l, id).await? {
        Some(r) => format!("{} USD", usd(spend + r)),
        None => format!("{} USD + the last round's rollover", usd(spend)),
    };
    let shares: Vec<String> = shares_bps.iter().enumerate().map(|(i, s)| format!("{}. {}%", i + 1, *s as f64 / 100.0)).collect();
    let state = if phase(&tip.entry.step) == super::journal::Phase::Selling && now_s() < t_close {
        format!("sale closes in {} ({})", time_left(now_s(), t_close), at(t_close))
    } else {
        "sale closed, the draw is under way".into()
    };
    Ok(format!(
        "🎟 <b>Lottery round {id}</b>: {state}\nTicket: {} USD · sold: {} · pot: {pot}\nYour tickets: {mine}\n\
         Prizes (of the pot after the {}% fee): {}\nDraw: drand quicknet round {beacon_round} ({}).\n\
         Commitment: <code>{commitment}</code>\n/buy N to take part.",
        usd(price),
        tip.entry.sold,
        fee_bps as f64 / 100.0,
        shares.join(", "),
        at(beacon::round_time(&l.chain, beacon_round)),
    ))
}

/// The answer to `/buy`.
pub fn bought(b: &Bought, l: &Lottery) -> String {
    match b {
        Bought::Receipt(r) => receipt(r, l),
        Bought::Insufficient { balance, cost } => format!(
            "Your balance is {} USD; these tickets cost {} USD. /deposit to top it up.",
            units(*balance, LEDGER_DECIMALS),
            usd(*cost)
        ),
        Bought::Paused => texts::PAUSED.into(),
        Bought::NoRound => texts::NO_ROUND.into(),
    }
}

/// The answer to a `/buy` the balance cannot pay: kept as a standing order, what is
/// missing, and that payments sends the deposit address next.
pub fn standing(order: &super::orders::Order, balance: alloy::primitives::U256, cost: u128) -> String {
    let missing = cost.saturating_sub(u128::try_from(balance).unwrap_or(u128::MAX));
    format!(
        "Your balance is {} USD; {} tickets cost {} USD. <b>Deposit {} USD more</b> to your address (next message):          the tickets are bought by themselves once it is final, if round {}'s sale is still open (the order stands for an hour).",
        units(balance, LEDGER_DECIMALS),
        order.count,
        usd(cost),
        usd(missing),
        order.round
    )
}

fn receipt(r: &Receipt, _l: &Lottery) -> String {
    let moved = match r.moved_from {
        Some(from) => format!("\n⚠️ Round {from}'s sale had closed: your tickets are in round {}.", r.round),
        None => String::new(),
    };
    format!(
        "✅ <b>Receipt</b>: {} ticket{} in round {}: {}\nPaid: {} USD\nReceipt id: <code>{}</code> (keep it: it proves your tickets are in the round's Merkle root){moved}",
        r.count,
        if r.count == 1 { "" } else { "s" },
        r.round,
        ticket_range(r.first_ticket, r.count),
        usd(r.amount.parse().unwrap_or(0)),
        r.receipt_id,
    )
}

/// `/tickets`: the user's purchases, newest first.
pub async fn tickets(l: &Lottery, user_id: i64) -> anyhow::Result<String> {
    let holdings = l.holdings(user_id).await?;
    if holdings.is_empty() {
        return Ok("You have no tickets yet. /buy N to take part.".into());
    }
    let mut lines = vec!["🎟 <b>Your tickets</b>".to_string()];
    for h in holdings.iter().take(20) {
        lines.push(format!("Round {}: {} · <code>{}</code>", h.round, ticket_range(h.first_ticket, h.count), h.receipt_id));
    }
    if holdings.len() > 20 {
        lines.push(format!("… and {} earlier purchases.", holdings.len() - 20));
    }
    Ok(lines.join("\n"))
}

/// `/draws`: the last five settled rounds.
pub async fn draws(l: &Lottery) -> anyhow::Result<String> {
    let current = l.current().await?.unwrap_or(0);
    let mut lines = vec!["🎲 <b>Past draws</b>".to_string()];
    for round in (current.saturating_sub(8).max(1)..current.max(1)).rev() {
        let Some(v) = l.kv.get(format!("draw.{round}")).await? else {
            continue;
        };
        let s: DrawSummary = serde_json::from_slice(&v)?;
        let result = match s.outcome.as_str() {
            "drawn" => s.winners.iter().enumerate().map(|(i, (t, p))| format!("{}. #{t} won {} USD", i + 1, usd(p.parse().unwrap_or(0)))).collect::<Vec<_>>().join(", "),
            "rolled_over" => "no tickets: the pot rolled over".into(),
            _ => "refunded".into(),
        };
        lines.push(format!("Round {round}: {} tickets, pot {} USD — {result} · /verify {round}", s.tickets, usd(s.pot.parse().unwrap_or(0))));
        if lines.len() > 5 {
            break;
        }
    }
    if lines.len() == 1 {
        lines.push("No draws yet.".into());
    }
    Ok(lines.join("\n"))
}

/// `/verify ROUND`.
pub async fn verify(l: &Lottery, arg: &str) -> anyhow::Result<String> {
    let Ok(round) = arg.trim().parse::<u64>() else {
        return Ok("Usage: /verify ROUND, e.g. /verify 12. /draws lists the rounds.".into());
    };
    if l.kv.get(format!("draw.{round}")).await?.is_none() {
        return Ok(texts::not_drawn(round));
    }
    Ok(texts::how_to_verify(round, &l.bundle_url(round)))
}

/// `/ref`: the user's link and what it pays.
pub fn referral(l: &Lottery, user_id: i64) -> String {
    let levels: Vec<String> = l.referral_bps.iter().enumerate().map(|(i, r)| format!("level {}: {}%", i + 1, *r as f64 / 100.0)).collect();
    format!(
        "🤝 Your referral link:\nhttps://t.me/{}?start=ref_{user_id}\nYou earn a share of the lottery tickets bought by the people you bring, and by theirs ({}), paid at each draw from the house fee.",
        escape_html(&l.bot_username),
        levels.join(", ")
    )
}

/// `/admin lottery pause` (`Some(true)`) or `resume` (`Some(false)`): a change, made by
/// the inbox's apply step; `None` for a read.
pub fn admin_pause(args: &str) -> Option<bool> {
    match args.split_whitespace().nth(1) {
        Some("pause") => Some(true),
        Some("resume") => Some(false),
        _ => None,
    }
}

/// What an admin reads after pausing (`true`) or resuming sales.
pub fn paused(paused: bool) -> String {
    if paused {
        "⏸ Lottery sales paused. /admin lottery resume to resume.".into()
    } else {
        "▶️ Lottery sales resumed.".into()
    }
}

/// `/admin lottery status` (the changes are [`admin_pause`]).
pub async fn admin(l: &Lottery, args: &str) -> anyhow::Result<String> {
    match args.split_whitespace().nth(1).unwrap_or("status") {
        "status" => {
            let r = &l.rules;
            let current = l.current().await?;
            let mut text = format!(
                "<b>Lottery</b>: sales {}\nRound: {}\nPrice {} USD · fee {} bps · shares {:?} bps · referral {:?} bps\nPeriod {} s · next close {} · beacon delay {} s · chain {}",
                if l.paused().await? { "PAUSED" } else { "open" },
                current.map_or("none yet".into(), |c| c.to_string()),
                usd(r.price),
                r.fee_bps,
                r.shares_bps,
                l.referral_bps,
                r.period_s,
                at(r.next_close(now_s())),
                r.beacon_delay_s,
                l.chain.hash
            );
            if let Some(c) = current {
                for id in [c.saturating_sub(1), c].into_iter().filter(|id| *id >= 1) {
                    if let Some(t) = l.journal.tip(id).await? {
                        text.push_str(&format!("\nRound {id}: {} ({} tickets)", super::journal::step_name(&t.entry.step), t.entry.sold));
                    }
                }
            }
            Ok(text)
        }
        _ => Ok("Usage: /admin lottery status|pause|resume".into()),
    }
}

/// The lottery's part of `/admin stats`: the current round, its step, tickets sold and
/// pot (ticket spend plus the rollover into it), and sales paused or not. Read from the
/// journal and the lottery's bucket, so any process can answer it.
///
/// Errors: the LOTTERY stream or the bucket is unreachable, or an entry is malformed.
pub async fn section(js: &herald_runtime::Js) -> anyhow::Result<String> {
    use herald_schemas::subjects;
    let kv = js.get_key_value(subjects::LOTTERY_BUCKET).await?;
    let journal = super::journal::Journal::open(js.clone()).await?;
    let paused = kv.get("paused").await?.is_some_and(|v| v.as_ref() == b"1");
    let current: Option<u64> = kv.get("current").await?.map(|v| String::from_utf8_lossy(&v).parse()).transpose()?;
    let sales = if paused { "PAUSED" } else { "open" };
    let Some(id) = current else {
        return Ok(format!("<b>Lottery</b>\nno round yet · sales {sales}"));
    };
    let Some(tip) = journal.tip(id).await? else {
        return Ok(format!("<b>Lottery</b>\nround {id} not opened yet · sales {sales}"));
    };
    let spend: u128 = tip.entry.spend.parse()?;
    let rollover = match id {
        0 | 1 => Some(0),
        _ => match journal.tip(id - 1).await?.map(|t| t.entry.step) {
            Some(LotteryStep::Settled { rollover_out, .. }) => rollover_out.parse().ok(),
            Some(_) => None,
            None => Some(0),
        },
    };
    let pot = match rollover {
        Some(r) => format!("{} USD", usd(spend + r)),
        None => format!("{} USD + the last round's rollover", usd(spend)),
    };
    Ok(format!(
        "<b>Lottery</b>\nround {id}: {} · tickets {} · pot {pot} · sales {sales}",
        super::journal::step_name(&tip.entry.step),
        tip.entry.sold
    ))
}
