//! Stage `gateway_payments`: NOWPayments' verified statuses
//! (`herald.gateway.nowpayments.<user>`) -> the ledger and the user.
//!
//! The policy (docs/payments.md, "NOWPayments"):
//!
//! | status | ledger | told |
//! |---|---|---|
//! | `waiting`, `confirming`, `confirmed`, `sending` | nothing | the user, once: payment seen |
//! | `finished` | the invoice's price credited once, under `nowpayments:<payment id>` | the user, with the balance |
//! | `partially_paid` | nothing (an invoice is paid whole or not at all) | the user (what arrived) and the admins |
//! | `failed`, `expired` | nothing | the user |
//! | `refunded` | a credit made is taken back once (`nowpayments:<id>:refund`), if the balance still holds it | the user; the admins if it was spent |
//!
//! Statuses out of order or replayed: each payment's furthest status handled is kept
//! (`pay.nowpayments.<id>` in `herald_gateway`); a status at or below it tells nobody
//! (dropped as `stale_status`). The ledger's steps are the apply step and idempotent by
//! reference, so a late `finished` after a `failed` still credits, once; a `finished`
//! that arrives after its payment's `refunded` credits nothing.

use async_nats::jetstream::kv;
use herald_runtime::{Applied, Decision, Effect, MsgMeta, Output, Stage, StageError};
use herald_schemas::{escape_html, Content, GatewayPayment};

use crate::core::kv_json;
use crate::core::ledger::money::{units, LEDGER_DECIMALS};
use crate::core::ledger::{self, Ledger};
use crate::core::reply::{notice, output};

/// The stage.
pub struct GatewayPayments {
    pub ledger: Ledger,
    /// `herald_gateway`: each payment's furthest status.
    pub store: kv::Store,
    pub admins: Vec<i64>,
}

/// How far a status is along: later ones only are told.
pub fn rank(status: &str) -> u8 {
    match status {
        "waiting" => 1,
        "confirming" => 2,
        "confirmed" => 3,
        "sending" => 4,
        "partially_paid" => 5,
        "finished" | "failed" | "expired" => 6,
        "refunded" => 7,
        _ => 0,
    }
}

fn key(p: &GatewayPayment) -> String {
    herald_schemas::subjects::kv_key(&format!("pay.{}.{}", p.gateway, p.payment_id))
}

fn reference(p: &GatewayPayment) -> String {
    format!("{}:{}", p.gateway, p.payment_id)
}

fn tell(p: &GatewayPayment, chat: i64, what: &str, text: String) -> Output {
    let key = herald_schemas::subjects::kv_key(&format!("np.{}.{what}.{chat}", p.payment_id));
    output(&notice(key, chat, Content::text(text)))
}

fn usd(p: &GatewayPayment) -> String {
    format!("{} USD", units(p.price_usd.parse().unwrap_or_default(), LEDGER_DECIMALS))
}

fn paid(p: &GatewayPayment) -> String {
    match (&p.actually_paid, &p.pay_currency) {
        (Some(a), Some(c)) => format!("{} {}", escape_html(a), escape_html(&c.to_uppercase())),
        _ => "part".into(),
    }
}

impl Stage for GatewayPayments {
    const NAME: &'static str = "gateway_payments";
    type Input = GatewayPayment;
    /// The status to remember as the payment's furthest.
    type Commit = Option<(String, u8)>;
    /// A `finished` (credit) or `refunded` (take back) payment.
    type Effect = GatewayPayment;

    fn decode(&self, payload: &[u8]) -> Result<GatewayPayment, String> {
        herald_schemas::decode(payload).map_err(|e| e.to_string())
    }

