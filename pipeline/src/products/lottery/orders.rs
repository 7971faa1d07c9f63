//! Tickets straight from a deposit (seed 000: "users purchase tickets via cryptocurrency
//! deposits"): a `/buy N` the balance cannot pay is kept as a standing order, and the
//! next deposit credited to that user completes it while its round is still open.
//!
//! ```text
//! /buy N, balance short -> order.<user> in herald_lottery (one per user, the latest)
//!   + the reply: the amount missing; + /deposit asked of payments on the user's behalf
//!     (herald.cmd.payments.<user>), whose answer is the address and its QR code
//! herald.ledger.<user> [LEDGER]: a credit from a deposit (deposit:…, nowpayments:…)
//!   -> lottery_orders: round still open and not expired -> the purchase, as /buy N
//!      under the original update id (debited once, journaled once, one receipt)
//!   -> else the order lapses; the money stays in the balance; the user is told
//! ```
//!
//! The order is bought with the `/buy`'s own update id, so the purchase's references
//! (`lottery:buy:<update id>`, `buy.<update id>`) make it happen at most once, whichever
//! deposit, redelivery or retry comes first.

use async_nats::jetstream::kv;
use herald_runtime::{Applied, Decision, Effect, MsgMeta, Output, Stage, StageError};
use herald_schemas::{subjects, Content, LedgerEntry, LedgerKind, RoutedUpdate};
use serde::{Deserialize, Serialize};

use super::purchase::{self, Bought};
use super::service::Lottery;
use super::texts::usd;
use super::views;
use crate::core::reply::{notice, output};

/// How long a standing order waits for a deposit: an hour (a BEP-20 deposit is final in
/// seconds; an hour covers a user fetching funds), and never past its round.
pub const ORDER_TTL_MS: u64 = 3_600_000;

/// A standing order (`order.<user>`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    pub user_id: i64,
    pub chat_id: i64,
    /// The `/buy` that made it: the purchase's reference when it completes.
    pub update_id: i64,
    pub count: u64,
    /// The round on sale when it was made: it completes only in that round.
    pub round: u64,
    pub expires_ms: u64,
}

fn key(user_id: i64) -> String {
    format!("order.{user_id}")
}

/// Keeps `order` as the user's standing order (replacing an older one).
///
/// Errors: NATS failed.
pub async fn place(l: &Lottery, order: &Order) -> anyhow::Result<()> {
    l.kv.put(key(order.user_id), serde_json::to_vec(order)?.into()).await?;
    Ok(())
}

/// The user's standing order, if any.
///
/// Errors: NATS failed or it does not decode.
pub async fn find(kv: &kv::Store, user_id: i64) -> anyhow::Result<Option<Order>> {
    Ok(match kv.get(key(user_id)).await? {
        Some(v) => Some(serde_json::from_slice(&v)?),
        None => None,
    })
}

/// Ends the user's standing order if it is still `update_id`'s (a newer one stays).
async fn clear(kv: &kv::Store, user_id: i64, update_id: i64) -> anyhow::Result<()> {
    if let Some(e) = kv.entry(key(user_id)).await? {
        let same = serde_json::from_slice::<Order>(&e.value).is_ok_and(|o| o.update_id == update_id);
        if same && e.operation == kv::Operation::Put {
            // a concurrent replacement wins: its revision differs and this delete fails
            let _ = kv.delete_expect_revision(key(user_id), Some(e.revision)).await;
        }
    }
    Ok(())
}

/// `/deposit` asked of payments for the user (payments answers with the address and
/// its QR code). Its update id is the `/buy`'s with bit 40 set: Telegram's are below
/// 2^31, so it never meets a real update's reply id.
pub fn ask_for_address(order: &Order) -> Output {
    let update_id = order.update_id | (1 << 40);
    let routed = RoutedUpdate {
        v: 1,
        update_id,
        kind: "message".into(),
        user_id: Some(order.user_id),
        chat_id: Some(order.chat_id),
        command: Some("/deposit".into()),
        callback_data: None,
        message_id: None,
        admin: false,
        update: serde_json::Value::Null,
        received_ms: herald_schemas::now_ms(),
    };
    Output {
        subject: subjects::routed("payments", order.user_id),
        msg_id: format!("route:{update_id}"),
        payload: herald_schemas::encode(&routed),
    }
}

