//! The signer's metrics (see `herald_runtime::metric`).

use herald_runtime::metric::Metric;

/// Transactions signed, first ones and replacements.
pub const SIGNED: Metric = Metric::counter(
    "herald_signer_signed_total",
    "Transactions the signer signed (first ones and replacements)",
);
/// Replacements of a stuck transaction at a higher gas price.
pub const REPLACED: Metric = Metric::counter(
    "herald_signer_replaced_total",
    "Stuck transactions replaced with the same nonce at a higher gas price",
);
/// Withdrawals that ended, by outcome (`final`, `failed`).
pub const ENDED: Metric = Metric::counter("herald_signer_withdrawals_total", "Withdrawals that ended, by outcome").labelled(&["outcome"]);
/// Withdrawals queued for the hot wallet's funds.
pub const QUEUED: Metric = Metric::counter(
    "herald_signer_queued_total",
    "Withdrawals queued whole because the hot wallet was short of the token or of gas",
);

/// All of them.
pub const ALL: &[Metric] = &[SIGNED, REPLACED, ENDED, QUEUED];
