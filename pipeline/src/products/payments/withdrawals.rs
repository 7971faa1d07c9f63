//! Stage: the signer's outcomes (`herald.withdrawals.<sent|final|failed|queued>.<chain>`)
//! -> the ledger and the people concerned. A final withdrawal settles its hold; a
//! failed one releases it (the user is refunded); each step is told to the user, and a
//! queued one to the admins (the hot wallet needs funds).
//!
//! Settling and releasing are the stage's apply step: the ledger closes a hold once,
//! by whichever comes first, so a redelivered outcome changes nothing twice.

use herald_runtime::{Applied, Decision, Effect, MsgMeta, Output, Stage, StageError};
use herald_schemas::{escape_html, Content, WithdrawalOutcome, WithdrawalStage};

use crate::core::ledger::money::{units, LEDGER_DECIMALS};
use crate::core::ledger::{Closed, Ledger};
use crate::core::reply::{notice, output};

/// The stage.
pub struct WithdrawalOutcomes {
    pub ledger: Ledger,
    /// Told when a withdrawal waits for the hot wallet's funds.
    pub admins: Vec<i64>,
}

/// A message about withdrawal `o` to `chat`, once per outcome and chat.
fn tell(o: &WithdrawalOutcome, chat: i64, text: String) -> Output {
    let key = herald_schemas::subjects::kv_key(&format!("wd.{}.{}.{chat}", o.stage.as_str(), o.id).replace(':', "."));
    output(&notice(key, chat, Content::text(text)))
}

fn tx(o: &WithdrawalOutcome) -> String {
    // a hash is hex from the signer; escaped all the same
    escape_html(o.tx_hash.as_deref().unwrap_or("?"))
}

impl Stage for WithdrawalOutcomes {
    const NAME: &'static str = "withdrawal_outcomes";
    type Input = WithdrawalOutcome;
    type Commit = ();
    /// A final (`true`: settle) or failed (`false`: release) withdrawal.
    type Effect = (WithdrawalOutcome, bool);

    fn decode(&self, payload: &[u8]) -> Result<WithdrawalOutcome, String> {
        herald_schemas::decode(payload).map_err(|e| e.to_string())
    }

    async fn decide(&self, o: WithdrawalOutcome, _meta: &MsgMeta) -> Result<Decision<(), Self::Effect>, StageError> {
        let outputs = match o.stage {
            WithdrawalStage::Final => return Ok(Decision::Apply((o, true))),
            WithdrawalStage::Failed => return Ok(Decision::Apply((o, false))),
            WithdrawalStage::Sent => vec![tell(
                &o,
                o.user_id,
                format!("📤 Withdrawal {} sent: transaction <code>{}</code>. It is final after the chain's confirmations.", escape_html(&o.id), tx(&o)),
            )],
            WithdrawalStage::Queued => {
                let why = escape_html(o.reason.as_deref().unwrap_or("no reason given"));
                let mut out: Vec<Output> = self
                    .admins
                    .iter()
                    .map(|a| tell(&o, *a, format!("⚠️ Withdrawal {} is queued: {why}. Fund the hot wallet; it goes out whole once funded.", escape_html(&o.id))))
                    .collect();
                out.push(tell(&o, o.user_id, format!("⏳ Withdrawal {} is queued and will be sent shortly.", escape_html(&o.id))));
                out
            }
        };
        Ok(Decision::Forward { outputs, commit: () })
    }

    /// Settles (final) or releases (failed) the withdrawal's hold, once, and tells the
    /// user.
    async fn apply(&self, (o, settle): Self::Effect, _meta: &MsgMeta) -> Result<Applied<()>, StageError> {
        let closed = match settle {
            true => self.ledger.settle(o.user_id, &o.hold, &format!("withdrawal {}", o.id)).await?,
            false => self.ledger.release(o.user_id, &o.hold, &format!("withdrawal {} refunded", o.id)).await?,
        };
        let effect = match &closed {
            Closed::Done(_) => Effect::Made,
            Closed::Already(kind) if (*kind == herald_schemas::LedgerKind::Settle) == settle => Effect::AlreadyMade,
            Closed::Already(kind) => {
                // the chain said one thing and the ledger closed it the other way: a human looks
                tracing::error!(withdrawal = %o.id, closed_by = kind.as_str(), "withdrawal outcome contradicts its closed hold");
                Effect::NotMade
            }
            Closed::NoSuchHold => {
                tracing::error!(withdrawal = %o.id, hold = %o.hold, "withdrawal outcome for a hold the ledger does not have");
                Effect::NotMade
            }
        };
        let text = match (settle, effect) {
            (true, Effect::Made | Effect::AlreadyMade) => format!("✅ Withdrawal {} is final: transaction <code>{}</code>.", escape_html(&o.id), tx(&o)),
            (false, Effect::Made | Effect::AlreadyMade) => {
                let balance = self.ledger.balance(o.user_id).await?.0;
                format!(
                    "↩️ Withdrawal {} failed ({}); the amount is back in your balance: {} USD.",
                    escape_html(&o.id),
                    escape_html(o.reason.as_deref().unwrap_or("refused")),
                    units(balance, LEDGER_DECIMALS)
                )
            }
            _ => format!("Withdrawal {} needs a look from support; nothing was lost.", escape_html(&o.id)),
        };
        Ok(Applied {
            decision: Decision::Forward {
                outputs: vec![tell(&o, o.user_id, text)],
                commit: (),
            },
            effect,
        })
    }

    async fn commit(&self, _: ()) -> Result<(), StageError> {
        Ok(())
    }
}
