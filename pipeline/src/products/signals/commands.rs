//! The signals commands (`/filters`, `/calls`, `/pause`, `/resume`) and the /filters
//! menu, as pure functions: (user, command) -> (new user record, reply).
//!
//! Filter edits are absolute ("set win rate to 60%", "add chain solana"), never toggles,
//! so a redelivered update applies the same change twice harmlessly.

use herald_schemas::checks::ChainList;
use herald_schemas::{escape_html, Button, Chain, Filters, SignalsPrefs};
use teloxide::utils::command::BotCommands;

use crate::core::reply::Reply;
use super::fanout::render::usd_compact;

/// The commands the router hands to signals.
#[derive(BotCommands, Debug, Clone, PartialEq)]
#[command(rename_rule = "lowercase")]
pub enum SignalsCommand {
    // `/filters` alone shows the menu; with arguments it edits (see [`HELP`]).
    #[command(description = "view and change your filters")]
    Filters(String),
    // `/calls [page]`, pages from 1.
    #[command(description = "your tracked calls: entry price, current and best multiple")]
    Calls(String),
    #[command(description = "stop notifications")]
    Pause,
    #[command(description = "start them again")]
    Resume,
}

impl SignalsCommand {
    /// Parses a routed command's text (`/filters winrate 60`).
    ///
    /// ```
    /// use herald_pipeline::products::signals::commands::SignalsCommand;
    /// assert_eq!(SignalsCommand::from_text("/calls 2"), Some(SignalsCommand::Calls("2".into())));
    /// assert_eq!(SignalsCommand::from_text("/start"), None);
    /// ```
    pub fn from_text(text: &str) -> Option<Self> {
        <Self as BotCommands>::parse(text, "").ok()
    }

    /// Parses a routed command, saying what is wrong for the user (HTML-escaped): a
    /// command signals does not have, or `/calls` with something other than a page
    /// number. (Commands without arguments ignore extra words, as teloxide parses them.)
    ///
    /// ```
    /// use herald_pipeline::products::signals::commands::SignalsCommand;
    /// assert!(SignalsCommand::parse_for_user("/calls two").unwrap_err().contains("page number"));
    /// assert!(SignalsCommand::parse_for_user("/calls 0").is_err());
    /// assert_eq!(SignalsCommand::parse_for_user("/calls 2"), Ok(SignalsCommand::Calls("2".into())));
    /// assert!(SignalsCommand::parse_for_user("/nosuch").unwrap_err().contains("/nosuch"));
    /// ```
    pub fn parse_for_user(text: &str) -> Result<Self, String> {
        let name = text.split_whitespace().next().unwrap_or_default();
        let cmd = <Self as BotCommands>::parse(text, "")
            .map_err(|e| format!("{}: {}. /help lists what I understand.", escape_html(name), escape_html(&e.to_string())))?;
        if let SignalsCommand::Calls(page) = &cmd {
            let page = page.trim();
            if !page.is_empty() && !page.parse::<usize>().is_ok_and(|p| p >= 1) {
                return Err("Give a page number from 1, e.g. <code>/calls 2</code>.".into());
            }
        }
        Ok(cmd)
    }
}

/// One change to a user's filters.
#[derive(Debug, Clone, PartialEq)]
pub enum FilterEdit {
    MinWinRate(Option<f64>),
    MinAvgGain(Option<f64>),
    Fdv {
        min: Option<f64>,
        max: Option<f64>,
    },
    MinFdv(Option<f64>),
    MaxFdv(Option<f64>),
    AddChain(Chain),
    RemoveChain(Chain),
    /// Replace the chain list (empty = all chains).
    Chains(Vec<Chain>),
    Reset,
}

/// Chains offered as buttons in the menu.
pub const MENU_CHAINS: [&str; 4] = ["solana", "ethereum", "bsc", "base"];

/// `/help`'s notes on `/filters`' arguments.
pub const HELP: &str = "/filters winrate 60 — callers with at least 60% wins\n\
/filters gain 100 — callers averaging at least +100%\n\
/filters fdv 10000 1000000 — FDV between $10K and $1M (<code>any</code> for no bound)\n\
/filters chains solana,bsc — only these chains (<code>all</code> for every chain)\n\
/filters reset — no filters";

