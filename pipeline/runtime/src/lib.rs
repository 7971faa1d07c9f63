//! Herald's shared runtime, used by the pipeline and the bot alike.
//!
//! A Herald stage reads: consume subject -> decide -> (apply) -> publish subject -> commit -> ack.
//! The machinery for that lives here once ([`stage`]): durable pull consumers, bounded
//! in-flight work (backpressure), publishing with message ids, retries with
//! [`backoff`], `max_deliver` and [`dead_letter`]s. Around it: [`periodic`] tasks,
//! [`telemetry`] (logs, Prometheus, `/healthz`, `/readyz`), [`setup`] of streams and
//! buckets on their durability [`classes`]' servers ([`durability`] checks the money one), and [`replica`]s of KV buckets. Herald's domain records (users, sessions, the core
//! streams) live in `herald-core`.

pub mod backoff;
pub mod batch;
pub mod classes;
pub mod config;
pub mod dead_letter;
pub mod durability;
pub mod handle;
pub mod metric;
pub mod periodic;
pub mod processes;
pub mod reader;
pub mod records;
pub mod relocate;
pub mod replica;
pub mod sequencer;
pub mod setup;
pub mod stage;
pub mod telemetry;

pub use classes::msg_id_headers;
pub use classes::{Class, Js};
pub use dead_letter::{dead_letter, DeadLetter};
pub use handle::{Faults, StageHandle};
pub use stage::{publish_all, run_stage, Applied, Decision, Effect, MsgMeta, Output, Stage, StageConfig, StageError};
