//! The in-memory user index the fan-out scans: a compact copy of every receiving user's
//! filter, in candidate lists by FDV range, so one signal against 100,000 users tests
//! only the users whose FDV range can hold it (plus those without an FDV filter).

use std::collections::HashMap;

use herald_schemas::{subjects, Access, Chain, ChannelStats, SignalsPrefs, User};

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

/// What the fan-out knows of one user, from the buckets it replicates: the core record,
/// signals' preferences (defaults when absent) and paid access.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserView {
    pub user: Option<User>,
    pub prefs: Option<SignalsPrefs>,
    pub access: Option<Access>,
}

impl UserView {
    /// Reachable and not paused: the user receives signals (paid access is the
    /// signal's test, see [`SignalFacts::paid_after_ms`]).
    pub fn receives_signals(&self) -> bool {
        self.user.as_ref().is_some_and(User::reachable) && !self.prefs.as_ref().is_some_and(|p| p.paused)
    }
}

impl Compact {
    fn from_view(user: &User, v: &UserView, bits: &mut ChainBits) -> Self {
        let default = herald_schemas::Filters::default();
        let f = v.prefs.as_ref().map_or(&default, |p| &p.filters);
        Compact {
            user_id: user.user_id,
            chat_id: user.chat_id,
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
            paid_until_ms: v.access.as_ref().and_then(|a| a.paid_until_ms).unwrap_or(0),
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

/// Every user's view, plus the compact filters of those who receive signals, kept
/// in candidate lists by FDV range so a signal only tests users whose range can hold
/// its FDV (an interval index with log-scale buckets). Updates are O(bucket size).
#[derive(Debug)]
pub struct UserIndex {
    views: HashMap<i64, UserView>,
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
            views: HashMap::new(),
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
    /// Inserts or replaces a user's core record.
    pub fn upsert_user(&mut self, user: User) {
        let id = user.user_id;
        self.views.entry(id).or_default().user = Some(user);
        self.refresh(id);
    }

    /// Inserts or replaces a user's signals preferences.
    pub fn upsert_prefs(&mut self, prefs: SignalsPrefs) {
        let id = prefs.user_id;
        self.views.entry(id).or_default().prefs = Some(prefs);
        self.refresh(id);
    }

    /// Inserts or replaces a user's paid access.
    pub fn upsert_access(&mut self, access: Access) {
        let id = access.user_id;
        self.views.entry(id).or_default().access = Some(access);
        self.refresh(id);
    }

    /// A user with all three parts at once (tests, benchmarks).
    pub fn upsert(&mut self, user: User, prefs: SignalsPrefs, access: Option<Access>) {
        let id = user.user_id;
        self.views.insert(
            id,
            UserView {
                user: Some(user),
                prefs: Some(prefs),
                access,
            },
        );
        self.refresh(id);
    }

    /// Removes a user (the core record deleted).
    pub fn remove(&mut self, user_id: i64) {
        self.remove_compact(user_id);
        self.views.remove(&user_id);
    }

    /// Rebuilds the compact filter of `user_id` from its view.
    fn refresh(&mut self, user_id: i64) {
        self.remove_compact(user_id);
        let Some(view) = self.views.get(&user_id) else { return };
        let Some(user) = view.user.as_ref().filter(|_| view.receives_signals()) else {
            return;
        };
        let c = Compact::from_view(user, view, &mut self.bits);
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
        self.slot_of.insert(user_id, slot);
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

    pub fn get(&self, user_id: i64) -> Option<&UserView> {
        self.views.get(&user_id)
    }

    /// Users known (with a core record), receiving or not.
    pub fn len(&self) -> usize {
        self.views.values().filter(|v| v.user.is_some()).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
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
        match (self.views.get(&user_id).and_then(|v| v.prefs.as_ref()), &facts.chain) {
            (Some(p), Some(chain)) => p.filters.chains.contains(chain),
            _ => false,
        }
    }
}

/// The buckets [`UserIndex`] replicates: core users, signals preferences, paid access.
pub const USER_BUCKETS: [&str; 3] = [subjects::USERS_BUCKET, subjects::SIGNALS_USERS_BUCKET, subjects::ACCESS_BUCKET];

impl ReplicaSink for UserIndex {
    fn put(&mut self, bucket: &str, key: &str, value: &[u8]) {
        let decoded = match bucket {
            subjects::USERS_BUCKET => herald_schemas::decode::<User>(value).map(|u| self.upsert_user(u)),
            subjects::SIGNALS_USERS_BUCKET => herald_schemas::decode::<SignalsPrefs>(value).map(|p| self.upsert_prefs(p)),
            subjects::ACCESS_BUCKET => herald_schemas::decode::<Access>(value).map(|a| self.upsert_access(a)),
            _ => Ok(()),
        };
        if let Err(e) = decoded {
            tracing::warn!(bucket, key, error = %e, "skipping an undecodable user record");
        }
    }
    fn delete(&mut self, bucket: &str, key: &str) {
        let Ok(id) = key.parse::<i64>() else { return };
        match bucket {
            subjects::USERS_BUCKET => self.remove(id),
            subjects::SIGNALS_USERS_BUCKET => {
                if let Some(v) = self.views.get_mut(&id) {
                    v.prefs = None;
                }
                self.refresh(id);
            }
            subjects::ACCESS_BUCKET => {
                if let Some(v) = self.views.get_mut(&id) {
                    v.access = None;
                }
                self.refresh(id);
            }
            _ => {}
        }
    }
}

/// Channel statistics by caller id.
#[derive(Debug, Default)]
pub struct ChannelIndex(pub HashMap<String, ChannelStats>);

impl ReplicaSink for ChannelIndex {
    fn put(&mut self, _bucket: &str, key: &str, value: &[u8]) {
        match herald_schemas::decode::<ChannelStats>(value) {
            Ok(s) => {
                self.0.insert(key.to_string(), s);
            }
            Err(e) => tracing::warn!(key, error = %e, "skipping undecodable channel stats"),
        }
    }
    fn delete(&mut self, _bucket: &str, key: &str) {
        self.0.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_schemas::Filters;

    fn user(id: i64, f: Filters) -> (User, SignalsPrefs) {
        let prefs = SignalsPrefs {
            filters: f,
            ..SignalsPrefs::new(id)
        };
        (User::new(id, id * 10, 0), prefs)
    }

    fn add(idx: &mut UserIndex, (user, prefs): (User, SignalsPrefs)) {
        idx.upsert(user, prefs, None);
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
        for (id, paid) in [(1, None), (2, Some(1_000)), (3, Some(u64::MAX))] {
            let access = Access {
                paid_until_ms: paid,
                ..Access::none(id)
            };
            idx.upsert(User::new(id, id, 0), SignalsPrefs::new(id), Some(access));
        }
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
        add(&mut idx, user(1, Filters::default()));
        add(&mut idx, user(
            2,
            Filters {
                chains: vec![Chain::from("bsc")],
                ..Default::default()
            },
        ));
        add(&mut idx, user(
            3,
            Filters {
                min_fdv_usd: Some(50_000.0),
                max_fdv_usd: Some(300_000.0),
                ..Default::default()
            },
        ));
        add(&mut idx, user(
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
            add(&mut idx, user(id, Filters::default()));
        }
        idx.upsert_prefs(SignalsPrefs {
            paused: true,
            ..SignalsPrefs::new(1)
        });
        idx.upsert_user(User {
            active: false,
            ..User::new(2, 20, 0)
        });
        idx.remove(3);
        let mut got: Vec<i64> = idx.matching(&facts("solana", None, &[])).into_iter().map(|(u, _)| u).collect();
        got.sort();
        assert_eq!(got, vec![4]);
        assert_eq!(idx.len(), 3);
        add(&mut idx, user(1, Filters::default()));
        assert_eq!(idx.matching(&facts("solana", None, &[])).len(), 2);
    }

    #[test]
    fn chains_past_the_64th_are_checked_exactly() {
        let mut idx = UserIndex::default();
        for i in 0..70 {
            add(&mut idx, user(
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
            add(&mut idx, user(
                band + 1,
                Filters {
                    min_fdv_usd: Some(lo),
                    max_fdv_usd: Some(hi),
                    ..Default::default()
                },
            ));
        }
        add(&mut idx, user(
            5001,
            Filters {
                min_fdv_usd: Some(10.0),
                max_fdv_usd: Some(1e9),
                ..Default::default()
            },
        ));
        add(&mut idx, user(
            5002,
            Filters {
                min_fdv_usd: Some(400_000.0),
                ..Default::default()
            },
        ));
        add(&mut idx, user(5003, Filters::default()));
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
        add(&mut idx, user(
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
