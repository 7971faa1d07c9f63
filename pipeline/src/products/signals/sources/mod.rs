//! Sources: the outside world in, canonical [`herald_schemas::CallEvent`]s out.
//!
//! - [`websocket`]: a reconnecting websocket client for Herald's JSON feed and for Solana
//!   `transactionSubscribe` (publishes with `Nats-Msg-Id`, dead-letters bad frames)
//! - [`channel_post`]: Telegram call-channel posts parsed into calls
//! - [`raydium`]: Raydium AMM v4 pool creations recognised in Solana transactions

pub mod channel_post;
pub mod dexscreener;
pub mod raydium;
pub mod websocket;
