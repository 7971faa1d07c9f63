//! Signals' metrics: sources and the tracker. Declared once here (see `herald_runtime::metric`), described at start.

use herald_runtime::metric::Metric;

/// Frames a websocket source received.
pub const SOURCE_FRAMES: Metric = Metric::counter("herald_source_frames_total", "Frames a websocket source received").labelled(&["source"]);
/// Reconnections of a websocket source.
pub const SOURCE_RECONNECTS: Metric = Metric::counter("herald_source_reconnects_total", "Reconnections of a websocket source").labelled(&["source"]);
/// Events a websocket source published and had acknowledged.
pub const SOURCE_PUBLISHED: Metric = Metric::counter("herald_source_published_total", "Events a websocket source published and had acknowledged");
/// DexScreener poll errors: malformed answers, retried requests.
pub const DEXSCREENER_ERRORS: Metric = Metric::counter("herald_dexscreener_errors_total", "DexScreener poll errors: malformed answers, retried requests").labelled(&["kind"]);
/// Tracked calls the tracker checkpointed to its store.
pub const TRACKER_CHECKPOINTED: Metric = Metric::counter("herald_tracker_checkpointed_calls_total", "Tracked calls the tracker checkpointed to its store");

/// All of them.
pub const ALL: &[Metric] = &[SOURCE_FRAMES, SOURCE_RECONNECTS, SOURCE_PUBLISHED, DEXSCREENER_ERRORS, TRACKER_CHECKPOINTED];
