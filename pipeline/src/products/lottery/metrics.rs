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

/// All of them.
pub const ALL: &[Metric] = &[STEPS, SETTLEMENTS_REFUSED, PAYOUTS, BEACON_REFUSALS];
