//! The lottery's metrics. Declared once here (see `herald_runtime::metric`), described at start.

use herald_runtime::metric::Metric;

/// Steps appended to a round's journal, by step.
pub const STEPS: Metric = Metric::counter("herald_lottery_steps_total", "Steps appended to a round's journal, by step").labelled(&["step"]);
/// Settlements refused for a human (the pot does not add up).
pub const SETTLEMENTS_REFUSED: Metric = Metric::counter("herald_lottery_settlements_refused_total", "Settlements refused for a human (the pot does not add up)");
/// Prizes and referral rewards credited, by kind.
pub const PAYOUTS: Metric = Metric::counter("herald_lottery_payouts_total", "Prizes and referral rewards credited, by kind").labelled(&["kind"]);
/// drand beacons refused (bad signature, wrong round, ...), by reason.
pub const BEACON_REFUSALS: Metric = Metric::counter("herald_lottery_beacon_refusals_total", "drand beacons refused (bad signature, wrong round, ...), by reason").labelled(&["reason"]);

/// How long the lottery's oldest due step has waited, seconds (0: nothing overdue),
/// set by the scheduler at each tick.
pub const STEP_OVERDUE: Metric = Metric::gauge(
    "herald_lottery_step_overdue_seconds",
    "How long the oldest due lottery step (close, beacon, reveal, draw, settle) has waited, seconds; set each scheduler tick",
);

/// All of them.
pub const ALL: &[Metric] = &[STEPS, SETTLEMENTS_REFUSED, PAYOUTS, BEACON_REFUSALS, STEP_OVERDUE];
