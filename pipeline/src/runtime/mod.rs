//! The shared stage runtime: durable pull consumers, bounded in-flight work, publish
//! with message ids, ack after downstream acks, retries with backoff, dead letters.

mod dead_letter;
mod runner;

pub use dead_letter::{dead_letter, DeadLetter};
pub use runner::{publish_all as runner_publish, run_stage, Decision, MsgMeta, Output, Stage, StageConfig, StageError};