/// Highest average-gain filter, percent (a 1000x average).
pub const MAX_GAIN_PCT: f64 = 100_000.0;
/// Highest FDV bound, USD (see [`herald_schemas::checks::MAX_FDV_USD`]).
pub const MAX_FDV: f64 = herald_schemas::checks::MAX_FDV_USD;

/// `/filters ARGS` -> the edit.
///
/// Errors: what is wrong, in words for the user (HTML-escaped): an unknown setting, a
/// value that is not a number, out of range (win rate 0–100, gain 0–100,000, FDV up to
/// 1e15), an FDV minimum above its maximum, or a chain not in `chains`.
///
/// ```
/// use herald_pipeline::products::signals::commands::{parse_filter_args, FilterEdit};
/// use herald_schemas::checks::ChainList;
/// let chains = ChainList::default();
/// assert_eq!(parse_filter_args("winrate 60", &chains), Ok(FilterEdit::MinWinRate(Some(0.6))));
/// assert!(parse_filter_args("winrate 1000", &chains).unwrap_err().contains("between 0 and 100"));
/// assert!(parse_filter_args("fdv 1m 10k", &chains).unwrap_err().contains("above the maximum"));
/// ```
pub fn parse_filter_args(args: &str, chains: &ChainList) -> Result<FilterEdit, String> {
    let mut words = args.split_whitespace();
    let what = words.next().unwrap_or_default().to_ascii_lowercase();
    let a = words.next();
    let b = words.next();
    Ok(match what.as_str() {
        "winrate" | "wr" => FilterEdit::MinWinRate(win_rate(need(a, "winrate")?)?),
        "gain" | "avggain" => FilterEdit::MinAvgGain(gain(need(a, "gain")?)?),
        "fdv" => {
            let min = fdv(need(a, "fdv")?)?;
            let max = b.map(fdv).transpose()?.flatten();
            check_fdv_range(min, max)?;
            FilterEdit::Fdv { min, max }
        }
        "chains" | "chain" => {
            let list: Vec<&str> = args.split_whitespace().skip(1).collect();
            let list = list.join("");
            if list.is_empty() {
                return Err(format!("Name the chains, e.g. <code>/filters chains solana,bsc</code>. Known: {}.", chains.names().join(", ")));
            }
            if list.eq_ignore_ascii_case("all") {
                FilterEdit::Chains(Vec::new())
            } else {
                let parsed: Result<Vec<Chain>, String> =
                    list.split(',').filter(|c| !c.is_empty()).map(|c| chains.parse(c).map_err(|e| escape_html(&e))).collect();
                FilterEdit::Chains(parsed?)
            }
        }
        "reset" => FilterEdit::Reset,
        other => {
            let shown: String = other.chars().take(32).collect();
            return Err(format!("There is no filter called \"{}\".", escape_html(&shown)));
        }
    })
}

/// The value a setting needs, or how to give it.
fn need<'a>(v: Option<&'a str>, what: &str) -> Result<&'a str, String> {
    v.ok_or_else(|| format!("Give a value for {what}, e.g. <code>/filters {what} 60</code>."))
}

/// A bound: `any`/`none`/`-`/`0` for no bound, else a number with an optional `k`, `m`,
/// `b` (thousand, million, billion) or `%`.
fn bound(s: &str) -> Result<Option<f64>, String> {
    let v = s.trim().to_ascii_lowercase();
    if matches!(v.as_str(), "any" | "none" | "-" | "0") {
        return Ok(None);
    }
    let (num, mult) = match v.chars().last() {
        Some('k') => (&v[..v.len() - 1], 1e3),
        Some('m') => (&v[..v.len() - 1], 1e6),
        Some('b') => (&v[..v.len() - 1], 1e9),
        _ => (v.as_str(), 1.0),
    };
    let shown: String = s.chars().take(32).collect();
    num.trim_end_matches('%')
        .parse::<f64>()
        .ok()
        .filter(|n| n.is_finite() && *n >= 0.0)
        .map(|n| Some(n * mult))
        .ok_or_else(|| format!("\"{}\" is not a number (try 60, 10k or 1m, or <code>any</code>).", escape_html(&shown)))
}

