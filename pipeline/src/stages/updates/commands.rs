//! Bot commands and the /filters menu, as pure functions: (settings, command) ->
//! (new settings, reply).
//!
//! Filter edits are absolute ("set win rate to 60%", "add chain solana"), never toggles,
//! so a redelivered update applies the same change twice harmlessly.

use herald_schemas::{Button, Chain, Filters, UserSettings};

use crate::stages::fanout::render::usd_compact;

/// A parsed command.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Start,
    Help,
    /// `/filters` alone shows the menu; with arguments it edits.
    Filters(Option<FilterEdit>),
    Pause,
    Resume,
    /// `/calls [page]`: tracked calls, page from 1 (0-based here).
    Calls(usize),
    /// `/deposit`: the user's deposit address.
    Deposit,
    /// `/balance`: balance and history.
    Balance,
    /// `/subscribe [tier [coupon]]`: the tiers, or buy one.
    Subscribe(Option<String>),
    /// `/admin ...` (admins only).
    Admin(String),
    Unknown(String),
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

pub const HELP: &str = "<b>Herald</b> sends you new token calls that pass your filters, once per token.\n\n\
/filters — view and change your filters\n\
/filters winrate 60 — callers with at least 60% wins\n\
/filters gain 100 — callers averaging at least +100%\n\
/filters fdv 10000 1000000 — FDV between $10K and $1M (<code>any</code> for no bound)\n\
/filters chains solana,bsc — only these chains (<code>all</code> for every chain)\n\
/filters reset — no filters\n\
/calls — your tracked calls: entry price, current and best multiple\n\
/pause — stop notifications\n\
/resume — start them again\n\
/help — this message";

/// The payments commands, in `/help` when deposits are on.
pub const PAYMENTS_HELP: &str = "\n\n/deposit — your BEP-20 deposit address and the tokens it takes\n\
/balance — your balance and its history\n\
/subscribe — subscription tiers, paid from your balance (<code>/subscribe weekly CODE</code> with a coupon)";

/// `/help`'s text: [`HELP`], plus [`PAYMENTS_HELP`] when deposits are on.
///
/// ```
/// use herald_pipeline::stages::updates::commands::help;
/// assert!(help(true).contains("/subscribe") && !help(false).contains("/subscribe"));
/// ```
pub fn help(payments: bool) -> String {
    match payments {
        true => format!("{HELP}{PAYMENTS_HELP}"),
        false => HELP.to_string(),
    }
}

