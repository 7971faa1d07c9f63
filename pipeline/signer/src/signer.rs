//! The signer's steps, for one withdrawal at a time: [`Signer::submit`] (an approved
//! withdrawal in) and [`Signer::watch_once`] (every open one, periodically). Both move a
//! journal entry along Queued -> Sent -> Final | Failed and return the outcomes to
//! publish; each outcome's message id makes a repeat harmless.
//!
//! The order that makes a crash safe: the entry exists before anything is signed; the
//! nonce is claimed in the journal; the signed transaction is journaled before it is
//! broadcast. After a crash, an entry with a transaction is broadcast again as it is.

use std::time::Duration;

use alloy::primitives::{Address, U256};
use herald_schemas::{Withdrawal, WithdrawalOutcome, WithdrawalStage};

use crate::chain::{sign, Chain, SignedTx, Transfer};
use crate::journal::{Entry, Journal, State};
use crate::key::HotKey;

/// How the signer watches and replaces.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Blocks on top of a transaction's (itself included) before it is final.
    pub confirmations: u64,
    /// A transaction not mined after this long is replaced.
    pub stuck_after: Duration,
    /// A replacement's gas price over the last one's, percent (nodes want at least 10).
    pub bump_percent: u128,
}

/// Set once the process is paused at a test's point: the watcher stops too, so the
/// process does nothing more before its kill -9.
static PAUSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// A point at which a test can stop the process for a kill -9
/// (`HERALD_SIGNER_PAUSE_AT=after_journal|after_broadcast`): it logs and waits forever.
async fn pause_at(point: &str) {
    if std::env::var("HERALD_SIGNER_PAUSE_AT").is_ok_and(|p| p == point) {
        PAUSED.store(true, std::sync::atomic::Ordering::SeqCst);
        tracing::warn!(point, "paused for a test (HERALD_SIGNER_PAUSE_AT)");
        std::future::pending::<()>().await;
    }
}

/// The signer.
pub struct Signer {
    pub chain: Chain,
    pub key: HotKey,
    pub journal: Journal,
    pub policy: Policy,
}

fn outcome(e: &Entry, stage: WithdrawalStage, tx_hash: Option<String>, reason: Option<String>) -> WithdrawalOutcome {
    WithdrawalOutcome {
        v: 1,
        id: e.withdrawal.id.clone(),
        user_id: e.withdrawal.user_id,
        chain: e.withdrawal.chain.clone(),
        hold: e.withdrawal.hold.clone(),
        stage,
        tx_hash,
        nonce: e.nonce,
        reason,
        ts_ms: herald_schemas::now_ms(),
    }
}

fn transfer_of(w: &Withdrawal, nonce: u64) -> anyhow::Result<Transfer> {
    Ok(Transfer {
        token: w.token.parse::<Address>().map_err(|e| anyhow::anyhow!("token {}: {e}", w.token))?,
        to: w.to.parse::<Address>().map_err(|e| anyhow::anyhow!("destination {}: {e}", w.to))?,
        amount: w.amount.parse::<U256>().map_err(|e| anyhow::anyhow!("amount {}: {e}", w.amount))?,
        nonce,
    })
}

impl Signer {
    /// Takes an approved withdrawal: journals it, then sends it (or queues it).
    ///
    /// Errors: the node or the journal failed (retrying is safe: the journal decides).
    pub async fn submit(&self, w: Withdrawal) -> anyhow::Result<Option<WithdrawalOutcome>> {
        let (entry, revision) = self.journal.create(Entry::new(w)).await?;
        self.send(entry, revision).await
    }

    /// Sends a journaled withdrawal: its journaled transaction again, if it has one;
    /// else, funds permitting, a new one under a claimed nonce, journaled before the
    /// broadcast. Short of funds: queued whole, nothing signed.
    async fn send(&self, mut entry: Entry, revision: u64) -> anyhow::Result<Option<WithdrawalOutcome>> {
        match entry.state {
            State::Final | State::Failed => return Ok(None),
            State::Sent => {
                let last = entry
                    .txs
                    .last()
                    .cloned()
                    .ok_or_else(|| anyhow::anyhow!("a sent entry without a transaction"))?;
                self.chain.broadcast(&last).await?;
                return Ok(Some(outcome(&entry, WithdrawalStage::Sent, Some(last.hash), None)));
            }
            State::Queued => {}
        }
        let probe = transfer_of(&entry.withdrawal, 0)?;
        let (tokens, native) = self.chain.funds(probe.token).await?;
        crate::metrics::record_funds(probe.token, tokens, native);
        if tokens < probe.amount {
            let reason = format!("the hot wallet holds {tokens} of the {} base units", probe.amount);
            metrics::counter!(crate::metrics::QUEUED.name).increment(1);
            return Ok(Some(outcome(&entry, WithdrawalStage::Queued, None, Some(reason))));
        }
        // the estimate does not depend on the nonce: made once, for the check and the signature
        let (gas_price, gas_limit) = (self.chain.gas_price().await?, self.chain.gas_for(probe).await?);
        let fee = U256::from(gas_price) * U256::from(gas_limit);
        if native < fee {
            let reason = format!("the hot wallet holds {native} wei of the {fee} its gas costs");
            metrics::counter!(crate::metrics::QUEUED.name).increment(1);
            return Ok(Some(outcome(&entry, WithdrawalStage::Queued, None, Some(reason))));
        }
        let wallet = (self.chain.chain_id, self.chain.hot);
        let nonce = self
            .journal
            .claim_nonce(&entry.withdrawal.id, wallet, self.chain.mined_nonce().await?)
            .await?;
        let t = transfer_of(&entry.withdrawal, nonce)?;
        let tx = sign(&self.key, self.chain.chain_id, t, gas_price, gas_limit)?;
        metrics::counter!(crate::metrics::SIGNED.name).increment(1);
        entry.nonce = Some(nonce);
        entry.txs.push(tx.clone());
        entry.state = State::Sent;
        self.journal.save(&entry, revision).await?;
        pause_at("after_journal").await;
        self.chain.broadcast(&tx).await?;
        pause_at("after_broadcast").await;
        Ok(Some(outcome(&entry, WithdrawalStage::Sent, Some(tx.hash), None)))
    }

