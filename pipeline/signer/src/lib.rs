//! Herald's withdrawal signer: the only process that holds the hot wallet's private
//! key (the pipeline holds only the deposit xpub).
//!
//! It consumes approved withdrawals (`herald.withdrawals.approved.<chain>`, money
//! class), and for each: journals it ([`journal`], the `herald_signer` bucket), claims
//! a nonce, signs a BEP-20 `transfer` with alloy ([`chain`]), journals the signed
//! transaction, broadcasts it, and watches it to finality ([`signer`]), publishing each
//! step on `herald.withdrawals.<sent|final|failed|queued>.<chain>`.
//!
//! Exactly once, whatever crashes: a withdrawal's transaction is journaled before it
//! is broadcast, and after a restart the journaled bytes are broadcast again, never a
//! new signature under a new nonce. A stuck transaction is replaced under the same
//! nonce at a higher gas price, so at most one of them can be mined; one dropped by a
//! reorg is broadcast again. A hot wallet short of funds queues the withdrawal whole.
//!
//! ```no_run
//! # async fn demo(js: herald_runtime::Js, journal: herald_signer::journal::Journal) -> anyhow::Result<()> {
//! use herald_signer::{chain::Chain, key::HotKey, signer::{Policy, Signer}};
//! let key = HotKey::from_hex(&std::env::var("HERALD_SIGNER_KEY")?)?;
//! let chain = Chain::connect("http://127.0.0.1:8545", key.address()).await?;
//! let policy = Policy { confirmations: 15, stuck_after: std::time::Duration::from_secs(60), bump_percent: 20 };
//! let signer = Signer { chain, key, journal, policy };
//! for outcome in signer.watch_once().await? {
//!     println!("{} is {:?}", outcome.id, outcome.stage);
//! }
//! # Ok(()) }
//! ```

pub mod chain;
pub mod journal;
pub mod key;
pub mod metrics;
pub mod signer;
pub mod stage;
