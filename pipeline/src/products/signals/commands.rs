//! The signals commands (`/filters`, `/calls`, `/pause`, `/resume`) and the /filters
//! menu, as pure functions: (user, command) -> (new user record, reply).
//!
//! Filter edits are absolute ("set win rate to 60%", "add chain solana"), never toggles,
//! so a redelivered update applies the same change twice harmlessly.

use herald_schemas::{Button, Chain, Filters, SignalsPrefs};
use teloxide::utils::command::BotCommands;

use crate::core::reply::Reply;
use crate::products::signals::fanout::render::usd_compact;

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

/// `/filters ARGS` -> the edit, `None` when the arguments do not parse.
///
/// ```
/// use herald_pipeline::products::signals::commands::{parse_filter_args, FilterEdit};
/// assert_eq!(parse_filter_args("winrate 60"), Some(FilterEdit::MinWinRate(Some(0.6))));
/// assert_eq!(parse_filter_args("winrate abc"), None);
/// ```
pub fn parse_filter_args(args: &str) -> Option<FilterEdit> {
    parse_filter_words(args)
}

fn bound(s: &str) -> Option<Option<f64>> {
    match s.trim().to_ascii_lowercase().as_str() {
        "any" | "none" | "-" | "0" => Some(None),
        v => {
            let (num, mult) = match v.chars().last()? {
                'k' => (&v[..v.len() - 1], 1e3),
                'm' => (&v[..v.len() - 1], 1e6),
                'b' => (&v[..v.len() - 1], 1e9),
                _ => (v, 1.0),
            };
            num.trim_end_matches('%')
                .parse::<f64>()
                .ok()
                .filter(|n| n.is_finite() && *n >= 0.0)
                .map(|n| Some(n * mult))
        }
    }
}

fn parse_filter_words(args: &str) -> Option<FilterEdit> {
    let mut words = args.split_whitespace();
    let what = words.next()?.to_ascii_lowercase();
    let a = words.next();
    let b = words.next();
    Some(match what.as_str() {
        "winrate" | "wr" => FilterEdit::MinWinRate(bound(a?)?.map(|p| p / 100.0).filter(|p| *p <= 1.0).map(Some).unwrap_or(None)),
        "gain" | "avggain" => FilterEdit::MinAvgGain(bound(a?)?),
        "fdv" => FilterEdit::Fdv {
            min: bound(a?)?,
            max: b.map(bound).unwrap_or(Some(None))?,
        },
        "chains" | "chain" => {
            let list = a?;
            if list.eq_ignore_ascii_case("all") {
                FilterEdit::Chains(Vec::new())
            } else {
                FilterEdit::Chains(list.split(',').filter(|c| !c.is_empty()).map(Chain::from).collect())
            }
        }
        "reset" => FilterEdit::Reset,
        _ => return None,
    })
}

/// Parses inline-keyboard callback data (`f:wr:60`, `f:ch:+solana`, `f:reset`...).
pub fn parse_callback(data: &str) -> Option<FilterEdit> {
    let mut parts = data.splitn(3, ':');
    if parts.next()? != "f" {
        return None;
    }
    let what = parts.next()?;
    let value = parts.next().unwrap_or("");
    Some(match what {
        "wr" => FilterEdit::MinWinRate(bound(value)?.map(|p| p / 100.0)),
        "gain" => FilterEdit::MinAvgGain(bound(value)?),
        "minfdv" => FilterEdit::MinFdv(bound(value)?),
        "maxfdv" => FilterEdit::MaxFdv(bound(value)?),
        "ch" if value.starts_with('+') => FilterEdit::AddChain(Chain::from(&value[1..])),
        "ch" if value.starts_with('-') => FilterEdit::RemoveChain(Chain::from(&value[1..])),
        "reset" => FilterEdit::Reset,
        _ => return None,
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
pub fn run(current: &SignalsPrefs, cmd: SignalsCommand, now_ms: u64) -> (Option<SignalsPrefs>, Reply) {
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
        SignalsCommand::Filters(args) => match parse_filter_args(&args) {
            Some(edit) => {
                let new = changed(&|s| apply_edit(&mut s.filters, edit.clone()));
                let reply = menu(&new.as_ref().expect("changed always returns").filters);
                (new, reply)
            }
            None => (None, Reply::plain(format!("I did not understand that.\n\n{HELP}"))),
        },
        SignalsCommand::Calls(_) => (None, Reply::plain("Tracked calls are not available right now.")),
    }
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
    let b = |text: String, data: String| Button { text, callback_data: data };
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

    #[test]
    fn commands_parse_with_arguments() {
        assert_eq!(SignalsCommand::from_text("/pause"), Some(SignalsCommand::Pause));
        assert_eq!(SignalsCommand::from_text("hello"), None);
        assert_eq!(parse_filter_args("winrate 60"), Some(FilterEdit::MinWinRate(Some(0.6))));
        assert_eq!(
            parse_filter_args("fdv 10k any"),
            Some(FilterEdit::Fdv {
                min: Some(10_000.0),
                max: None
            })
        );
        assert_eq!(
            parse_filter_args("chains SOL,bnb"),
            Some(FilterEdit::Chains(vec![Chain::from("solana"), Chain::from("bsc")]))
        );
        assert_eq!(parse_filter_args("winrate abc"), None);
    }

    #[test]
    fn every_menu_button_round_trips_through_its_callback() {
        let f = Filters {
            chains: vec![Chain::from("solana")],
            ..Default::default()
        };
        for button in menu(&f).buttons.iter().flatten() {
            assert!(button.callback_data.len() <= 64, "Telegram limits callback data to 64 bytes");
            let edit = parse_callback(&button.callback_data).unwrap_or_else(|| panic!("{}", button.callback_data));
            let mut g = f.clone();
            apply_edit(&mut g, edit.clone());
            let mut h = g.clone();
            apply_edit(&mut h, edit);
            assert_eq!(g, h, "edits are idempotent: {}", button.callback_data);
        }
        let mut g = f.clone();
        apply_edit(&mut g, parse_callback("f:wr:60").unwrap());
        assert_eq!(g.min_win_rate, Some(0.6));
        apply_edit(&mut g, parse_callback("f:ch:-solana").unwrap());
        assert!(g.chains.is_empty());
    }

    #[test]
    fn pause_resume_lifecycle() {
        let s = SignalsPrefs::new(7);
        assert!(!s.paused);
        let (p, r) = run(&s, SignalsCommand::Pause, 2);
        let p = p.unwrap();
        assert!(p.paused);
        assert!(r.text.contains("Paused"));
        let (q, _) = run(&p, SignalsCommand::Resume, 3);
        assert!(!q.unwrap().paused);
        let (none, r) = run(&s, SignalsCommand::Filters("winrate abc".into()), 4);
        assert!(none.is_none() && r.text.contains("did not understand"));
    }
}