/// Whether `round`'s sale is open now (its journal's tip is still selling, before its
/// close time), as the purchase itself checks.
///
/// Errors: NATS failed.
pub async fn on_sale(l: &Lottery, round: u64) -> anyhow::Result<bool> {
    let (Some(tip), Some(opened)) = (l.journal.tip(round).await?, l.journal.opened(round).await?) else {
        return Ok(false);
    };
    let herald_schemas::LotteryStep::Opened { t_close, .. } = &opened.step else {
        return Ok(false);
    };
    Ok(super::journal::phase(&tip.entry.step) == super::journal::Phase::Selling && herald_schemas::now_ms() < t_close * 1000)
}

/// The stage: deposits credited -> standing orders completed or lapsed.
pub struct LotteryOrders {
    pub lottery: std::sync::Arc<Lottery>,
}

/// What to do with a standing order.
#[derive(Debug)]
pub enum Step {
    /// Buy it now (its round is on sale); the credit that came (its reference).
    Fill(Order, String),
    /// Its round closed, sales are paused, or its hour passed: drop it, tell the user
    /// why.
    Lapse(Order, &'static str),
}

/// Whether a ledger entry is money coming in from outside (a deposit or a gateway
/// payment), which is what standing orders wait for.
pub fn is_deposit(e: &LedgerEntry) -> bool {
    e.kind == LedgerKind::Credit && (e.reference.starts_with("deposit:") || e.reference.starts_with("nowpayments:"))
}

impl Stage for LotteryOrders {
    const NAME: &'static str = "lottery_orders";
    type Input = LedgerEntry;
    type Commit = ();
    type Effect = Step;

    fn decode(&self, payload: &[u8]) -> Result<LedgerEntry, String> {
        herald_schemas::decode(payload).map_err(|e| e.to_string())
    }

    async fn decide(&self, e: LedgerEntry, _meta: &MsgMeta) -> Result<Decision<(), Step>, StageError> {
        if !is_deposit(&e) {
            return Ok(Decision::Drop { reason: "not_a_deposit" });
        }
        let l = &self.lottery;
        let Some(order) = find(&l.kv, e.user_id).await? else {
            return Ok(Decision::Drop { reason: "no_standing_order" });
        };
        let why = if l.paused().await? {
            "ticket sales are paused"
        } else if !on_sale(l, order.round).await? {
            "its round's sale closed before the deposit arrived"
        } else if herald_schemas::now_ms() >= order.expires_ms {
            "it waited an hour, as long as an order stands"
        } else {
            return Ok(Decision::Apply(Step::Fill(order, e.reference)));
        };
        Ok(Decision::Apply(Step::Lapse(order, why)))
    }

    /// Buys the order (once: the `/buy`'s own references), or lets it lapse.
    async fn apply(&self, step: Step, _meta: &MsgMeta) -> Result<Applied<()>, StageError> {
        let l = &self.lottery;
        let (order, text, effect, what) = match step {
            Step::Fill(order, credit) => {
                let (bought, effect) = purchase::buy(l, order.user_id, order.chat_id, order.update_id, order.count).await?;
                let text = match &bought {
                    Bought::Insufficient { balance, cost } => format!(
                        "Your deposit arrived, but your standing order of {} tickets still needs {} USD more (it costs {} USD).",
                        order.count,
                        usd(cost.saturating_sub(u128::try_from(*balance).unwrap_or(u128::MAX))),
                        usd(*cost)
                    ),
                    other => format!("Your deposit arrived: your standing order is bought.\n{}", views::bought(other, l)),
                };
                let what = match bought {
                    Bought::Insufficient { .. } => format!("short.{credit}"),
                    _ => "filled".into(),
                };
                (order, text, effect, what)
            }
            Step::Lapse(order, why) => {
                let text = format!(
                    "Your deposit is in your balance. Your standing order of {} tickets in round {} lapsed ({why}): /buy {} to enter the current round.",
                    order.count, order.round, order.count
                );
                (order, text, Effect::NotMade, "lapsed".to_string())
            }
        };
        if !what.starts_with("short.") {
            clear(&l.kv, order.user_id, order.update_id).await?;
        }
        // one message per order and outcome (per credit while still short)
        let key = subjects::kv_key(&format!("order.{}.{what}", order.update_id).replace(':', "."));
        Ok(Applied {
            decision: Decision::Forward {
                outputs: vec![output(&notice(key, order.chat_id, Content::text(text)))],
                commit: (),
            },
            effect,
        })
    }

    async fn commit(&self, _: ()) -> Result<(), StageError> {
        Ok(())
    }
}