fn in_range(v: Option<f64>, max: f64, what: &str, unit: &str) -> Result<Option<f64>, String> {
    match v {
        Some(n) if n > max => Err(format!("{what} must be between 0 and {max}{unit}, not {n}.")),
        v => Ok(v),
    }
}

/// A win-rate filter in percent (0–100), stored as a share.
fn win_rate(s: &str) -> Result<Option<f64>, String> {
    Ok(in_range(bound(s)?, 100.0, "Win rate", " (percent)")?.map(|p| p / 100.0))
}

fn gain(s: &str) -> Result<Option<f64>, String> {
    in_range(bound(s)?, MAX_GAIN_PCT, "Average gain", " (percent)")
}

fn fdv(s: &str) -> Result<Option<f64>, String> {
    in_range(bound(s)?, MAX_FDV, "FDV", " USD")
}

/// Errors: both bounds set and the minimum above the maximum.
fn check_fdv_range(min: Option<f64>, max: Option<f64>) -> Result<(), String> {
    match (min, max) {
        (Some(lo), Some(hi)) if lo > hi => Err(format!(
            "That FDV range is empty: the minimum {} is above the maximum {}.",
            usd_compact(lo),
            usd_compact(hi)
        )),
        _ => Ok(()),
    }
}

/// The filters after `edit`, checked as a whole (an FDV minimum from one button above
/// the maximum from another is refused).
///
/// Errors: the reason, for the user.
pub fn edited(f: &Filters, edit: FilterEdit) -> Result<Filters, String> {
    let mut g = f.clone();
    apply_edit(&mut g, edit);
    check_fdv_range(g.min_fdv_usd, g.max_fdv_usd)?;
    Ok(g)
}

/// Parses inline-keyboard callback data (`f:wr:60`, `f:ch:+solana`, `f:reset`...):
/// `None` when it is not a filter button, `Some(Err)` when it is one with a value no
/// menu offers (forged or stale data), checked like typed arguments.
pub fn parse_callback(data: &str, chains: &ChainList) -> Option<Result<FilterEdit, String>> {
    let rest = data.strip_prefix("f:")?;
    let (what, value) = rest.split_once(':').unwrap_or((rest, ""));
    let chain = |v: &str| chains.parse(v).map_err(|e| escape_html(&e));
    Some(match what {
        "wr" => win_rate(value).map(FilterEdit::MinWinRate),
        "gain" => gain(value).map(FilterEdit::MinAvgGain),
        "minfdv" => fdv(value).map(FilterEdit::MinFdv),
        "maxfdv" => fdv(value).map(FilterEdit::MaxFdv),
        "ch" if value.starts_with('+') => chain(&value[1..]).map(FilterEdit::AddChain),
        "ch" if value.starts_with('-') => chain(&value[1..]).map(FilterEdit::RemoveChain),
        "reset" => Ok(FilterEdit::Reset),
        _ => Err("That button is no longer valid: here are your filters.".into()),
    })
}

/// Applies an edit to filters.
pub fn apply_edit(f: &mut Filters, edit: FilterEdit) {
    match edit {
        FilterEdit::MinWinRate(v) => f.min_win_rate = v,
        FilterEdit::MinAvgGain(v) => f.min_avg_gain_pct = v,
        FilterEdit::Fdv { min, max } => (f.min_fdv_usd, f.max_fdv_usd) = (min, max),
        FilterEdit::MinFdv(v) => f.min_fdv_usd = v,
        FilterEdit::MaxFdv(v) => f.max_fdv_usd = v,
        FilterEdit::AddChain(c) => {
            if !f.chains.contains(&c) {
                f.chains.push(c);
                f.chains.sort();
            }
        }
        FilterEdit::RemoveChain(c) => f.chains.retain(|x| *x != c),
        FilterEdit::Chains(mut cs) => {
            cs.sort();
            cs.dedup();
            f.chains = cs;
        }
        FilterEdit::Reset => *f = Filters::default(),
    }
}