/// Parses `/command[@bot] args`. `None` if the text is not a command.
pub fn parse_command(text: &str) -> Option<Command> {
    let text = text.trim();
    let rest = text.strip_prefix('/')?;
    let (head, args) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    let name = head.split('@').next().unwrap_or_default().to_ascii_lowercase();
    Some(match name.as_str() {
        "start" => Command::Start,
        "help" => Command::Help,
        "pause" | "stop" => Command::Pause,
        "resume" => Command::Resume,
        "calls" => Command::Calls(args.trim().parse::<usize>().map(|p| p.saturating_sub(1)).unwrap_or(0)),
        "deposit" => Command::Deposit,
        "balance" => Command::Balance,
        "admin" => Command::Admin(args.trim().to_string()),
        "subscribe" => Command::Subscribe(Some(args.trim().to_string()).filter(|a| !a.is_empty())),
        "filters" | "filter" if args.trim().is_empty() => Command::Filters(None),
        "filters" | "filter" => match parse_filter_args(args) {
            Some(edit) => Command::Filters(Some(edit)),
            None => Command::Unknown(format!("filters {}", args.trim())),
        },
        other => Command::Unknown(other.to_string()),
    })
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

fn parse_filter_args(args: &str) -> Option<FilterEdit> {
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

/// A reply: HTML text, an optional inline keyboard, and optionally a QR code sent as a
/// photo with the text as its caption (see `OutboundMessage::qr_code`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Reply {
    pub text: String,
    pub buttons: Vec<Vec<Button>>,
    pub qr_code: Option<String>,
}

impl Reply {
    /// Text without buttons.
    pub fn plain(t: impl Into<String>) -> Self {
        Self::text(t)
    }

    fn text(t: impl Into<String>) -> Self {
        Reply {
            text: t.into(),
            ..Default::default()
        }
    }
}

/// Runs a command for a user. Returns the settings to store (`None` = unchanged) and
/// the reply. Users who have not sent /start get a hint instead of a change. `payments`:
/// deposits are on, so `/help` lists their commands.
pub fn run(
    current: Option<&UserSettings>,
    cmd: Command,
    user_id: i64,
    chat_id: i64,
    now_ms: u64,
    payments: bool,
) -> (Option<UserSettings>, Reply) {
    let help = help(payments);
    let changed = |f: &dyn Fn(&mut UserSettings)| {
        current.map(|c| {
            let mut s = c.clone();
            f(&mut s);
            s.active = true;
            s.updated_at_ms = now_ms;
            s
        })
    };
    match (cmd, current) {
        (Command::Start, None) => {
            let s = UserSettings::new(user_id, chat_id, now_ms);
            (
                Some(s),
                Reply::text(format!("Welcome! You will now receive token calls.\n\n{help}")),
            )
        }
        (Command::Start, Some(_)) => (
            changed(&|s| s.paused = false),
            Reply::text(format!("Welcome back! Notifications are on.\n\n{help}")),
        ),
        (Command::Help, _) => (None, Reply::text(help)),
        (_, None) => (None, Reply::text("Send /start first.")),
        (Command::Pause, Some(_)) => (
            changed(&|s| s.paused = true),
            Reply::text("Paused. /resume to receive calls again."),
        ),
        (Command::Resume, Some(_)) => (changed(&|s| s.paused = false), Reply::text("Resumed: calls are on.")),
        (Command::Filters(None), Some(s)) => (None, menu(&s.filters)),
        (Command::Filters(Some(edit)), Some(_)) => {
            let new = changed(&|s| apply_edit(&mut s.filters, edit.clone()));
            let reply = menu(&new.as_ref().expect("current exists").filters);
            (new, reply)
        }
        // answered by the updates stage, which has the tracked-call store
        (Command::Calls(_), Some(_)) => (None, Reply::text("Tracked calls are not available right now.")),
        // likewise, with the wallet and the ledger
        (Command::Admin(_), Some(_)) => (None, Reply::text("Unknown command /admin. /help lists what I understand.")),
        (Command::Deposit | Command::Balance | Command::Subscribe(_), Some(_)) => {
            (None, Reply::text("Payments are not available right now."))
        }
        (Command::Unknown(c), Some(_)) => (
            None,
            Reply::text(format!(
                "Unknown command /{}. /help lists what I understand.",
                crate::stages::fanout::render::html_escape(&c)
            )),
        ),
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
    Reply {
        text,
        buttons,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse_with_bot_suffix_and_arguments() {
        assert_eq!(parse_command("/start@HeraldBot"), Some(Command::Start));
        assert_eq!(parse_command("hello"), None);
        assert_eq!(
            parse_command("/filters winrate 60"),
            Some(Command::Filters(Some(FilterEdit::MinWinRate(Some(0.6)))))
        );
        assert_eq!(
            parse_command("/filters fdv 10k any"),
            Some(Command::Filters(Some(FilterEdit::Fdv {
                min: Some(10_000.0),
                max: None
            })))
        );
        assert_eq!(
            parse_command("/filters chains SOL,bnb"),
            Some(Command::Filters(Some(FilterEdit::Chains(vec![
                Chain::from("solana"),
                Chain::from("bsc")
            ]))))
        );
        assert_eq!(
            parse_command("/filters winrate abc"),
            Some(Command::Unknown("filters winrate abc".into()))
        );
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
    fn start_pause_resume_lifecycle() {
        let (s, _) = run(None, Command::Start, 7, 7, 1, false);
        let s = s.unwrap();
        assert!(s.receives_signals());
        let (p, r) = run(Some(&s), Command::Pause, 7, 7, 2, false);
        assert!(!p.as_ref().unwrap().receives_signals());
        assert!(r.text.contains("Paused"));
        let (q, _) = run(p.as_ref(), Command::Resume, 7, 7, 3, false);
        assert!(q.unwrap().receives_signals());
        let (none, r) = run(None, Command::Pause, 7, 7, 4, false);
        assert!(none.is_none() && r.text.contains("/start"));
    }
}
