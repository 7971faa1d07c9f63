//! Sources: the outside world in, canonical [`herald_schemas::CallEvent`]s out.
//!
//! - [`websocket`]: a reconnecting websocket client for Herald's JSON feed and for Solana
//!   `transactionSubscribe` (publishes with `Nats-Msg-Id`, dead-letters bad frames)
//! - [`channel_post`]: Telegram call-channel posts parsed into calls
//! - [`raw_text`]: text frames read as bytes, so a frame that is not UTF-8 is
//!   dead-lettered and the connection kept
//! - [`raydium`]: Raydium AMM v4 pool creations recognised in Solana transactions

pub mod channel_post;
pub mod dexscreener;
pub mod raw_text;
pub mod raydium;
pub mod websocket;