/// Answers `/filters`, `/pause` and `/resume` for a known user: the preferences to
/// store (`None`: unchanged) and the reply. `/calls` is answered with the tracker.
pub fn run(current: &SignalsPrefs, cmd: SignalsCommand, now_ms: u64, chains: &ChainList) -> (Option<SignalsPrefs>, Reply) {
    let changed = |f: &dyn Fn(&mut SignalsPrefs)| {
        let mut s = current.clone();
        f(&mut s);
        s.updated_at_ms = now_ms;
        Some(s)
    };
    match cmd {
        SignalsCommand::Pause => (changed(&|s| s.paused = true), Reply::plain("Paused. /resume to receive calls again.")),
        SignalsCommand::Resume => (changed(&|s| s.paused = false), Reply::plain("Resumed: calls are on.")),
        SignalsCommand::Filters(args) if args.trim().is_empty() => (None, menu(&current.filters)),
        SignalsCommand::Filters(args) => match parse_filter_args(&args, chains).and_then(|e| edited(&current.filters, e)) {
            Ok(filters) => {
                let reply = menu(&filters);
                // one's own change: the filters are a copy now, not a preset's
                (
                    changed(&|s| {
                        s.filters = filters.clone();
                        s.preset = None;
                    }),
                    reply,
                )
            }
            Err(why) => (None, Reply::plain(format!("{why}\n\n{HELP}"))),
        },
        SignalsCommand::Calls(_) => (None, Reply::plain("Tracked calls are not available right now.")),
    }
}

/// Presets shown on one row of the menu, and at most this many rows.
const PRESETS_PER_ROW: usize = 2;
const PRESET_ROWS: usize = 4;

/// The /filters view with the presets: a line naming the preset followed (if any), and
/// a button per preset (`f:p:<name>`, ✅ on the one followed) above the settings.
pub fn with_presets(menu: Reply, presets: &[super::presets::Preset], following: Option<&str>) -> Reply {
    let mut text = menu.text;
    if let Some(p) = following.and_then(|f| presets.iter().find(|p| p.name == f)) {
        text.push_str(&format!(
            "\n📌 Following preset <b>{}</b>: {}. Changing a filter makes them your own copy.",
            escape_html(&p.name),
            escape_html(&p.description)
        ));
    } else if !presets.is_empty() {
        text.push_str("\n📌 Presets: one press follows one (its later updates reach you).");
    }
    let rows: Vec<Vec<Button>> = presets
        .chunks(PRESETS_PER_ROW)
        .take(PRESET_ROWS)
        .map(|chunk| {
            chunk
                .iter()
                .map(|p| {
                    let on = following == Some(p.name.as_str());
                    Button {
                        text: format!("{}📌 {}", if on { "✅ " } else { "" }, p.name),
                        callback_data: format!("f:p:{}", p.name),
                        url: None,
                    }
                })
                .collect()
        })
        .collect();
    Reply {
        text,
        buttons: rows.into_iter().chain(menu.buttons).collect(),
        photo: menu.photo,
    }
}

/// The preset a button follows (`f:p:<name>`), if it is one.
pub fn preset_callback(data: &str) -> Option<&str> {
    data.strip_prefix("f:p:")
}

