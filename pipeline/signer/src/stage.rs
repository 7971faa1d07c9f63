//! The signer's stage: `herald.withdrawals.approved.>` -> [`Signer::submit`] (its
//! apply step: the journal makes it idempotent) -> the outcome on
//! `herald.withdrawals.<stage>.<chain>`.

use std::sync::Arc;

use herald_runtime::{Applied, Decision, Effect, MsgMeta, Output, Stage, StageConfig, StageError};
use herald_schemas::{subjects, Withdrawal, WithdrawalOutcome, WithdrawalStage};

use crate::signer::Signer;

/// The stage around a [`Signer`].
pub struct Approved(pub Arc<Signer>);

/// The consumer: one withdrawal at a time (nonces are claimed in order), a minute's
/// `ack_wait` (a node slow to answer), five deliveries before the dead-letter subject.
pub fn consumer() -> StageConfig {
    StageConfig {
        max_in_flight: 1,
        ack_wait: std::time::Duration::from_secs(60),
        ..StageConfig::new(subjects::WITHDRAWALS_STREAM, "signer", vec!["herald.withdrawals.approved.>".into()])
    }
}

/// The outcome as an output, on `herald.withdrawals.<stage>.<chain>`.
pub fn output(o: &WithdrawalOutcome) -> Output {
    Output {
        subject: subjects::withdrawal_outcome(o.stage, &o.chain),
        msg_id: o.msg_id(),
        payload: herald_schemas::encode(o),
    }
}

impl Stage for Approved {
    const NAME: &'static str = "signer";
    type Input = Withdrawal;
    type Commit = ();
    type Effect = Withdrawal;

    fn decode(&self, payload: &[u8]) -> Result<Withdrawal, String> {
        herald_schemas::decode(payload).map_err(|e| e.to_string())
    }

    async fn decide(&self, w: Withdrawal, _meta: &MsgMeta) -> Result<Decision<(), Withdrawal>, StageError> {
        for (what, address) in [("token", &w.token), ("destination", &w.to)] {
            if address.parse::<alloy::primitives::Address>().is_err() {
                return Err(StageError::Permanent(format!(
                    "withdrawal {}: {what} {address:?} is not an address",
                    w.id
                )));
            }
        }
        if w.amount.parse::<alloy::primitives::U256>().map_or(true, |a| a.is_zero()) {
            return Err(StageError::Permanent(format!("withdrawal {}: amount {:?}", w.id, w.amount)));
        }
        Ok(Decision::Apply(w))
    }

    /// Journals, signs and broadcasts (or queues) the withdrawal.
    async fn apply(&self, w: Withdrawal, _meta: &MsgMeta) -> Result<Applied<()>, StageError> {
        let before = self.0.journal.load(&w.id).await?.map(|(e, _)| e.txs.len());
        let outcome = self.0.submit(w).await?;
        let effect = match (&outcome, before) {
            (Some(o), None | Some(0)) if o.stage == WithdrawalStage::Sent => Effect::Made,
            (Some(o), _) if o.stage == WithdrawalStage::Queued => Effect::NotMade,
            _ => Effect::AlreadyMade,
        };
        Ok(Applied {
            decision: Decision::Forward {
                outputs: outcome.iter().map(output).collect(),
                commit: (),
            },
            effect,
        })
    }

    async fn commit(&self, _: ()) -> Result<(), StageError> {
        Ok(())
    }
}
