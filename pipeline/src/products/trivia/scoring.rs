//! Points and leaderboards: pure functions, so the rules are checked against
//! hand-computed values.
//!
//! - A correct answer after `t` of `T` ms: `round(1000 · (1 − t/T/2))` points, so 1000
//!   for an instant answer and 500 at the buzzer (`t` is clamped to `0..=T`); a wrong
//!   answer or none: 0.
//! - Streak bonus: a correct answer that extends a streak of `k` correct answers earns
//!   `min(100 · k, 500)` more: +0 for the first, +100 for the second in a row, ... +500
//!   from the sixth on. A wrong answer or a miss ends the streak.
//! - Boards are per period, in UTC: the day (`d:2026-12-03`, rolling over at midnight),
//!   the ISO week (`w:2026-W49`, rolling over on Monday 00:00) and all time (`all`);
//!   each kept globally and per group.

/// Points for speed, 0 when wrong.
///
/// ```
/// use herald_pipeline::products::trivia::scoring::points;
/// assert_eq!(points(true, 0, 20_000), 1000);
/// assert_eq!(points(true, 5_000, 20_000), 875);
/// assert_eq!(points(true, 20_000, 20_000), 500);
/// assert_eq!(points(false, 1, 20_000), 0);
/// ```
pub fn points(correct: bool, elapsed_ms: u64, limit_ms: u64) -> u32 {
    if !correct || limit_ms == 0 {
        return 0;
    }
    let t = elapsed_ms.min(limit_ms);
    // round(1000 · (1 − t/T/2)) = round((2000·T − 1000·t) / (2·T)), in integers:
    // half-up rounding of a non-negative fraction n/d is (2n + d) / 2d
    let (n, d) = (2000 * limit_ms - 1000 * t, 2 * limit_ms);
    ((2 * n + d) / (2 * d)) as u32
}

/// The streak bonus of a correct answer that extends a streak of `before` correct
/// answers in a row: `min(100 · before, 500)`.
///
/// ```
/// use herald_pipeline::products::trivia::scoring::streak_bonus;
/// assert_eq!([0, 1, 2, 5, 9].map(streak_bonus), [0, 100, 200, 500, 500]);
/// ```
pub fn streak_bonus(before: u32) -> u32 {
    (100 * before).min(500)
}

/// The period tokens an answer at `at_ms` counts in: `["all", "d:<date>", "w:<iso week>"]`.
///
/// ```
/// use herald_pipeline::products::trivia::scoring::periods;
/// // Sunday 2026-12-06 23:59:59.999 UTC, then Monday 00:00
/// assert_eq!(periods(1_796_601_599_999), ["all", "d:2026-12-06", "w:2026-W49"]);
/// assert_eq!(periods(1_796_601_600_000), ["all", "d:2026-12-07", "w:2026-W50"]);
/// ```
pub fn periods(at_ms: u64) -> [String; 3] {
    let t = time::OffsetDateTime::from_unix_timestamp((at_ms / 1000) as i64).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let (year, week, _) = t.to_iso_week_date();
    [
        "all".into(),
        format!("d:{}-{:02}-{:02}", t.year(), t.month() as u8, t.day()),
        format!("w:{year}-W{week:02}"),
    ]
}

/// A period as `/top` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Day,
    Week,
    All,
}

impl Period {
    /// `day`/`today`/`daily`, `week`/`weekly`, `all`/`alltime`.
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "day" | "today" | "daily" | "d" => Some(Period::Day),
            "week" | "weekly" | "w" => Some(Period::Week),
            "all" | "alltime" | "all-time" | "ever" => Some(Period::All),
            _ => None,
        }
    }

    /// The token of this period at `now_ms` (one of [`periods`]).
    pub fn token(self, now_ms: u64) -> String {
        let [all, day, week] = periods(now_ms);
        match self {
            Period::Day => day,
            Period::Week => week,
            Period::All => all,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Period::Day => "today",
            Period::Week => "this week",
            Period::All => "all time",
        }
    }
}

/// A board: `global:<period>` or `group:<chat>:<period>`.
pub fn board(group: Option<i64>, period: &str) -> String {
    match group {
        Some(chat) => format!("group:{chat}:{period}"),
        None => format!("global:{period}"),
    }
}

/// Every board a ranked answer at `at_ms` adds to: the global ones, and the group's
/// when it was played in a group.
pub fn boards(group: Option<i64>, at_ms: u64) -> Vec<String> {
    let periods = periods(at_ms);
    let mut out: Vec<String> = periods.iter().map(|p| board(None, p)).collect();
    if let Some(g) = group {
        out.extend(periods.iter().map(|p| board(Some(g), p)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_against_hand_computed_values() {
        // T = 20 s: t = 0 -> 1000; 1 s -> 1000·(1 − 0.025) = 975; 7.5 s -> 812.5 -> 813
        // (half up); 10 s -> 750; 19.99 s -> 500.25 -> 500; late -> 500
        let cases = [(0, 1000), (1_000, 975), (7_500, 813), (10_000, 750), (19_990, 500), (25_000, 500)];
        for (t, want) in cases {
            assert_eq!(points(true, t, 20_000), want, "t = {t} ms");
        }
        // T = 15 s, t = 4 s: 1000·(1 − 4/30) = 866.67 -> 867
        assert_eq!(points(true, 4_000, 15_000), 867);
        assert_eq!(points(false, 0, 15_000), 0);
    }

    #[test]
    fn the_streak_bonus_grows_by_100_up_to_500() {
        let run: Vec<u32> = (0..8).map(streak_bonus).collect();
        assert_eq!(run, [0, 100, 200, 300, 400, 500, 500, 500]);
    }

    #[test]
    fn days_roll_over_at_utc_midnight_and_weeks_on_monday() {
        // 2026-12-31 (Thursday) 23:59:59 -> 2027-01-01 00:00: the day changes, the ISO
        // week (2026-W53) does not
        let before = periods(1_798_761_599_000);
        let after = periods(1_798_761_600_000);
        assert_eq!(before[1], "d:2026-12-31");
        assert_eq!(after[1], "d:2027-01-01");
        assert_eq!(before[2], after[2]);
        assert_eq!(after[2], "w:2026-W53");
        // Monday 2027-01-04 00:00 starts 2027-W01
        assert_eq!(periods(1_799_020_800_000)[2], "w:2027-W01");
        assert_eq!(periods(1_799_020_799_999)[2], "w:2026-W53");
    }

    #[test]
    fn group_answers_count_on_both_boards() {
        let b = boards(Some(-100), 1_796_601_600_000);
        assert_eq!(b.len(), 6);
        assert!(b.contains(&"group:-100:w:2026-W50".to_string()));
        assert!(b.contains(&"global:all".to_string()));
        assert_eq!(boards(None, 0).len(), 3);
    }
}