/// The /filters view: a summary and an inline keyboard of absolute settings.
pub fn menu(f: &Filters) -> Reply {
    let pct = |v: Option<f64>, scale: f64| v.map(|v| format!("{:.0}%", v * scale)).unwrap_or_else(|| "any".into());
    let usd = |v: Option<f64>| v.map(usd_compact).unwrap_or_else(|| "any".into());
    let chains = if f.chains.is_empty() {
        "all".to_string()
    } else {
        f.chains.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(", ")
    };
    let text = format!(
        "<b>Your filters</b>\nMin caller win rate: {}\nMin caller avg gain: +{}\nFDV: {} – {}\nChains: {chains}",
        pct(f.min_win_rate, 100.0),
        pct(f.min_avg_gain_pct, 1.0),
        usd(f.min_fdv_usd),
        usd(f.max_fdv_usd)
    );
    let b = |text: String, data: String| Button { text, callback_data: data, url: None };
    let mark = |on: bool, label: &str| {
        if on {
            format!("✅ {label}")
        } else {
            label.to_string()
        }
    };
    let row = |prefix: &str, field: &str, current: Option<f64>, choices: &[(Option<f64>, &str)]| {
        choices
            .iter()
            .map(|(v, label)| {
                let data = format!("f:{field}:{}", v.map(|v| v.to_string()).unwrap_or_else(|| "any".into()));
                b(mark(current == *v, &format!("{prefix}{label}")), data)
            })
            .collect::<Vec<_>>()
    };
    let wr = f.min_win_rate.map(|v| (v * 100.0).round());
    let buttons = vec![
        row(
            "WR ",
            "wr",
            wr,
            &[(None, "any"), (Some(40.0), "40%"), (Some(60.0), "60%"), (Some(80.0), "80%")],
        ),
        row(
            "Gain ",
            "gain",
            f.min_avg_gain_pct,
            &[(None, "any"), (Some(50.0), "+50%"), (Some(100.0), "+100%"), (Some(300.0), "+300%")],
        ),
        row(
            "FDV≥",
            "minfdv",
            f.min_fdv_usd,
            &[
                (None, "any"),
                (Some(10_000.0), "10K"),
                (Some(100_000.0), "100K"),
                (Some(1_000_000.0), "1M"),
            ],
        ),
        row(
            "FDV≤",
            "maxfdv",
            f.max_fdv_usd,
            &[
                (None, "any"),
                (Some(100_000.0), "100K"),
                (Some(1_000_000.0), "1M"),
                (Some(10_000_000.0), "10M"),
            ],
        ),
        MENU_CHAINS
            .iter()
            .map(|c| {
                let on = f.chains.iter().any(|x| x.as_str() == *c);
                b(mark(on, c), format!("f:ch:{}{c}", if on { '-' } else { '+' }))
            })
            .collect(),
        vec![b("Reset all".into(), "f:reset".into())],
    ];
    Reply::with_buttons(text, buttons)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chains() -> ChainList {
        ChainList::default()
    }

    #[test]
    fn commands_parse_with_arguments() {
        let c = chains();
        assert_eq!(SignalsCommand::from_text("/pause"), Some(SignalsCommand::Pause));
        assert_eq!(SignalsCommand::from_text("hello"), None);
        assert_eq!(parse_filter_args("winrate 60", &c), Ok(FilterEdit::MinWinRate(Some(0.6))));
        assert_eq!(
            parse_filter_args("fdv 10k any", &c),
            Ok(FilterEdit::Fdv {
                min: Some(10_000.0),
                max: None
            })
        );
        assert_eq!(
            parse_filter_args("chains SOL, bnb", &c),
            Ok(FilterEdit::Chains(vec![Chain::from("solana"), Chain::from("bsc")]))
        );
        assert!(parse_filter_args("winrate abc", &c).unwrap_err().contains("not a number"));
    }

    #[test]
    fn bad_values_are_refused_with_a_reason() {
        let c = chains();
        let why = |args: &str| parse_filter_args(args, &c).unwrap_err();
        assert!(why("winrate 1000").contains("between 0 and 100"), "{}", why("winrate 1000"));
        assert!(why("fdv 1m 10k").contains("minimum $1M is above the maximum $10K"), "{}", why("fdv 1m 10k"));
        assert!(why("gain 1e9").contains("Average gain"));
        assert!(why("fdv 1e300").contains("FDV must be"));
        let script = why("chains <script>alert(1)</script>");
        assert!(script.contains("unknown chain") && !script.contains("<script>"), "{script}");
        assert!(why("colour red").contains("no filter called"));
        assert!(why("winrate").contains("Give a value"));
        // forged or stale callback data
        for forged in ["f:wr:99999", "f:gain:-5", "f:minfdv:1e400", "f:ch:+a.b", "f:zz:1"] {
            assert!(matches!(parse_callback(forged, &c), Some(Err(_))), "{forged}");
        }
        assert_eq!(parse_callback("c:2", &c), None);
        let f = Filters {
            max_fdv_usd: Some(100_000.0),
            ..Default::default()
        };
        let edit = parse_callback("f:minfdv:1000000", &c).unwrap().unwrap();
        assert!(edited(&f, edit).unwrap_err().contains("range is empty"));
    }

    #[test]
    fn every_menu_button_round_trips_through_its_callback() {
        let c = chains();
        let f = Filters {
            chains: vec![Chain::from("solana")],
            ..Default::default()
        };
        for button in menu(&f).buttons.iter().flatten() {
            assert!(button.callback_data.len() <= 64, "Telegram limits callback data to 64 bytes");
            let edit = parse_callback(&button.callback_data, &c)
                .unwrap_or_else(|| panic!("{}", button.callback_data))
                .unwrap();
            let mut g = f.clone();
            apply_edit(&mut g, edit.clone());
            let mut h = g.clone();
            apply_edit(&mut h, edit);
            assert_eq!(g, h, "edits are idempotent: {}", button.callback_data);
        }
        let mut g = f.clone();
        apply_edit(&mut g, parse_callback("f:wr:60", &c).unwrap().unwrap());
        assert_eq!(g.min_win_rate, Some(0.6));
        apply_edit(&mut g, parse_callback("f:ch:-solana", &c).unwrap().unwrap());
        assert!(g.chains.is_empty());
    }

    proptest::proptest! {
        /// Typed settings round-trip: what `/filters` stores is what the menu shows and
        /// what its buttons would set again; out-of-range values are refused, never
        /// stored.
        #[test]
        fn filter_settings_round_trip(wr in 0u32..=150, gain in 0u64..=200_000, lo in 0u64..=2_000_000, hi in 0u64..=2_000_000) {
            let c = ChainList::default();
            let f = Filters::default();
            match parse_filter_args(&format!("winrate {wr}"), &c) {
                Ok(edit) => {
                    proptest::prop_assert!(wr <= 100);
                    let g = edited(&f, edit).unwrap();
                    proptest::prop_assert_eq!(g.min_win_rate, (wr > 0).then(|| wr as f64 / 100.0));
                    let again = parse_callback(&format!("f:wr:{wr}"), &c).unwrap().unwrap();
                    proptest::prop_assert_eq!(edited(&f, again).unwrap(), g);
                }
                Err(why) => proptest::prop_assert!(wr > 100 && why.contains("between 0 and 100")),
            }
            let g = parse_filter_args(&format!("gain {gain}"), &c);
            proptest::prop_assert_eq!(g.is_ok(), gain as f64 <= MAX_GAIN_PCT);
            match parse_filter_args(&format!("fdv {lo} {hi}"), &c).and_then(|e| edited(&f, e)) {
                Ok(g) => {
                    let (min, max) = ((lo > 0).then_some(lo as f64), (hi > 0).then_some(hi as f64));
                    proptest::prop_assert_eq!((g.min_fdv_usd, g.max_fdv_usd), (min, max));
                    proptest::prop_assert!(lo == 0 || hi == 0 || lo <= hi);
                }
                Err(why) => proptest::prop_assert!(lo > hi && hi > 0 && why.contains("range is empty"), "{}", why),
            }
        }

        /// Any text as `/filters` arguments or callback data: never a panic, and what is
        /// accepted is in range.
        #[test]
        fn any_filter_input_is_refused_or_in_range(text in "\\PC{0,40}") {
            let c = ChainList::default();
            for edit in [parse_filter_args(&text, &c).ok(), parse_callback(&text, &c).and_then(Result::ok)].into_iter().flatten() {
                if let Ok(g) = edited(&Filters::default(), edit) {
                    proptest::prop_assert!(g.min_win_rate.is_none_or(|w| (0.0..=1.0).contains(&w)));
                    proptest::prop_assert!(g.min_avg_gain_pct.is_none_or(|v| v <= MAX_GAIN_PCT));
                    proptest::prop_assert!(g.chains.iter().all(|ch| c.parse(ch.as_str()).is_ok()));
                }
            }
        }
    }

    #[test]
    fn pause_resume_lifecycle() {
        let c = chains();
        let s = SignalsPrefs::new(7);
        assert!(!s.paused);
        let (p, r) = run(&s, SignalsCommand::Pause, 2, &c);
        let p = p.unwrap();
        assert!(p.paused);
        assert!(r.text.contains("Paused"));
        let (q, _) = run(&p, SignalsCommand::Resume, 3, &c);
        assert!(!q.unwrap().paused);
        let (none, r) = run(&s, SignalsCommand::Filters("winrate abc".into()), 4, &c);
        assert!(none.is_none() && r.text.contains("not a number"));
        let (none, r) = run(&s, SignalsCommand::Filters("winrate 1000".into()), 4, &c);
        assert!(none.is_none() && r.text.contains("between 0 and 100"));
    }
}
