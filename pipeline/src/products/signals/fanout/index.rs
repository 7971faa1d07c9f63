//! The in-memory user index the fan-out scans: a compact copy of every receiving user's
//! filter, in candidate lists by FDV range, so one signal against 100,000 users tests
//! only the users whose FDV range can hold it (plus those without an FDV filter).

use std::collections::HashMap;

use herald_schemas::{Chain, ChannelStats, UserSettings};

use herald_runtime::replica::ReplicaSink;

/// What a signal offers to the filters.
#[derive(Debug, Clone, Default)]
pub struct SignalFacts {
    pub chain: Option<Chain>,
    pub fdv_usd: Option<f64>,
    /// `(win_rate, avg_gain_pct)` of each new caller with known statistics.
    pub new_caller_stats: Vec<(f64, f64)>,
    /// Only users paid up to at least this time (ms since epoch) match; 0 when the
    /// pipeline does not require a subscription.
    pub paid_after_ms: u64,
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
    /// Paid up to (ms since epoch); 0: never subscribed.
    paid_until_ms: u64,
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
            paid_until_ms: s.paid_until_ms.unwrap_or(0),
        }
    }

    #[inline]
    fn passes(&self, chain_bit: u64, fdv: Option<f64>, stats: &[(f64, f64)], paid_after_ms: u64) -> bool {
        if self.chains & chain_bit == 0 || self.paid_until_ms < paid_after_ms {
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

/// FDV buckets: 4 per doubling of FDV (each spans a factor of 1.19), up to 2^40 USD.
const FDV_BUCKETS: usize = 160;
/// A filter spanning more buckets than this is kept in the `wide` list instead.
const MAX_SPAN: usize = 16;

/// Bucket of an FDV in USD.
fn fdv_bucket(fdv: f64) -> usize {
    if fdv <= 1.0 || fdv.is_nan() {
        return 0;
    }
    ((fdv.log2() * 4.0) as usize).min(FDV_BUCKETS - 1)
}

/// Which candidate list a compact filter lives in.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Placement {
    /// No FDV filter: a candidate for every signal.
    AnyFdv,
    /// An FDV range too wide to bucket: a candidate for every signal with an FDV.
    Wide,
    /// A candidate for signals whose FDV falls in buckets `lo..=hi`.
    Buckets(usize, usize),
}

impl Compact {
    fn placement(&self) -> Placement {
        if !self.has_fdv_filter {
            return Placement::AnyFdv;
        }
        let (lo, hi) = (fdv_bucket(self.min_fdv.max(0.0)), fdv_bucket(self.max_fdv));
        if hi < lo || hi - lo >= MAX_SPAN {
            Placement::Wide
        } else {
            Placement::Buckets(lo, hi)
        }
    }
}

/// Every user's settings, plus the compact filters of those who receive signals, kept
/// in candidate lists by FDV range so a signal only tests users whose range can hold
/// its FDV (an interval index with log-scale buckets). Updates are O(bucket size).
#[derive(Debug)]
pub struct UserIndex {
    settings: HashMap<i64, UserSettings>,
    /// Stable slots; candidate lists hold slot numbers.
    slots: Vec<Option<Compact>>,
    free: Vec<u32>,
    slot_of: HashMap<i64, u32>,
    any_fdv: Vec<u32>,
    wide: Vec<u32>,
    buckets: Vec<Vec<u32>>,
    bits: ChainBits,
}

impl Default for UserIndex {
    fn default() -> Self {
        UserIndex {
            settings: HashMap::new(),
            slots: Vec::new(),
            free: Vec::new(),
            slot_of: HashMap::new(),
            any_fdv: Vec::new(),
            wide: Vec::new(),
            buckets: vec![Vec::new(); FDV_BUCKETS],
            bits: ChainBits::default(),
        }
    }
}

fn remove_from(list: &mut Vec<u32>, slot: u32) {
    if let Some(i) = list.iter().position(|s| *s == slot) {
        list.swap_remove(i);
    }
}

impl UserIndex {
    /// Inserts or replaces a user.
    pub fn upsert(&mut self, s: UserSettings) {
        self.remove_compact(s.user_id);
        if s.receives_signals() {
            let c = Compact::from_settings(&s, &mut self.bits);
            let slot = self.free.pop().unwrap_or_else(|| {
                self.slots.push(None);
                (self.slots.len() - 1) as u32
            });
            match c.placement() {
                Placement::AnyFdv => self.any_fdv.push(slot),
                Placement::Wide => self.wide.push(slot),
                Placement::Buckets(lo, hi) => self.buckets[lo..=hi].iter_mut().for_each(|b| b.push(slot)),
            }
            self.slots[slot as usize] = Some(c);
            self.slot_of.insert(s.user_id, slot);
        }
        self.settings.insert(s.user_id, s);
    }

    /// Removes a user.
    pub fn remove(&mut self, user_id: i64) {
        self.remove_compact(user_id);
        self.settings.remove(&user_id);
    }

    fn remove_compact(&mut self, user_id: i64) {
        let Some(slot) = self.slot_of.remove(&user_id) else { return };
        if let Some(c) = self.slots[slot as usize].take() {
            match c.placement() {
                Placement::AnyFdv => remove_from(&mut self.any_fdv, slot),
                Placement::Wide => remove_from(&mut self.wide, slot),
                Placement::Buckets(lo, hi) => self.buckets[lo..=hi].iter_mut().for_each(|b| remove_from(b, slot)),
            }
        }
        self.free.push(slot);
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

    /// `(user_id, chat_id)` of every receiving user whose filter passes, unordered.
    pub fn matching(&self, facts: &SignalFacts) -> Vec<(i64, i64)> {
        let chain_bit = facts.chain.as_ref().map(|c| self.bits.bit(c)).unwrap_or(1 << OVERFLOW_BIT);
        let overflow = chain_bit == 1 << OVERFLOW_BIT;
        let by_fdv: &[u32] = match facts.fdv_usd {
            Some(fdv) => &self.buckets[fdv_bucket(fdv)],
            None => &[],
        };
        let wide: &[u32] = if facts.fdv_usd.is_some() { &self.wide } else { &[] };
        let mut out = Vec::new();
        for &slot in self.any_fdv.iter().chain(wide).chain(by_fdv) {
            let Some(c) = &self.slots[slot as usize] else { continue };
            if c.passes(chain_bit, facts.fdv_usd, &facts.new_caller_stats, facts.paid_after_ms)
                && (!overflow || c.chains == u64::MAX || self.exact_chain_match(c.user_id, facts))
            {
                out.push((c.user_id, c.chat_id));
            }
        }
        out
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
            paid_after_ms: 0,
        }
    }

    #[test]
    fn with_subscriptions_required_only_paid_up_users_match() {
        let mut idx = UserIndex::default();
        let user = |id: i64, paid: Option<u64>| UserSettings {
            paid_until_ms: paid,
            ..UserSettings::new(id, id, 0)
        };
        idx.upsert(user(1, None));
        idx.upsert(user(2, Some(1_000)));
        idx.upsert(user(3, Some(u64::MAX)));
        let ids = |f: &SignalFacts| {
            let mut v: Vec<i64> = idx.matching(f).into_iter().map(|(u, _)| u).collect();
            v.sort();
            v
        };
        assert_eq!(ids(&facts("solana", None, &[])), [1, 2, 3], "not required: everyone");
        let at = |now| SignalFacts {
            paid_after_ms: now,
            ..facts("solana", None, &[])
        };
        assert_eq!(ids(&at(999)), [2, 3], "2 is paid (or in trial) until 1000");
        assert_eq!(ids(&at(1_001)), [3], "then only the lifetime subscriber");
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

        let ids = |f: &SignalFacts| {
            let mut v = idx.matching(f).into_iter().map(|(u, _)| u).collect::<Vec<_>>();
            v.sort();
            v
        };
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
        let ids = |c: &str| {
            let mut v = idx.matching(&facts(c, None, &[])).into_iter().map(|(u, _)| u).collect::<Vec<_>>();
            v.sort();
            v
        };
        assert_eq!(ids("chain0"), vec![1]);
        assert_eq!(ids("chain65"), vec![66]);
        assert!(ids("chain99").is_empty());
    }

    #[test]
    fn fdv_buckets_find_exactly_the_users_whose_range_holds_the_fdv() {
        let mut idx = UserIndex::default();
        // narrow bands, a wide range, an open-ended minimum, and no FDV filter
        for band in 0..1000i64 {
            let (lo, hi) = (band as f64 * 1000.0, band as f64 * 1000.0 + 999.0);
            idx.upsert(user(
                band + 1,
                Filters {
                    min_fdv_usd: Some(lo),
                    max_fdv_usd: Some(hi),
                    ..Default::default()
                },
            ));
        }
        idx.upsert(user(
            5001,
            Filters {
                min_fdv_usd: Some(10.0),
                max_fdv_usd: Some(1e9),
                ..Default::default()
            },
        ));
        idx.upsert(user(
            5002,
            Filters {
                min_fdv_usd: Some(400_000.0),
                ..Default::default()
            },
        ));
        idx.upsert(user(5003, Filters::default()));
        fn ids(idx: &UserIndex, fdv: Option<f64>) -> Vec<i64> {
            let mut v: Vec<i64> = idx.matching(&facts("solana", fdv, &[])).into_iter().map(|(u, _)| u).collect();
            v.sort();
            v
        }
        assert_eq!(ids(&idx, Some(437_500.0)), vec![438, 5001, 5002, 5003]);
        assert_eq!(ids(&idx, Some(999.0)), vec![1, 5001, 5003]);
        assert_eq!(ids(&idx, Some(0.5)), vec![1, 5003], "band 0 starts at $0");
        assert_eq!(ids(&idx, None), vec![5003], "unknown FDV fails every FDV filter");
        // moving and removing users keeps the lists exact
        idx.upsert(user(
            438,
            Filters {
                min_fdv_usd: Some(1.0),
                max_fdv_usd: Some(2.0),
                ..Default::default()
            },
        ));
        idx.remove(5002);
        assert_eq!(ids(&idx, Some(437_500.0)), vec![5001, 5003]);
        assert_eq!(ids(&idx, Some(1.5)), vec![1, 438, 5003]);
    }
}
