//! The bot's metrics: updates in, messages out. Declared once here (see `herald_runtime::metric`), described at start.

use herald_runtime::metric::Metric;

/// Updates taken from Telegram.
pub const UPDATES: Metric = Metric::counter("herald_bot_updates_total", "Updates taken from Telegram");
/// Webhook calls refused (wrong secret token, bad body).
pub const WEBHOOK_REJECTED: Metric = Metric::counter(
    "herald_bot_webhook_rejected_total",
    "Webhook calls refused (wrong secret token, bad body)",
);
/// Messages Telegram accepted, by kind (reply, broadcast).
pub const SENT: Metric =
    Metric::counter("herald_bot_sent_total", "Messages Telegram accepted, by kind (reply, broadcast)").labelled(&["kind"]);
/// From an event's origin to Telegram's acceptance, seconds.
pub const END_TO_END: Metric = Metric::seconds(
    "herald_bot_end_to_end_seconds",
    "From an event's origin to Telegram's acceptance, seconds",
)
.labelled(&["kind"]);
/// 429 answers from Telegram (the chat held for retry_after).
pub const TOO_MANY_REQUESTS: Metric = Metric::counter("herald_bot_429_total", "429 answers from Telegram (the chat held for retry_after)");
/// Sends retried after a 5xx or network error.
pub const SEND_RETRIES: Metric = Metric::counter("herald_bot_send_retries_total", "Sends retried after a 5xx or network error");
/// Sends refused because the user blocked the bot (403).
pub const BLOCKED: Metric = Metric::counter("herald_bot_blocked_total", "Sends refused because the user blocked the bot (403)");
/// Redelivered messages not sent again (their key was delivered).
pub const REDELIVERY_SUPPRESSED: Metric = Metric::counter(
    "herald_bot_redelivery_suppressed_total",
    "Redelivered messages not sent again (their key was delivered)",
);

/// All of them.
pub const ALL: &[Metric] = &[
    UPDATES,
    WEBHOOK_REJECTED,
    SENT,
    END_TO_END,
    TOO_MANY_REQUESTS,
    SEND_RETRIES,
    BLOCKED,
    REDELIVERY_SUPPRESSED,
];

#[cfg(test)]
mod tests {
    #[test]
    fn every_bot_metric_is_documented() {
        let docs = include_str!("../../docs/operations.md");
        for m in super::ALL.iter().chain(herald_runtime::metric::RUNTIME) {
            assert!(
                docs.contains(&format!("| `{}` |", m.name)),
                "{} is missing from docs/operations.md's table",
                m.name
            );
        }
    }
}
