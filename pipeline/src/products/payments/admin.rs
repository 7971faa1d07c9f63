//! `/admin ...`: for the configured admin user ids only (checked on every command by
//! the updates stage). Changes to other users are written here, each idempotent under
//! a redelivered update.

use std::collections::HashSet;

use alloy::primitives::U256;
use herald_schemas::{subjects, Access, DepositStage, LedgerEntry, LedgerKind};

use crate::core::reply::Reply;
use super::coupons::{self, Coupon, Discount};
use crate::core::ledger::money::{units, LEDGER_DECIMALS};
use super::Payments;
use herald_runtime::Output;
use herald_schemas::escape_html;
use herald_core::users;
use herald_runtime::{Effect};

pub const USAGE: &str = "<b>/admin</b> extend ID DAYS · coupon CODE 20%|5 [USES] [DAYS] · coupon list · uncoupon CODE · \
reconcile · withdrawals · approve ID · reject ID REASON";

/// The subcommands, for the router.
pub const SUBCOMMANDS: &[&str] = &[
    "extend",
    "coupon",
    "uncoupon",
    "reconcile",
    // withdrawals' (super::withdraw::ADMIN_SUBCOMMANDS)
    "withdrawals",
    "approve",
    "reject",
];

/// Whether admin subcommand `args` changes state (`extend`, `coupon CODE …`,
/// `uncoupon`): the inbox runs those as its apply step, the rest (reads: `coupon list`,
/// a broadcast's outputs) in `decide`.
///
/// ```
/// use herald_pipeline::products::payments::admin::changes;
/// assert!(changes("coupon HALF 50%") && changes("extend 7 3"));
/// assert!(!changes("coupon list") && !changes("reconcile"));
/// ```
pub fn changes(args: &str) -> bool {
    let mut words = args.split_whitespace();
    match (words.next(), words.next()) {
        (Some("coupon"), Some(w)) => !w.eq_ignore_ascii_case("list"),
        (Some(sub), _) => matches!(sub, "extend" | "coupon" | "uncoupon"),
        _ => false,
    }
}

/// Answers `/admin <args>` from an admin, with what the command's effect found ([`changes`] tells which have one).
///
/// Errors: NATS failed (the update is retried; every action is idempotent).
pub async fn answer(
    p: &Payments,
    users: &async_nats::jetstream::kv::Store,
    access: &async_nats::jetstream::kv::Store,
    args: &str,
    update_id: i64,
) -> anyhow::Result<(Reply, Vec<Output>, Effect)> {
    let (sub, rest) = args.trim().split_once(char::is_whitespace).unwrap_or((args.trim(), ""));
    let words: Vec<&str> = rest.split_whitespace().collect();
    let id = |i: usize| words.get(i).and_then(|w| w.parse::<i64>().ok());
    let reply = |t: String| Ok((Reply::plain(t), Vec::new(), Effect::NotMade));
    let changed = |t: String, made: bool| Ok((Reply::plain(t), Vec::new(), if made { Effect::Made } else { Effect::NotMade }));
    match (sub, id(0)) {
        ("coupon", _) if words.first().is_some_and(|w| w.eq_ignore_ascii_case("list")) => {
            reply(coupon_list(&coupons::all(&p.coupons).await?, herald_schemas::now_ms()))
        }
        ("extend", Some(user)) => {
            let Some(days) = words.get(1).and_then(|d| d.parse::<u64>().ok()) else {
                return reply(USAGE.into());
            };
            let reference = format!("admin:{update_id}");
            let tier = super::subscriptions::Tier {
                name: "admin".into(),
                days: Some(days),
                price: U256::ZERO,
            };
            let done = users::load(users, user).await?.is_some();
            let granted = std::sync::atomic::AtomicBool::new(false);
            if done {
                // once per update: the grant's reference is remembered
                herald_runtime::records::upsert(access, user, || Access::none(user), |a| {
                    if a.last_grant.as_deref() != Some(reference.as_str()) {
                        granted.store(true, std::sync::atomic::Ordering::Relaxed);
                        a.paid_until_ms = Some(super::subscriptions::extend(
                            a.paid_until_ms,
                            herald_schemas::now_ms(),
                            &tier,
                        ));
                        a.last_grant = Some(reference.clone());
                    }
                })
                .await?;
            }
            let text = if done {
                format!("User {user}: {days} days added.")
            } else {
                format!("No user {user}.")
            };
            Ok((
                Reply::plain(text),
                Vec::new(),
                match (done, granted.into_inner()) {
                    (false, _) => Effect::NotMade,
                    (true, true) => Effect::Made,
                    (true, false) => Effect::AlreadyMade,
                },
            ))
        }
        ("coupon", _) => {
            let (text, made) = create_coupon(p, &words).await?;
            changed(text, made)
        }
        ("uncoupon", _) => {
            let code = words.first().and_then(|c| coupons::key(c)).unwrap_or_default();
            let found = !code.is_empty() && coupons::disable(&p.coupons, &code).await?;
            changed(
                if found {
                    format!("Coupon {code} withdrawn.")
                } else {
                    "No such coupon.".into()
                },
                found,
            )
        }
        ("reconcile", _) => reply(reconcile(p).await?),
        _ => reply(USAGE.into()),
    }
}

