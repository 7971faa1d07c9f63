//! The core's metrics: the ledger and the router's inbound limits. Declared once here (see `herald_runtime::metric`), described at start.

use herald_runtime::metric::Metric;

/// Ledger entries written (credit, debit, hold, release, settle), by kind.
pub const LEDGER_ENTRIES: Metric = Metric::counter(
    "herald_ledger_entries_total",
    "Ledger entries written (credit, debit, hold, release, settle), by kind",
)
.labelled(&["kind"]);
/// Updates over a product's per-user inbound limit.
pub const INBOUND_LIMITED: Metric =
    Metric::counter("herald_inbound_limited_total", "Updates over a product's per-user inbound limit").labelled(&["product"]);

/// All of them.
pub const ALL: &[Metric] = &[LEDGER_ENTRIES, INBOUND_LIMITED];
