//! Checks on values that come from outside (feeds, channels, users) before they become
//! events: the subject-token grammar, the configured chain list, bounded and cleaned
//! texts, and range-checked numbers. Each check says what is wrong in its error, which
//! becomes the dead-letter reason.
//!
//! ```
//! use herald_schemas::checks::{self, ChainList};
//! let chains = ChainList::default();
//! assert_eq!(chains.parse("SOL").unwrap().as_str(), "solana");
//! assert!(chains.parse("a.b").is_err());
//! assert_eq!(checks::clean_text("\u{202e}evil\u{0}", 32).as_deref(), Some("evil"));
//! assert!(checks::price(-0.0).is_err());
//! ```

use std::collections::BTreeSet;

use crate::{CallEvent, Chain, PriceUpdate};

/// Chains Herald knows by default (`--chains` replaces the list).
pub const DEFAULT_CHAINS: &[&str] = &[
    "solana",
    "ethereum",
    "bsc",
    "base",
    "polygon",
    "arbitrum",
    "optimism",
    "avalanche",
    "ton",
    "tron",
    "sui",
];

/// Longest contract address or mint (bytes). EVM addresses are 42, Solana mints 32–44,
/// TON's user-friendly form 48.
pub const MAX_ADDRESS: usize = 128;
/// Longest source event id or caller id (bytes).
pub const MAX_ID: usize = 128;
/// Longest symbol kept (characters; longer ones are cut).
pub const MAX_SYMBOL: usize = 32;
/// Longest token or caller name kept (characters; longer ones are cut).
pub const MAX_NAME: usize = 64;
/// Highest USD price accepted (1e12: far above any token's).
pub const MAX_PRICE_USD: f64 = 1e12;
/// Highest FDV accepted, USD (1e15: above the whole crypto market).
pub const MAX_FDV_USD: f64 = 1e15;

/// A value that becomes one NATS subject token: `[A-Za-z0-9_-]{1,64}`. Stricter than
/// NATS itself (which forbids only `.`, `*`, `>` and whitespace) so that nothing a
/// source sends can widen a subscription or hide in a log.
///
/// Errors: empty, too long, or a character outside the grammar (named).
pub fn subject_token(s: &str) -> Result<(), String> {
    grammar(s, 64, |c| c.is_ascii_alphanumeric() || c == '_' || c == '-').map_err(|e| format!("subject token {e}"))
}

/// A contract address or mint: `[A-Za-z0-9_-]{1,128}` (base58, `0x` hex, base64url).
///
/// Errors: empty, too long, or a character outside the grammar.
pub fn address(s: &str) -> Result<(), String> {
    grammar(s, MAX_ADDRESS, |c| c.is_ascii_alphanumeric() || c == '_' || c == '-').map_err(|e| format!("token address {e}"))
}

/// An event or caller id: printable ASCII without spaces, 1–128 bytes (it becomes part
/// of a `Nats-Msg-Id` header and of KV keys).
///
/// Errors: empty, too long, or a space, control or non-ASCII character.
pub fn id(s: &str) -> Result<(), String> {
    grammar(s, MAX_ID, |c| c.is_ascii_graphic()).map_err(|e| format!("id {e}"))
}

fn grammar(s: &str, max: usize, ok: impl Fn(char) -> bool) -> Result<(), String> {
    if s.is_empty() {
        return Err("is empty".into());
    }
    if s.len() > max {
        return Err(format!("is {} bytes, more than {max}", s.len()));
    }
    match s.chars().find(|c| !ok(*c)) {
        Some(c) => Err(format!("has the character {:?}", c)),
        None => Ok(()),
    }
}

/// Bidirectional-text controls (Unicode UAX #9): they reorder what a reader sees.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// A display text: control and bidi characters removed, whitespace runs made one space,
/// cut to `max` characters (with `…`). `None` when nothing is left.
pub fn clean_text(s: &str, max: usize) -> Option<String> {
    let mut out = String::with_capacity(s.len().min(max * 4));
    let mut count = 0;
    let mut space = false;
    for c in s.chars() {
        if c.is_whitespace() {
            space = !out.is_empty();
            continue;
        }
        if c.is_control() || is_bidi_control(c) || c == '\u{FEFF}' {
            continue;
        }
        // room for this character (and the space before it) and a final `…`
        let need = 1 + usize::from(space);
        if count + need >= max {
            out.push('…');
            return Some(out);
        }
        if space {
            out.push(' ');
            count += 1;
            space = false;
        }
        out.push(c);
        count += 1;
    }
    (!out.is_empty()).then_some(out)
}

/// A USD price: finite, normal (not zero, `-0.0` or subnormal), positive, at most
/// [`MAX_PRICE_USD`].
///
/// Errors: which of those it is not.
pub fn price(v: f64) -> Result<(), String> {
    positive("price", v, MAX_PRICE_USD)
}

/// An FDV in USD: finite, normal, positive, at most [`MAX_FDV_USD`].
///
/// Errors: which of those it is not.
pub fn fdv(v: f64) -> Result<(), String> {
    positive("FDV", v, MAX_FDV_USD)
}

fn positive(what: &str, v: f64, max: f64) -> Result<(), String> {
    if !v.is_normal() || v <= 0.0 {
        return Err(format!("{what} {v:e} is not a positive normal number"));
    }
    if v > max {
        return Err(format!("{what} {v:e} is above {max:e}"));
    }
    Ok(())
}

