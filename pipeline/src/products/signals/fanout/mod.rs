//! Filter + fan-out: one notification per user whose filter passes on the signal's new
//! callers and who has not been sent the token.
//!
//! Users come from an in-memory replica of the `herald_users`, `herald_signals_users` and
//! `herald_access` KV buckets ([`UserIndex`]),
//! channel statistics from `herald_channels` ([`ChannelIndex`]); both are kept current
//! by change events. Who was sent a token lives in Redis ([`TokenState`]); it is recorded,
//! and the token upgraded to accepted, only after every notification is acknowledged by
//! the OUTBOUND stream. Each notification's idempotency key (also its message id) is
//! [`notification_key`], so a redelivered signal cannot notify twice.

mod index;
pub mod render;

pub use index::{ChannelIndex, SignalFacts, UserIndex, UserView, USER_BUCKETS};

use herald_schemas::{subjects, ChannelStats, OutboundMessage, Priority, Recipient, Signal, TrackedCalls};

use super::token_state::TokenState;
use herald_runtime::replica::Replica;
use herald_runtime::{Decision, MsgMeta, Output, Stage, StageError};

/// Idempotency key of a signal notification: `sig.<user>.<chain>.<token>` (KV-key safe).
pub fn notification_key(user_id: i64, token_key: &str) -> String {
    subjects::kv_key(&format!("sig.{user_id}.{token_key}").replace(':', "."))
}

/// The facts the filters test: chain, FDV and the statistics of the new callers (the
/// feed's own figures for the calling caller, else the channel replica's).
pub fn signal_facts(signal: &Signal, stats_of: impl Fn(&str) -> Option<ChannelStats>) -> SignalFacts {
    let new_caller_stats = signal
        .new_callers
        .iter()
        .filter_map(|c| {
            if c.id == signal.call.caller.id {
                signal.call.caller_stats.or_else(|| stats_of(&c.id))
            } else {
                stats_of(&c.id)
            }
        })
        .map(|s| (s.win_rate, s.avg_gain_pct))
        .collect();
    SignalFacts {
        chain: Some(signal.call.chain.clone()),
        fdv_usd: signal.call.fdv_usd,
        new_caller_stats,
        paid_after_ms: 0,
    }
}

/// The tracked calls a signal's notifications start (`herald.tracked.<chain>`), when the
/// call has a USD price to measure multiples from. Message id: the signal's stream
/// sequence, so a redelivered signal does not track twice.
fn tracked_calls(signal: &Signal, recipients: &[(i64, i64)], meta: &MsgMeta) -> Option<Output> {
    let entry = signal.call.price_usd.filter(|p| p.is_finite() && *p > 0.0)?;
    let event = TrackedCalls {
        v: 1,
        chain: signal.call.chain.clone(),
        token: signal.call.token.clone(),
        symbol: signal.call.symbol.clone(),
        caller_ids: signal.all_caller_ids.clone(),
        entry_price_usd: entry,
        called_at_ms: signal.call.origin_ts_ms,
        recipients: recipients
            .iter()
            .map(|&(user_id, chat_id)| Recipient { user_id, chat_id })
            .collect(),
    };
    Some(Output {
        subject: subjects::tracked(signal.call.chain.as_str()),
        msg_id: format!("tracked|{}:{}", meta.subject, meta.stream_sequence),
        payload: herald_schemas::encode(&event),
    })
}

/// The fan-out stage (consumes `herald.signals.>`).
pub struct FanoutStage {
    pub users: Replica<UserIndex>,
    pub channels: Replica<ChannelIndex>,
    pub state: TokenState,
    /// Only users with an active subscription (or trial) get signals.
    pub require_subscription: bool,
}

impl FanoutStage {
    fn stats_of(&self, id: &str) -> Option<ChannelStats> {
        self.channels.read(|c| c.0.get(&subjects::kv_key(id)).copied())
    }
}

impl Stage for FanoutStage {
    const NAME: &'static str = "fanout";
    type Input = Signal;
    type Commit = (String, Vec<i64>);
    type Effect = std::convert::Infallible;

    fn decode(&self, payload: &[u8]) -> Result<Signal, String> {
        herald_schemas::decode(payload).map_err(|e| e.to_string())
    }

    async fn decide(&self, signal: Signal, meta: &MsgMeta) -> Result<Decision<Self::Commit>, StageError> {
        let mut facts = signal_facts(&signal, |id| self.stats_of(id));
        if self.require_subscription {
            facts.paid_after_ms = herald_schemas::now_ms();
        }
        let candidates = self.users.read(|u| u.matching(&facts));
        if candidates.is_empty() {
            return Ok(Decision::Drop {
                reason: "no_matching_user",
            });
        }
        let token_key = signal.call.token_key();
        let ids: Vec<i64> = candidates.iter().map(|(u, _)| *u).collect();
        let sent = self.state.sent_to(&token_key, &ids).await?;
        let recipients: Vec<(i64, i64)> = candidates.into_iter().zip(sent).filter(|(_, s)| !s).map(|(c, _)| c).collect();
        if recipients.is_empty() {
            return Ok(Decision::Drop { reason: "already_sent" });
        }
        let text = render::signal_text(&signal, |id| self.stats_of(id));
        let mut outputs: Vec<Output> = recipients
            .iter()
            .map(|&(user_id, chat_id)| {
                let key = notification_key(user_id, &token_key);
                let msg = OutboundMessage::html(key.clone(), chat_id, text.clone(), Priority::Broadcast, signal.call.origin_ts_ms);
                Output {
                    subject: subjects::notify(chat_id),
                    msg_id: key,
                    payload: herald_schemas::encode(&msg),
                }
            })
            .collect();
        if let Some(tracked) = tracked_calls(&signal, &recipients, meta) {
            outputs.push(tracked);
        }
        Ok(Decision::Forward {
            outputs,
            commit: (token_key, recipients.into_iter().map(|(u, _)| u).collect()),
        })
    }

    async fn commit(&self, (token_key, users): Self::Commit) -> Result<(), StageError> {
        Ok(self.state.accept(&token_key, &users).await?)
    }
}