async fn ledger_entries(js: &herald_runtime::Js) -> anyhow::Result<Vec<LedgerEntry>> {
    herald_runtime::reader::read(js, subjects::LEDGER_STREAM, "herald.ledger.>")
        .await?
        .iter()
        .map(|m| herald_schemas::decode::<LedgerEntry>(&m.payload).map_err(Into::into))
        .collect()
}

/// Final deposit events with when they were stored (ms since epoch).
async fn final_deposits(js: &herald_runtime::Js) -> anyhow::Result<Vec<(u64, herald_schemas::Deposit)>> {
    let filter = format!("herald.deposits.{}.>", DepositStage::Final.as_str()); // every chain
    herald_runtime::reader::read(js, subjects::DEPOSITS_STREAM, &filter)
        .await?
        .iter()
        .map(|m| {
            let at = m.info().map(|i| (i.published.unix_timestamp_nanos() / 1_000_000) as u64).unwrap_or_default();
            Ok((at, herald_schemas::decode(&m.payload)?))
        })
        .collect()
}

/// The payments' part of `/admin stats` (the desk calls it through
/// `Product::stats`): active paid subscriptions, final deposits and what they credited
/// (all and today), revenue from subscriptions (all and today), withdrawals waiting.
///
/// Errors: a bucket or stream is unreachable.
pub async fn section(js: &herald_runtime::Js, now_ms: u64) -> anyhow::Result<String> {
    let access = js.get_key_value(subjects::ACCESS_BUCKET).await?;
    // a grant (purchase or extension), not a trial alone
    let subscribed = herald_runtime::records::all::<Access>(&access)
        .await?
        .iter()
        .filter(|a| a.paid_at(now_ms) && a.last_grant.is_some())
        .count();
    let today = herald_runtime::reader::today_start_ms(now_ms);
    let entries = ledger_entries(js).await?;
    let sum = |kind: LedgerKind, since: u64| -> U256 {
        entries
            .iter()
            .filter(|e| e.kind == kind && e.ts_ms >= since)
            .map(|e| e.amount.parse::<U256>().unwrap_or_default())
            .fold(U256::ZERO, |a, b| a + b)
    };
    let deposits = final_deposits(js).await?;
    let ids = |since: u64| {
        deposits
            .iter()
            .filter(|(at, _)| *at >= since)
            .map(|(_, d)| d.id())
            .collect::<HashSet<_>>()
            .len()
    }; // replays repeat events
    let waiting = match js.get_key_value(subjects::WITHDRAWALS_BUCKET).await {
        Ok(store) => super::withdraw::waiting_count(&store).await?.to_string(),
        Err(_) => "off".into(),
    };
    let usd = |v: U256| units(v, LEDGER_DECIMALS);
    Ok(format!(
        "<b>Payments</b>\nactive paid subscriptions: {subscribed}\n\
         final deposits: {} (today {}), credited {} USD (today {} USD)\n\
         revenue (subscriptions): {} USD (today {} USD)\nwithdrawals waiting for approval: {waiting}",
        ids(0),
        ids(today),
        usd(sum(LedgerKind::Credit, 0)),
        usd(sum(LedgerKind::Credit, today)),
        usd(sum(LedgerKind::Debit, 0)),
        usd(sum(LedgerKind::Debit, today)),
    ))
}