    /// One pass over the open withdrawals: queued ones are tried again; a sent one is
    /// final once a transaction of it has enough confirmations (or failed if that one
    /// reverted), is broadcast again while none is mined (a reorg may have dropped it),
    /// and is replaced at a higher gas price once it has waited `stuck_after`.
    ///
    /// Errors: the journal could not be read (a withdrawal's own failure is logged and
    /// left for the next pass).
    pub async fn watch_once(&self) -> anyhow::Result<Vec<WithdrawalOutcome>> {
        let mut outcomes = Vec::new();
        if PAUSED.load(std::sync::atomic::Ordering::SeqCst) {
            return Ok(outcomes);
        }
        for (entry, revision) in self.journal.open().await? {
            let id = entry.withdrawal.id.clone();
            let step = match entry.state {
                State::Queued => self.send(entry, revision).await,
                _ => self.follow(entry, revision).await,
            };
            match step {
                Ok(Some(o)) => outcomes.push(o),
                Ok(None) => {}
                Err(e) => tracing::warn!(withdrawal = %id, error = %format!("{e:#}"), "withdrawal step failed; next pass retries"),
            }
        }
        Ok(outcomes)
    }

    async fn follow(&self, mut entry: Entry, revision: u64) -> anyhow::Result<Option<WithdrawalOutcome>> {
        let head = self.chain.head().await?;
        for tx in &entry.txs {
            let Some(mined) = self.chain.mined(&tx.hash).await? else { continue };
            if head + 1 < mined.block + self.policy.confirmations {
                return Ok(None); // mined, not final yet
            }
            let (state, stage, reason, label) = match mined.success {
                true => (State::Final, WithdrawalStage::Final, None, "final"),
                false => (
                    State::Failed,
                    WithdrawalStage::Failed,
                    Some("the transfer reverted".to_string()),
                    "failed",
                ),
            };
            entry.state = state;
            entry.mined = Some(tx.hash.clone());
            entry.reason = reason.clone();
            self.journal.save(&entry, revision).await?;
            metrics::counter!(crate::metrics::ENDED.name, "outcome" => label).increment(1);
            return Ok(Some(outcome(&entry, stage, Some(tx.hash.clone()), reason)));
        }
        let last = entry
            .txs
            .last()
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("a sent entry without a transaction"))?;
        let waited = herald_schemas::now_ms().saturating_sub(last.signed_ms);
        if waited < self.policy.stuck_after.as_millis() as u64 {
            // not mined: perhaps dropped (a reorg, a node restart); the same bytes again
            self.chain.broadcast(&last).await?;
            return Ok(None);
        }
        let replacement = self.replacement(&entry, &last).await?;
        entry.txs.push(replacement.clone());
        self.journal.save(&entry, revision).await?;
        metrics::counter!(crate::metrics::REPLACED.name).increment(1);
        self.chain.broadcast(&replacement).await?;
        Ok(Some(outcome(&entry, WithdrawalStage::Sent, Some(replacement.hash), None)))
    }

    /// The same transfer under the same nonce at `bump_percent` over the last gas price
    /// (or the node's, if higher).
    async fn replacement(&self, entry: &Entry, last: &SignedTx) -> anyhow::Result<SignedTx> {
        let nonce = entry.nonce.ok_or_else(|| anyhow::anyhow!("a sent entry without a nonce"))?;
        let bumped = last.gas_price * (100 + self.policy.bump_percent) / 100 + 1;
        let gas_price = bumped.max(self.chain.gas_price().await?);
        let tx = sign(
            &self.key,
            self.chain.chain_id,
            transfer_of(&entry.withdrawal, nonce)?,
            gas_price,
            last.gas_limit,
        )?;
        metrics::counter!(crate::metrics::SIGNED.name).increment(1);
        Ok(tx)
    }
}
