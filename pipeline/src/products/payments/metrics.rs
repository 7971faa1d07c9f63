//! Payments' metrics: the deposit watcher, credits, reminders and the gateway's IPNs. Declared once here (see `herald_runtime::metric`), described at start.

use herald_runtime::metric::Metric;

/// Deposit events the watcher published, by stage (seen, final, orphaned).
pub const DEPOSITS: Metric = Metric::counter("herald_deposits_total", "Deposit events the watcher published, by stage (seen, final, orphaned)").labelled(&["stage"]);
/// Final deposits below the minimum, recorded but not credited.
pub const DEPOSITS_BELOW_MINIMUM: Metric = Metric::counter("herald_deposits_below_minimum_total", "Final deposits below the minimum, recorded but not credited");
/// Chain reorganisations the watcher followed.
pub const WATCHER_REORGS: Metric = Metric::counter("herald_watcher_reorgs_total", "Chain reorganisations the watcher followed");
/// Transfer logs the watcher could not decode.
pub const WATCHER_MALFORMED_LOGS: Metric = Metric::counter("herald_watcher_malformed_logs_total", "Transfer logs the watcher could not decode");
/// Watcher rounds that failed (RPC errors), retried with backoff.
pub const WATCHER_ERRORS: Metric = Metric::counter("herald_watcher_errors_total", "Watcher rounds that failed (RPC errors), retried with backoff");
/// Subscription expiry reminders sent.
pub const REMINDERS: Metric = Metric::counter("herald_reminders_total", "Subscription expiry reminders sent");

/// NOWPayments IPNs received, by outcome (accepted, no_signature, bad_signature,
/// malformed, unavailable).
pub const GATEWAY_IPNS: Metric =
    Metric::counter("herald_gateway_ipns_total", "NOWPayments IPNs received, by outcome (accepted, no_signature, bad_signature, malformed, unavailable)")
        .labelled(&["outcome"]);

/// Blocks between the chain's head and the watcher's next block to scan, at the start
/// of each round (how far it had fallen behind).
pub const WATCHER_BEHIND: Metric = Metric::gauge(
    "herald_watcher_behind_blocks",
    "Blocks between the chain head and the watcher's next block to scan, at the start of each round",
);
/// When the watcher last finished a round, unix seconds (a stuck watcher stops moving it).
pub const WATCHER_LAST_ROUND: Metric = Metric::gauge(
    "herald_watcher_last_round_timestamp_seconds",
    "When the chain watcher last finished a round, unix seconds",
);

/// All of them.
pub const ALL: &[Metric] = &[
    WATCHER_BEHIND,
    WATCHER_LAST_ROUND,
    DEPOSITS,
    DEPOSITS_BELOW_MINIMUM,
    WATCHER_REORGS,
    WATCHER_MALFORMED_LOGS,
    WATCHER_ERRORS,
    REMINDERS,
    GATEWAY_IPNS,
];
