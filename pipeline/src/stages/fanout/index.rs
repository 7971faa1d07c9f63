//! The in-memory user index the fan-out scans: a compact, contiguous copy of every
//! receiving user's filter, so one signal against 100,000 users is a linear scan of
//! plain numbers (no hashing, no allocation per user).

use std::collections::HashMap;

use herald_schemas::{Chain, ChannelStats, UserSettings};

use crate::replica::ReplicaSink;

/// What a signal offers to the filters.
#[derive(Debug, Clone, Default)]
pub struct SignalFacts {
    pub chain: Option<Chain>,
    pub fdv_usd: Option<f64>,
    /// `(win_rate, avg_gain_pct)` of each new caller with known statistics.
    pub new_caller_stats: Vec<(f64, f64)>,
}

/// One user's filter, flattened: `None` bounds become infinities.
#[derive(Debug, Clone, Copy)]
struct Compact {
    user_id: i64,
    chat_id: i64,
    min_win_rate: f64,
    min_avg_gain: f64,
    has_stats_filter: bool,
    min_fdv: f64,
    max_fdv: f64,
    has_fdv_filter: bool,
    /// Bit per chain (see [`ChainBits`]); `u64::MAX` = every chain.
    chains: u64,
}

impl Compact {
    fn from_settings(s: &UserSettings, bits: &mut ChainBits) -> Self {
        let f = &s.filters;
        Compact {
            user_id: s.user_id,
            chat_id: s.chat_id,
            min_win_rate: f.min_win_rate.unwrap_or(f64::NEG_INFINITY),
            min_avg_gain: f.min_avg_gain_pct.unwrap_or(f64::NEG_INFINITY),
            has_stats_filter: f.min_win_rate.is_some() || f.min_avg_gain_pct.is_some(),
            min_fdv: f.min_fdv_usd.unwrap_or(f64::NEG_INFINITY),
            max_fdv: f.max_fdv_usd.unwrap_or(f64::INFINITY),
            has_fdv_filter: f.min_fdv_usd.is_some() || f.max_fdv_usd.is_some(),
            chains: if f.chains.is_empty() {
                u64::MAX
            } else {
                f.chains.iter().fold(0, |m, c| m | bits.bit_or_assign(c))
            },
        }
    }

    #[inline]
    fn passes(&self, chain_bit: u64, fdv: Option<f64>, stats: &[(f64, f64)]) -> bool {
        if self.chains & chain_bit == 0 {
            return false;
        }
        if self.has_fdv_filter {
            match fdv {
                Some(v) if v >= self.min_fdv && v <= self.max_fdv => {}
                _ => return false,
            }
        }
        !self.has_stats_filter || stats.iter().any(|&(wr, gain)| wr >= self.min_win_rate && gain >= self.min_avg_gain)
    }
}

/// Chain name -> bit. The 64th distinct chain and later share the last bit; users
/// filtering on such a chain are re-checked exactly.
#[derive(Debug, Default)]
struct ChainBits(HashMap<Chain, u8>);

const OVERFLOW_BIT: u8 = 63;

impl ChainBits {
    fn bit_or_assign(&mut self, chain: &Chain) -> u64 {
        let next = self.0.len().min(OVERFLOW_BIT as usize) as u8;
        1u64 << *self.0.entry(chain.clone()).or_insert(next)
    }
    fn bit(&self, chain: &Chain) -> u64 {
        1u64 << self.0.get(chain).copied().unwrap_or(OVERFLOW_BIT)
    }
}

/// Every user's settings, plus the compact filters of those who receive signals.
#[derive(Debug, Default)]
pub struct UserIndex {
    settings: HashMap<i64, UserSettings>,
    compact: Vec<Compact>,
    slot: HashMap<i64, usize>,
    bits: ChainBits,
}

impl UserIndex {
    /// Inserts or replaces a user (O(1)).
    pub fn upsert(&mut self, s: UserSettings) {
        self.remove_compact(s.user_id);
        if s.receives_signals() {
            let c = Compact::from_settings(&s, &mut self.bits);
            self.slot.insert(s.user_id, self.compact.len());
            self.compact.push(c);
        }
        self.settings.insert(s.user_id, s);
    }

    /// Removes a user (O(1)).
    pub fn remove(&mut self, user_id: i64) {
        self.remove_compact(user_id);
        self.settings.remove(&user_id);
    }

    fn remove_compact(&mut self, user_id: i64) {
        if let Some(i) = self.slot.remove(&user_id) {
            self.compact.swap_remove(i);
            if let Some(moved) = self.compact.get(i) {
                self.slot.insert(moved.user_id, i);
            }
        }
    }

    pub fn get(&self, user_id: i64) -> Option<&UserSettings> {
        self.settings.get(&user_id)
    }

    /// Users known, receiving or not.
    pub fn len(&self) -> usize {
        self.settings.len()
    }

    pub fn is_empty(&self) -> bool {
        self.settings.is_empty()
    }