/// A call from a source, checked and cleaned: chain on the list, ids and token address
/// in their grammars, prices and FDV in range (errors), names and symbol cleaned and cut
/// (see [`clean_text`]), caller statistics in range, links kept only when `https` and
/// at most 512 bytes.
///
/// Errors: the first check that fails, as the dead-letter reason.
pub fn call(mut c: CallEvent, chains: &ChainList) -> Result<CallEvent, String> {
    c.chain = chains.parse(c.chain.as_str())?;
    id(&c.source_event_id).map_err(|e| format!("event {e}"))?;
    address(&c.token)?;
    id(&c.caller.id).map_err(|e| format!("caller {e}"))?;
    if let Some(p) = c.price_usd {
        price(p)?;
    }
    if let Some(p) = c.price_native {
        price(p).map_err(|e| format!("native {e}"))?;
    }
    if let Some(f) = c.fdv_usd {
        fdv(f)?;
    }
    if let Some(s) = &c.caller_stats {
        let in_range = (0.0..=1.0).contains(&s.win_rate) && (-100.0..=1e6).contains(&s.avg_gain_pct);
        if !in_range {
            return Err(format!(
                "caller stats out of range: win rate {} (0 to 1), average gain {}% (-100 to 1e6)",
                s.win_rate, s.avg_gain_pct
            ));
        }
    }
    c.symbol = c.symbol.and_then(|s| clean_text(&s, MAX_SYMBOL));
    c.name = c.name.and_then(|s| clean_text(&s, MAX_NAME));
    c.caller.name = c.caller.name.and_then(|s| clean_text(&s, MAX_NAME));
    c.links
        .retain(|l| l.url.starts_with("https://") && l.url.len() <= 512 && !l.url.contains(char::is_whitespace));
    for l in &mut c.links {
        l.label = clean_text(&l.label, MAX_SYMBOL).unwrap_or_else(|| "link".into());
    }
    Ok(c)
}

/// A price update from a source: chain on the list, token address in its grammar,
/// price in range.
///
/// Errors: the first check that fails.
pub fn price_update(mut p: PriceUpdate, chains: &ChainList) -> Result<PriceUpdate, String> {
    p.chain = chains.parse(p.chain.as_str())?;
    address(&p.token)?;
    price(p.price_usd)?;
    Ok(p)
}

/// The chains Herald accepts, each a subject token (`--chains`; [`DEFAULT_CHAINS`] by
/// default). Aliases (`sol`, `bnb`, ...) resolve through [`Chain::from`] first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainList(BTreeSet<String>);

impl Default for ChainList {
    fn default() -> Self {
        ChainList(DEFAULT_CHAINS.iter().map(|c| c.to_string()).collect())
    }
}

impl ChainList {
    /// A list from configuration.
    ///
    /// Errors: a name that is not a lowercase subject token (`[a-z0-9_-]{1,64}`).
    pub fn new<S: AsRef<str>>(names: &[S]) -> Result<Self, String> {
        let mut set = BTreeSet::new();
        for n in names {
            let chain = Chain::from(n.as_ref());
            subject_token(chain.as_str()).map_err(|e| format!("chain {:?}: {e}", n.as_ref()))?;
            set.insert(chain.as_str().to_string());
        }
        if set.is_empty() {
            return Err("the chain list is empty".into());
        }
        Ok(ChainList(set))
    }

    /// The canonical chain for `raw`, if it is on the list.
    ///
    /// Errors: not on the list (the list is named, the input shown escaped and cut).
    pub fn parse(&self, raw: &str) -> Result<Chain, String> {
        let chain = Chain::from(raw);
        if self.0.contains(chain.as_str()) {
            Ok(chain)
        } else {
            let shown: String = raw.chars().take(40).collect();
            Err(format!("unknown chain {shown:?} (known: {})", self.names().join(", ")))
        }
    }

    /// The chains, sorted.
    pub fn names(&self) -> Vec<&str> {
        self.0.iter().map(String::as_str).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_chains_are_refused() {
        let chains = ChainList::default();
        for bad in [
            "",
            "a.b",
            "*",
            ">",
            "sol ana",
            "sol\0",
            &"x".repeat(1000),
            "sol\u{202e}ana",
            "solana2",
        ] {
            assert!(chains.parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(chains.parse(" BNB ").unwrap().as_str(), "bsc");
        assert!(ChainList::new(&["a.b"]).is_err());
        assert!(ChainList::new::<&str>(&[]).is_err());
    }

    #[test]
    fn numbers_out_of_range_are_refused() {
        for bad in [-1.0, 0.0, -0.0, f64::MIN_POSITIVE / 2.0, f64::NAN, f64::INFINITY, 1e13] {
            assert!(price(bad).is_err(), "{bad}");
        }
        for bad in [-5.0, 1.797e308, f64::NAN, 0.0] {
            assert!(fdv(bad).is_err(), "{bad}");
        }
        assert!(price(0.000_000_012).is_ok() && fdv(37_000.0).is_ok());
    }

    #[test]
    fn texts_are_bounded_and_cleaned() {
        let long = "A".repeat(10_000);
        let cut = clean_text(&long, MAX_SYMBOL).unwrap();
        assert_eq!(cut.chars().count(), MAX_SYMBOL);
        assert!(cut.ends_with('…'));
        assert_eq!(clean_text("  \t\n ", 10), None);
        // found by the feed_frame fuzz target: a space at the limit went over it by one
        for n in 60..66 {
            let text = format!("{} b c d e", "a".repeat(n));
            assert!(clean_text(&text, 64).unwrap().chars().count() <= 64, "{n}");
        }
        assert_eq!(clean_text("a\u{2066}b\u{200f}  c\u{7}", 10).as_deref(), Some("ab c"));
        assert!(id("").is_err() && id("a b").is_err() && id(&"x".repeat(129)).is_err() && id("feed:1").is_ok());
        assert!(address("   ").is_err() && address("So11111111111111111111111111111111111111112").is_ok());
    }
}
