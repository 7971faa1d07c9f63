//! Herald's wire contract: every subject's payload type, every subject and stream name.
//!
//! Every payload is JSON with a `v` field (the schema version, see [`Versioned`]); the
//! JSON Schema of each is checked in under `schemas/json/` so that other languages can
//! consume the subjects. A test keeps the files equal to these types.
//!
//! ```
//! use herald_schemas::{subjects, Chain};
//! assert_eq!(subjects::call(Chain::from("SOL").as_str(), "feed"), "herald.calls.solana.feed");
//! ```

mod call;
mod delivery;
mod lottery;
mod outbound;
mod payments;
mod routed;
mod tracking;
mod trivia;
mod user;

pub mod checks;
pub mod html;
pub mod subjects;
pub mod telegram;

pub use call::{CallEvent, CallSource, Caller, Chain, ChannelStats, FeedFrame, Link, Signal};
pub use delivery::{DeliveryReport, Outcome};
pub use lottery::{LotteryEntry, LotteryStep, Payout};
pub use outbound::{escape_html, Button, Content, MenuCommand, OutboundMessage, Photo, Priority};
pub use payments::{Deposit, DepositStage, GatewayPayment, LedgerEntry, LedgerKind, Withdrawal, WithdrawalOutcome, WithdrawalStage};
pub use routed::RoutedUpdate;
pub use tracking::{PriceUpdate, Recipient, TrackedCalls};
pub use trivia::{AnswerVia, BoardChange, ExplainRequest, FinalScore, GameStep, TriviaAnswer, TriviaGameEvent, TriviaResult};
pub use user::{Access, Filters, LegacyUser, SignalsPrefs, User};

/// A payload type with a schema version.
///
/// Readers accept any `v` up to [`Versioned::VERSION`]; a newer version is refused with
/// [`DecodeError::UnsupportedVersion`] instead of being half-understood.
pub trait Versioned: serde::Serialize + serde::de::DeserializeOwned + schemars::JsonSchema {
    /// Current schema version written by this build.
    const VERSION: u32;
    /// File stem of the JSON Schema under `schemas/json/` (e.g. `call_event`).
    const SCHEMA_NAME: &'static str;
    /// The `v` field of a decoded value.
    fn version(&self) -> u32;
}

/// Why a payload could not be decoded.
#[derive(Debug)]
pub enum DecodeError {
    /// The bytes are not JSON of the expected shape (serde's message).
    Malformed(String),
    /// The payload declares a schema version newer than this build understands.
    UnsupportedVersion { found: u32, supported: u32 },
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::Malformed(e) => write!(f, "malformed payload: {e}"),
            DecodeError::UnsupportedVersion { found, supported } => {
                write!(f, "unsupported schema version {found} (this build reads up to {supported})")
            }
        }
    }
}

impl std::error::Error for DecodeError {}

/// Decodes a versioned payload from JSON bytes.
///
/// Errors: [`DecodeError::Malformed`] for bad JSON or a wrong shape,
/// [`DecodeError::UnsupportedVersion`] when `v` is newer than [`Versioned::VERSION`].
pub fn decode<T: Versioned>(bytes: &[u8]) -> Result<T, DecodeError> {
    let value: T = serde_json::from_slice(bytes).map_err(|e| DecodeError::Malformed(e.to_string()))?;
    if value.version() > T::VERSION {
        return Err(DecodeError::UnsupportedVersion {
            found: value.version(),
            supported: T::VERSION,
        });
    }
    Ok(value)
}

/// Encodes a payload as compact JSON bytes.
pub fn encode<T: Versioned>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("payload types serialise infallibly")
}

/// The JSON Schema of a payload type, pretty-printed, as checked in under `schemas/json/`.
pub fn json_schema<T: Versioned>() -> String {
    let schema = schemars::schema_for!(T);
    serde_json::to_string_pretty(&schema).expect("schema serialises") + "\n"
}

/// Milliseconds since the Unix epoch, the time unit of every `*_ms` field.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn one() -> u32 {
    1
}
