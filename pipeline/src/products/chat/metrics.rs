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

/// All of them.
pub const ALL: &[Metric] = &[PAIRS, RELAYED, UNDELIVERABLE, PARTIAL_BATCHES, REPORTS, TIMEOUTS];
