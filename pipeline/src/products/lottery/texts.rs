//! What the lottery says. Amounts are shown in USD from ledger base units.

use alloy::primitives::U256;
use herald_schemas::escape_html;

use crate::core::reply::date;
use crate::core::ledger::money::{units, LEDGER_DECIMALS};

/// `12.5` from base units.
pub fn usd(amount: u128) -> String {
    units(U256::from(amount), LEDGER_DECIMALS)
}

/// `2 d 4 h`, `5 min`, `now`: time left until `t` (unix s).
///
/// ```
/// use herald_pipeline::products::lottery::texts::time_left;
/// assert_eq!(time_left(100, 100 + 2 * 86_400 + 4 * 3600 + 59), "2 d 4 h");
/// assert_eq!(time_left(100, 400), "5 min");
/// assert_eq!(time_left(100, 50), "now");
/// ```
pub fn time_left(now_s: u64, t: u64) -> String {
    let left = t.saturating_sub(now_s);
    match left {
        0 => "now".into(),
        l if l >= 86_400 => format!("{} d {} h", l / 86_400, l % 86_400 / 3600),
        l if l >= 3600 => format!("{} h {} min", l / 3600, l % 3600 / 60),
        l if l >= 60 => format!("{} min", l / 60),
        l => format!("{l} s"),
    }
}

/// Tickets `a–b` (or `#a` for one).
pub fn ticket_range(first: u64, count: u64) -> String {
    match count {
        1 => format!("#{first}"),
        n => format!("#{first}–#{}", first + n - 1),
    }
}

/// A unix time (s) as users read it.
pub fn at(t: u64) -> String {
    date(t * 1000)
}

pub const PAUSED: &str = "⏸ Ticket sales are paused for now. Your balance is untouched.";
pub const NO_ROUND: &str = "The first round is about to open. Try again in a moment.";

/// `/verify ROUND` for a round without a bundle yet.
pub fn not_drawn(round: u64) -> String {
    format!("Round {round} has not been drawn yet. /draws lists the drawn ones.")
}

/// How to check a bundle.
pub fn how_to_verify(round: u64, url: &str) -> String {
    format!(
        "🔎 <b>Round {round}: the draw's proof</b>\n{}\n\nIt holds every input and output of the draw: the drand beacon, \
         the server seed and its commitment, every receipt, the tickets' Merkle root, the pot and the payouts. \
         Check it yourself, trusting nothing of ours:\n<code>herald-verify bundle.json</code>\n\
         (from the Herald repository: <code>cargo run -p herald-draw --bin herald-verify -- bundle.json</code>). \
         The rules are in docs/lottery.md, precise enough to write your own verifier.",
        escape_html(url)
    )
}
