//! The random chat's metrics. Declared once here (see `herald_runtime::metric`), described at start.

use herald_runtime::metric::Metric;

/// Chats paired.
pub const PAIRS: Metric = Metric::counter("herald_chat_pairs_total", "Chats paired");
/// Messages relayed to a partner (copies published).
pub const RELAYED: Metric = Metric::counter("herald_chat_relayed_total", "Messages relayed to a partner (copies published)");
/// Messages that could not be relayed, each told to its sender.
pub const UNDELIVERABLE: Metric = Metric::counter("herald_chat_undeliverable_total", "Messages that could not be relayed, each told to its sender");
/// copyMessages batches Telegram copied only in part, undone and sent again one by one.
pub const PARTIAL_BATCHES: Metric = Metric::counter("herald_chat_partial_batches_total", "copyMessages batches Telegram copied only in part, undone and sent again one by one");
/// Reports filed.
pub const REPORTS: Metric = Metric::counter("herald_chat_reports_total", "Reports filed");
/// Chats ended for inactivity.
pub const TIMEOUTS: Metric = Metric::counter("herald_chat_timeouts_total", "Chats ended for inactivity");

/// Chats going on now (pairs), set by the sweeper.
pub const ACTIVE_PAIRS: Metric = Metric::gauge("herald_chat_active_pairs", "Chats going on now (pairs), set by the sweeper");
/// Users waiting for a partner now (live queue entries), set by the sweeper.
pub const QUEUE_LENGTH: Metric = Metric::gauge("herald_chat_queue_length", "Users waiting for a partner now (live queue entries), set by the sweeper");

/// All of them.
pub const ALL: &[Metric] = &[PAIRS, RELAYED, UNDELIVERABLE, PARTIAL_BATCHES, REPORTS, TIMEOUTS, ACTIVE_PAIRS, QUEUE_LENGTH];
