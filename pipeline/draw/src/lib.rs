//! The lottery's fairness contract as code, shared by the lottery (which draws with it)
//! and `herald-verify` (which anyone can run on a published bundle, with no NATS and no
//! Herald service):
//!
//! - [`merkle`]: the RFC 6962 Merkle Tree Hash of the tickets, and inclusion proofs;
//! - [`beacon`]: drand chain info, round arithmetic, BLS verification of a beacon;
//! - [`draw`]: ticket leaves, the commitment, the seed, the winners;
//! - [`money`]: pot, fee, prizes, rollover and referral rewards, with the invariant;
//! - [`bundle`]: the published draw bundle and its full verification;
//! - [`proof`]: one ticket's inclusion proof against the root published at the close;
//! - [`testchain`]: a chain Herald signs itself, for tests and the relay stand-in.
//!
//! The rules are specified word for word in `docs/lottery.md`.

pub mod beacon;
pub mod bundle;
pub mod draw;
pub mod merkle;
pub mod money;
pub mod proof;
pub mod testchain;