    async fn decide(&self, p: GatewayPayment, _meta: &MsgMeta) -> Result<Decision<Self::Commit, GatewayPayment>, StageError> {
        let furthest = kv_json::get::<u8>(&self.store, &key(&p)).await?.unwrap_or(0);
        if p.status == "finished" && furthest == rank("refunded") {
            // the refund came first (out of order): the money went back, credit nothing
            return Ok(Decision::Drop { reason: "refunded_before" });
        }
        if matches!(p.status.as_str(), "finished" | "refunded") {
            return Ok(Decision::Apply(p));
        }
        let rank = rank(&p.status);
        if rank == 0 || rank <= furthest {
            return Ok(Decision::Drop { reason: "stale_status" });
        }
        let id = escape_html(&p.payment_id);
        let outputs = match p.status.as_str() {
            "partially_paid" => {
                let mut out: Vec<Output> = self
                    .admins
                    .iter()
                    .map(|a| {
                        let text = format!("⚠️ NOWPayments payment {id} of user {} is partly paid: {} for {}.", p.user_id, paid(&p), usd(&p));
                        tell(&p, *a, "partial", text)
                    })
                    .collect();
                let text = format!("Your payment {id} arrived in part ({}) for {}; nothing is credited until it is paid in full. Pay the rest on the invoice's page, or ask support.", paid(&p), usd(&p));
                out.push(tell(&p, p.user_id, "partial", text));
                out
            }
            "failed" | "expired" => {
                let text = format!("Your NOWPayments payment {id} of {} {}; nothing was charged to your balance.", usd(&p), escape_html(&p.status));
                vec![tell(&p, p.user_id, "ended", text)]
            }
            // waiting .. sending: once, at the first
            _ => vec![tell(&p, p.user_id, "seen", format!("⏳ Payment {id} of {} seen; it is credited once NOWPayments confirms it.", usd(&p)))],
        };
        Ok(Decision::Forward {
            outputs,
            commit: Some((key(&p), rank)),
        })
    }

    /// Credits a finished payment once, or takes a refunded one back once.
    async fn apply(&self, p: GatewayPayment, _meta: &MsgMeta) -> Result<Applied<Self::Commit>, StageError> {
        let amount = p.price_usd.parse().map_err(|_| StageError::Permanent(format!("price_usd {:?}", p.price_usd)))?;
        let id = escape_html(&p.payment_id);
        let (effect, outputs) = if p.status == "finished" {
            let applied = self.ledger.credit(p.user_id, amount, &reference(&p), &format!("NOWPayments payment {}", p.payment_id)).await?;
            let effect = match applied {
                ledger::Applied::Done(_) => Effect::Made,
                _ => Effect::AlreadyMade,
            };
            let balance = self.ledger.balance(p.user_id).await?.0;
            let text = format!("✅ Payment {id} received: {} credited. Balance: {} USD.", usd(&p), units(balance, LEDGER_DECIMALS));
            (effect, vec![tell(&p, p.user_id, "finished", text)])
        } else {
            let credited = self.ledger.applied(p.user_id, &reference(&p)).await?;
            let refund = format!("{}:refund", reference(&p));
            match credited {
                false => (Effect::NotMade, vec![tell(&p, p.user_id, "refunded", format!("Payment {id} was refunded by NOWPayments."))]),
                true => match self.ledger.debit(p.user_id, amount, &refund, &format!("NOWPayments payment {} refunded", p.payment_id)).await? {
                    ledger::Applied::Insufficient(balance) => {
                        let text = format!(
                            "⚠️ NOWPayments refunded payment {id} ({}) of user {}, whose balance is {} USD: take it back by hand.",
                            usd(&p),
                            p.user_id,
                            units(balance, LEDGER_DECIMALS)
                        );
                        let mut out: Vec<Output> = self.admins.iter().map(|a| tell(&p, *a, "refund-short", text.clone())).collect();
                        out.push(tell(&p, p.user_id, "refunded", format!("Payment {id} was refunded by NOWPayments.")));
                        (Effect::NotMade, out)
                    }
                    applied => {
                        let effect = if matches!(applied, ledger::Applied::Done(_)) { Effect::Made } else { Effect::AlreadyMade };
                        let text = format!("Payment {id} was refunded by NOWPayments: {} taken back from your balance.", usd(&p));
                        (effect, vec![tell(&p, p.user_id, "refunded", text)])
                    }
                },
            }
        };
        Ok(Applied {
            decision: Decision::Forward {
                outputs,
                commit: Some((key(&p), rank(&p.status))),
            },
            effect,
        })
    }

    /// Remembers the payment's furthest status (never lowers it).
    async fn commit(&self, furthest: Self::Commit) -> Result<(), StageError> {
        if let Some((key, rank)) = furthest {
            kv_json::update(&self.store, &key, |current: Option<u8>| (current.unwrap_or(0) < rank).then_some(rank)).await?;
        }
        Ok(())
    }
}
