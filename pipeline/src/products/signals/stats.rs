//! The signals' part of `/admin stats`: calls and signals today, notifications queued
//! today, and today's busiest callers (channels and feeds).

use std::collections::HashMap;

use herald_schemas::{escape_html, subjects, CallEvent};

use crate::core::product::StatsEnv;

/// Today's calls read for the top callers at most; past it the list says "of the first".
const SCAN_CAP: usize = 200_000;

/// How many callers the section lists.
const TOP: usize = 5;

/// The section (HTML).
///
/// Errors: a stream is missing or NATS failed.
pub async fn section(env: &StatsEnv) -> anyhow::Result<String> {
    let calls = env.count_today(subjects::CALLS_STREAM, "herald.calls.>").await?;
    let signals = env.count_today(subjects::SIGNALS_STREAM, "herald.signals.>").await?;
    let notified = env.count_today(subjects::OUTBOUND_STREAM, subjects::NOTIFY_ALL).await?;
    let mut by_caller: HashMap<String, u64> = HashMap::new();
    let mut read = 0;
    let since = herald_runtime::reader::since(env.today_ms());
    let mut reader = herald_runtime::reader::Reader::open(&env.js, subjects::CALLS_STREAM, Some("herald.calls.>"), since).await?;
    while read < SCAN_CAP {
        let Some(m) = reader.next().await? else { break };
        read += 1;
        if let Ok(call) = herald_schemas::decode::<CallEvent>(&m.payload) {
            *by_caller.entry(caller_name(&call)).or_default() += 1;
        }
    }
    reader.close().await;
    let mut text = format!(
        "<b>Signals</b>\ncalls today {calls} · signals {signals} · notifications queued {notified} (all products' broadcasts)"
    );
    text.push_str(&top_callers(by_caller, read >= SCAN_CAP));
    Ok(text)
}

/// A caller as operators know it: its name, else its id, with its source.
fn caller_name(call: &CallEvent) -> String {
    let name = call.caller.name.as_deref().unwrap_or(&call.caller.id);
    format!("{name} ({})", call.caller.source.as_str())
}

/// `\ntop callers today: A (feed) 12 · B (telegram_channel) 7`, busiest first (ties by
/// name), escaped.
///
/// ```
/// use std::collections::HashMap;
/// use herald_pipeline::products::signals::stats::top_callers;
/// let counts = HashMap::from([("<b>x</b> (feed)".to_string(), 2), ("a (feed)".into(), 5)]);
/// assert_eq!(top_callers(counts, false), "\ntop callers today: a (feed) 5 · &lt;b&gt;x&lt;/b&gt; (feed) 2");
/// ```
pub fn top_callers(counts: HashMap<String, u64>, capped: bool) -> String {
    if counts.is_empty() {
        return String::new();
    }
    let mut top: Vec<(String, u64)> = counts.into_iter().collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let list: Vec<String> = top.iter().take(TOP).map(|(name, n)| format!("{} {n}", escape_html(name))).collect();
    let scope = if capped { format!(" (of the first {SCAN_CAP})") } else { String::new() };
    format!("\ntop callers today{scope}: {}", list.join(" · "))
}

/// The `signals` broadcast segment: users with paid access now who have not paused
/// signals (no preferences stored = not paused).
///
/// Errors: KV unreachable.
pub async fn subscribers(env: &StatsEnv) -> anyhow::Result<Vec<i64>> {
    use herald_schemas::{Access, SignalsPrefs};
    let access = env.js.get_key_value(subjects::ACCESS_BUCKET).await?;
    let paid: std::collections::HashSet<i64> = herald_runtime::records::all::<Access>(&access)
        .await?
        .into_iter()
        .filter(|a| a.paid_at(env.now_ms))
        .map(|a| a.user_id)
        .collect();
    let prefs = env.js.get_key_value(subjects::SIGNALS_USERS_BUCKET).await?;
    let paused: std::collections::HashSet<i64> = herald_runtime::records::all::<SignalsPrefs>(&prefs)
        .await?
        .into_iter()
        .filter(|p| p.paused)
        .map(|p| p.user_id)
        .collect();
    Ok(paid.into_iter().filter(|u| !paused.contains(u)).collect())
}