/// `/admin coupon list`: every coupon with its discount, uses, expiry and state,
/// usable ones first, at most 50.
///
/// ```
/// use herald_pipeline::products::payments::admin::coupon_list;
/// use herald_pipeline::products::payments::coupons::{Coupon, Discount};
/// let c = Coupon { code: "HALF".into(), discount: Discount::Percent { percent: 50 }, expires_ms: None,
///     max_uses: Some(10), uses: 3, disabled: false, held_by: vec![] };
/// assert!(coupon_list(&[c], 0).contains("HALF — 50% off · 3/10 used · no expiry · usable"));
/// ```
pub fn coupon_list(all: &[Coupon], now_ms: u64) -> String {
    if all.is_empty() {
        return "No coupons. <b>/admin coupon CODE 20%|5 [USES] [DAYS]</b> creates one.".into();
    }
    let mut rows: Vec<(&Coupon, Option<&str>)> = all.iter().map(|c| (c, c.refusal(now_ms))).collect();
    rows.sort_by(|a, b| (a.1.is_some(), &a.0.code).cmp(&(b.1.is_some(), &b.0.code)));
    let mut text = format!("<b>Coupons</b> ({})", all.len());
    for (c, refusal) in rows.iter().take(50) {
        let off = match &c.discount {
            Discount::Percent { percent } => format!("{percent}% off"),
            Discount::Fixed { amount } => {
                format!("{} USD off", units(amount.parse::<U256>().unwrap_or_default(), LEDGER_DECIMALS))
            }
        };
        let uses = match c.max_uses {
            Some(max) => format!("{}/{max} used", c.uses),
            None => format!("{} used", c.uses),
        };
        let expiry = match c.expires_ms {
            Some(at) => format!("expires {}", crate::core::reply::date(at)),
            None => "no expiry".into(),
        };
        text.push_str(&format!(
            "\n{} — {off} · {uses} · {expiry} · {}",
            escape_html(&c.code),
            refusal.unwrap_or("usable")
        ));
    }
    if rows.len() > 50 {
        text.push_str(&format!("\n… and {} more", rows.len() - 50));
    }
    text
}

/// `coupon CODE 20%|5 [USES] [DAYS]`: the answer, and whether a coupon was created.
async fn create_coupon(p: &Payments, words: &[&str]) -> anyhow::Result<(String, bool)> {
    let (Some(code), Some(value)) = (words.first().and_then(|c| coupons::key(c)), words.get(1)) else {
        return Ok((USAGE.into(), false));
    };
    let discount = match value.strip_suffix('%') {
        Some(pct) => match pct.parse::<u8>() {
            Ok(percent @ 1..=100) => Discount::Percent { percent },
            _ => return Ok(("A percent discount is 1% to 100%.".into(), false)),
        },
        None => match crate::core::ledger::money::parse_usd(value) {
            Ok(amount) => Discount::Fixed {
                amount: amount.to_string(),
            },
            Err(_) => return Ok((USAGE.into(), false)),
        },
    };
    let coupon = Coupon {
        code: code.clone(),
        discount,
        max_uses: words.get(2).and_then(|u| u.parse().ok()),
        expires_ms: words
            .get(3)
            .and_then(|d| d.parse::<u64>().ok())
            .map(|d| herald_schemas::now_ms() + d * 86_400_000),
        uses: 0,
        disabled: false,
        held_by: Vec::new(),
    };
    Ok(match coupons::create(&p.coupons, &coupon).await {
        Ok(()) => (format!("Coupon {code} created."), true),
        Err(e) => (escape_html(&format!("{e:#}")), false),
    })
}

/// Final deposits on chain (as the watcher saw them) against ledger credits.
async fn reconcile(p: &Payments) -> anyhow::Result<String> {
    // by id: a replayed deposit event is the same deposit
    let deposits: std::collections::BTreeMap<String, herald_schemas::Deposit> =
        final_deposits(p.ledger.context()).await?.into_iter().map(|(_, d)| (d.id(), d)).collect();
    let credited: HashSet<String> = ledger_entries(p.ledger.context())
        .await?
        .into_iter()
        .filter(|e| e.kind == LedgerKind::Credit)
        .filter_map(|e| e.reference.strip_prefix("deposit:").map(str::to_string))
        .collect();
    let on_chain: HashSet<String> = deposits.keys().cloned().collect();
    let uncredited: Vec<&herald_schemas::Deposit> = deposits.values().filter(|d| !credited.contains(&d.id())).collect();
    let unexplained = credited.difference(&on_chain).count();
    let mut text = format!(
        "<b>Reconciliation</b>\nfinal deposits on chain: {}\ncredited: {}\nnot credited: {} (below the minimum or an unknown token)\n\
         credits without a deposit: {unexplained}",
        on_chain.len(),
        on_chain.len() - uncredited.len(),
        uncredited.len()
    );
    for d in uncredited.iter().take(10) {
        text.push_str(&format!("\n• user {} tx <code>{}</code> value {}", d.user_id, d.tx_hash, d.value));
    }
    Ok(text)
}
