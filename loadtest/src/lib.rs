//! Herald's load-test harness.
//!
//! - [`emulator`]: a Telegram Bot API emulator (getMe, getUpdates, sendMessage,
//!   editMessageText, answerCallbackQuery, webhooks) enforcing Telegram's limits with
//!   real-looking 429s, recording every delivery, with a control API for tests
//! - [`feed`]: a websocket token-feed server replaying recorded frames or generating calls
//! - [`run`]: drives a rate for a duration with N users and reports throughput and
//!   latency percentiles (HDR histogram), beside the raw JetStream ceiling
//! - [`chat_bench`]: the random chat under load (pairing, relay latency, memory)
//! - [`ai`]: an OpenAI-compatible chat-completions stand-in (errors, 429s, slowness)
//! - [`drand`]: a drand HTTP relay stand-in: recorded real beacons, and a test chain it signs
//! - [`trivia_bench`]: trivia's answers at once and leaderboard reads
//! - [`demo`]: the README's main job on recorded real inputs, and the random chat's

pub mod ai;
pub mod bench;
pub mod chart;
pub mod chat_bench;
pub mod demo;
pub mod drand;
pub mod durability_bench;
pub mod emulator;
pub mod feed;
pub mod lottery_bench;
pub mod nowpayments;
pub mod null_pipeline;
pub mod report;
pub mod run;
pub mod stack;
pub mod trivia_bench;
pub mod withdrawals_bench;
