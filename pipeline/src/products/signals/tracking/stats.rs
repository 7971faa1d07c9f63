//! Channel statistics computed from tracked calls: for each caller, its calls (distinct
//! tokens it called that users tracked), the share that reached at least 2x within the
//! win window (win rate) and the average best gain. Published to the `herald_channels`
//! KV bucket, whose replica feeds the filter stage.

use std::collections::{HashMap, HashSet};

use herald_schemas::ChannelStats;

/// A caller's call of one token.
#[derive(Debug, Clone, Copy, PartialEq)]
struct CallerCall {
    called_at_ms: u64,
    /// Best multiple reached within the win window.
    best: f64,
}

/// Every caller's calls, and which callers changed since the last publication.
#[derive(Debug, Default)]
pub struct CallerBook {
    calls: HashMap<String, HashMap<String, CallerCall>>,
    dirty: HashSet<String>,
    /// Win window in ms.
    pub window_ms: u64,
}

impl CallerBook {
    pub fn new(window_ms: u64) -> Self {
        CallerBook {
            window_ms,
            ..Default::default()
        }
    }

    /// Records that `caller` called `token_key` at `called_at_ms` (first call kept).
    pub fn add(&mut self, caller: &str, token_key: &str, called_at_ms: u64, best: f64) {
        let calls = self.calls.entry(caller.to_string()).or_default();
        if !calls.contains_key(token_key) {
            calls.insert(
                token_key.to_string(),
                CallerCall {
                    called_at_ms,
                    best: best.max(1.0),
                },
            );
            self.dirty.insert(caller.to_string());
        }
    }

    /// A price reached `multiple` of `caller`'s call of `token_key` at `now_ms`; it
    /// counts only within the win window.
    pub fn observe(&mut self, caller: &str, token_key: &str, multiple: f64, now_ms: u64) {
        if let Some(c) = self.calls.get_mut(caller).and_then(|m| m.get_mut(token_key)) {
            if multiple > c.best && now_ms.saturating_sub(c.called_at_ms) <= self.window_ms {
                c.best = multiple;
                self.dirty.insert(caller.to_string());
            }
        }
    }

    /// A caller's statistics.
    pub fn stats(&self, caller: &str) -> Option<ChannelStats> {
        let calls = self.calls.get(caller)?;
        let n = calls.len();
        if n == 0 {
            return None;
        }
        let wins = calls.values().filter(|c| c.best >= 2.0).count();
        let gain: f64 = calls.values().map(|c| (c.best - 1.0) * 100.0).sum();
        Some(ChannelStats {
            v: 1,
            win_rate: wins as f64 / n as f64,
            avg_gain_pct: gain / n as f64,
            calls: n as u32,
        })
    }

    /// Statistics of every caller that changed since the last call, clearing the marks.
    pub fn take_changed(&mut self) -> Vec<(String, ChannelStats)> {
        let dirty: Vec<String> = self.dirty.drain().collect();
        dirty.into_iter().filter_map(|c| self.stats(&c).map(|s| (c, s))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn win_rate_and_average_gain_by_hand() {
        let day = 86_400_000;
        let mut book = CallerBook::new(day);
        book.add("A", "solana:X", 0, 1.0);
        book.add("A", "solana:Y", 0, 1.0);
        book.add("A", "solana:Z", 0, 1.0);
        book.add("A", "solana:X", 50, 1.0); // the first call counts
        book.observe("A", "solana:X", 3.0, 1000); // a win: +200%
        book.observe("A", "solana:Y", 1.5, 1000); // +50%
        book.observe("A", "solana:Z", 5.0, 2 * day); // outside the window: stays +0%
        let s = book.stats("A").unwrap();
        assert_eq!(s.calls, 3);
        assert!((s.win_rate - 1.0 / 3.0).abs() < 1e-9);
        assert!((s.avg_gain_pct - 250.0 / 3.0).abs() < 1e-9);
        let changed = book.take_changed();
        assert_eq!(changed.len(), 1);
        assert!(book.take_changed().is_empty(), "marks are cleared");
        assert!(book.stats("nobody").is_none());
    }
}