    /// `(user_id, chat_id)` of every receiving user whose filter passes.
    pub fn matching(&self, facts: &SignalFacts) -> Vec<(i64, i64)> {
        let chain_bit = facts.chain.as_ref().map(|c| self.bits.bit(c)).unwrap_or(1 << OVERFLOW_BIT);
        let overflow = chain_bit == 1 << OVERFLOW_BIT;
        self.compact
            .iter()
            .filter(|c| c.passes(chain_bit, facts.fdv_usd, &facts.new_caller_stats))
            .filter(|c| !overflow || c.chains == u64::MAX || self.exact_chain_match(c.user_id, facts))
            .map(|c| (c.user_id, c.chat_id))
            .collect()
    }

    fn exact_chain_match(&self, user_id: i64, facts: &SignalFacts) -> bool {
        match (self.settings.get(&user_id), &facts.chain) {
            (Some(s), Some(chain)) => s.filters.chains.contains(chain),
            _ => false,
        }
    }
}

impl ReplicaSink for UserIndex {
    fn put(&mut self, key: &str, value: &[u8]) {
        match herald_schemas::decode::<UserSettings>(value) {
            Ok(s) => self.upsert(s),
            Err(e) => tracing::warn!(key, error = %e, "skipping undecodable user settings"),
        }
    }
    fn delete(&mut self, key: &str) {
        if let Ok(id) = key.parse() {
            self.remove(id);
        }
    }
}

/// Channel statistics by caller id.
#[derive(Debug, Default)]
pub struct ChannelIndex(pub HashMap<String, ChannelStats>);

impl ReplicaSink for ChannelIndex {
    fn put(&mut self, key: &str, value: &[u8]) {
        match herald_schemas::decode::<ChannelStats>(value) {
            Ok(s) => {
                self.0.insert(key.to_string(), s);
            }
            Err(e) => tracing::warn!(key, error = %e, "skipping undecodable channel stats"),
        }
    }
    fn delete(&mut self, key: &str) {
        self.0.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_schemas::Filters;

    fn user(id: i64, f: Filters) -> UserSettings {
        UserSettings {
            filters: f,
            ..UserSettings::new(id, id * 10, 0)
        }
    }

    fn facts(chain: &str, fdv: Option<f64>, stats: &[(f64, f64)]) -> SignalFacts {
        SignalFacts {
            chain: Some(Chain::from(chain)),
            fdv_usd: fdv,
            new_caller_stats: stats.to_vec(),
        }
    }

    #[test]
    fn filters_test_chain_fdv_and_new_caller_stats() {
        let mut idx = UserIndex::default();
        idx.upsert(user(1, Filters::default()));
        idx.upsert(user(
            2,
            Filters {
                chains: vec![Chain::from("bsc")],
                ..Default::default()
            },
        ));
        idx.upsert(user(
            3,
            Filters {
                min_fdv_usd: Some(50_000.0),
                max_fdv_usd: Some(300_000.0),
                ..Default::default()
            },
        ));
        idx.upsert(user(
            4,
            Filters {
                min_win_rate: Some(0.6),
                min_avg_gain_pct: Some(100.0),
                ..Default::default()
            },
        ));

        let ids = |f: &SignalFacts| idx.matching(f).into_iter().map(|(u, _)| u).collect::<Vec<_>>();
        assert_eq!(ids(&facts("solana", Some(258_000.0), &[])), vec![1, 3]);
        assert_eq!(ids(&facts("BNB", Some(10_000.0), &[(0.7, 150.0)])), vec![1, 2, 4]);
        // unknown FDV fails an FDV filter; stats must meet both minimums on one caller
        assert_eq!(ids(&facts("solana", None, &[(0.7, 50.0), (0.5, 150.0)])), vec![1]);
        assert_eq!(idx.matching(&facts("solana", None, &[]))[0], (1, 10));
    }

    #[test]
    fn paused_inactive_and_removed_users_receive_nothing() {
        let mut idx = UserIndex::default();
        for id in 1..=4 {
            idx.upsert(user(id, Filters::default()));
        }
        idx.upsert(UserSettings {
            paused: true,
            ..user(1, Filters::default())
        });
        idx.upsert(UserSettings {
            active: false,
            ..user(2, Filters::default())
        });
        idx.remove(3);
        let mut got: Vec<i64> = idx.matching(&facts("solana", None, &[])).into_iter().map(|(u, _)| u).collect();
        got.sort();
        assert_eq!(got, vec![4]);
        assert_eq!(idx.len(), 3);
        idx.upsert(user(1, Filters::default()));
        assert_eq!(idx.matching(&facts("solana", None, &[])).len(), 2);
    }

    #[test]
    fn chains_past_the_64th_are_checked_exactly() {
        let mut idx = UserIndex::default();
        for i in 0..70 {
            idx.upsert(user(
                i + 1,
                Filters {
                    chains: vec![Chain::from(format!("chain{i}"))],
                    ..Default::default()
                },
            ));
        }
        let ids = |c: &str| idx.matching(&facts(c, None, &[])).into_iter().map(|(u, _)| u).collect::<Vec<_>>();
        assert_eq!(ids("chain0"), vec![1]);
        assert_eq!(ids("chain65"), vec![66]);
        assert!(ids("chain99").is_empty());
    }
}
