//! Stage: deposits (`herald.deposits.>`) -> the ledger and the user. A final deposit
//! is credited once (by `deposit:<tx hash>:<log index>`); every stage of a deposit is
//! announced to its user.
//!
//! The credit is the stage's apply step, not its commit, because the message shows the
//! balance it produces; the ledger's exactly-once reference makes a redelivered deposit
//! harmless (it reads the balance instead).

use std::collections::HashMap;

use alloy::primitives::{Address, U256};
use herald_schemas::{subjects, Deposit, DepositStage, OutboundMessage, Priority};

use crate::core::ledger::money::{to_ledger, units, LEDGER_DECIMALS};
use crate::core::ledger::{Applied, Ledger};
use herald_runtime::{Decision, Effect, MsgMeta, Output, Stage, StageError};

/// A token deposits are accepted in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DepositToken {
    pub symbol: String,
    /// The contract's `decimals()` (18 for BSC's USDT and BUSD).
    pub decimals: u8,
}

impl DepositToken {
    /// `token` as the only accepted token (tests and benchmarks).
    ///
    /// ```
    /// use herald_pipeline::products::payments::credit::DepositToken;
    /// let tokens = DepositToken::only(alloy::primitives::Address::ZERO, ("BUSD", 18));
    /// assert_eq!(tokens[&alloy::primitives::Address::ZERO].decimals, 18);
    /// ```
    pub fn only(token: Address, (symbol, decimals): (&str, u8)) -> HashMap<Address, DepositToken> {
        [(token, DepositToken { symbol: symbol.into(), decimals })].into()
    }
}

/// The credit stage.
pub struct CreditStage {
    pub ledger: Ledger,
    /// Accepted tokens by contract address.
    pub tokens: HashMap<Address, DepositToken>,
    /// Smaller final deposits are recorded (the DEPOSITS stream keeps them) and the user
    /// told, but not credited. Ledger units.
    pub min_deposit: U256,
}

impl CreditStage {
    fn message(d: &Deposit, text: String) -> Output {
        let key = subjects::kv_key(&format!("dep.{}.{}", d.stage.as_str(), d.id()).replace(':', "."));
        let msg = OutboundMessage::html(key.clone(), d.user_id, text, Priority::Reply, d.ts_ms);
        Output {
            subject: subjects::notify(d.user_id),
            msg_id: key,
            payload: herald_schemas::encode(&msg),
        }
    }
}

/// A final deposit to credit: the apply step's effect.
#[derive(Debug)]
pub struct Credit {
    deposit: Deposit,
    /// Ledger units.
    amount: U256,
    /// The amount as the user sent it (`12.5 BUSD`).
    shown: String,
}

impl Stage for CreditStage {
    const NAME: &'static str = "credit";
    type Input = Deposit;
    type Commit = ();
    type Effect = Credit;

    fn decode(&self, payload: &[u8]) -> Result<Deposit, String> {
        herald_schemas::decode(payload).map_err(|e| e.to_string())
    }

    async fn decide(&self, d: Deposit, _meta: &MsgMeta) -> Result<Decision<(), Credit>, StageError> {
        let token: Address = d.token.parse().map_err(|e| StageError::Permanent(format!("token address: {e}")))?;
        let Some(info) = self.tokens.get(&token) else {
            return Ok(Decision::Drop { reason: "unknown_token" });
        };
        let value: U256 = d.value.parse().map_err(|e| StageError::Permanent(format!("value: {e}")))?;
        let shown = format!("{} {}", units(value, info.decimals), info.symbol);
        let tx = &d.tx_hash;
        let text = match d.stage {
            DepositStage::Seen => format!("💰 Deposit of <b>{shown}</b> seen (tx <code>{tx}</code>); it is credited once final."),
            DepositStage::Orphaned => {
                format!("⚠️ The deposit of <b>{shown}</b> (tx <code>{tx}</code>) was dropped by a chain reorganisation: not credited.")
            }
            DepositStage::Final => {
                let amount =
                    to_ledger(value, info.decimals).ok_or_else(|| StageError::Permanent("amount does not convert exactly".into()))?;
                if amount >= self.min_deposit {
                    return Ok(Decision::Apply(Credit { deposit: d, amount, shown }));
                }
                metrics::counter!(super::metrics::DEPOSITS_BELOW_MINIMUM.name).increment(1);
                format!(
                    "The deposit of <b>{shown}</b> is below the minimum of {} USD: recorded, not credited. Contact support.",
                    units(self.min_deposit, LEDGER_DECIMALS)
                )
            }
        };
        Ok(Decision::Forward {
            outputs: vec![Self::message(&d, text)],
            commit: (),
        })
    }

    /// Credits the deposit under `deposit:<tx hash>:<log index>` (a redelivery finds
    /// the reference taken and reads the balance instead) and tells the user.
    async fn apply(&self, c: Credit, _meta: &MsgMeta) -> Result<herald_runtime::Applied<()>, StageError> {
        let d = &c.deposit;
        let reference = format!("deposit:{}", d.id());
        let note = format!("deposit {}", c.shown);
        let (balance, effect) = match self.ledger.credit(d.user_id, c.amount, &reference, &note).await? {
            Applied::Done(b) => (b, Effect::Made),
            Applied::AlreadyApplied | Applied::Insufficient(_) => (self.ledger.balance(d.user_id).await?.0, Effect::AlreadyMade),
        };
        let text = format!(
            "✅ <b>{}</b> credited. Balance: <b>{} USD</b>.",
            c.shown,
            units(balance, LEDGER_DECIMALS)
        );
        Ok(herald_runtime::Applied {
            decision: Decision::Forward {
                outputs: vec![Self::message(d, text)],
                commit: (),
            },
            effect,
        })
    }

    async fn commit(&self, _: ()) -> Result<(), StageError> {
        Ok(())
    }
}
