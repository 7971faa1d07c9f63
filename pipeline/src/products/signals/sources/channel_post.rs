//! Parses Telegram call-channel posts into calls.
//!
//! Formats come from real channels (see `pipeline/tests/fixtures/SOURCES.md`): the
//! Portuguese "FDV atualmente" alerts (`#kora ● $0.0225 258K FDV atualmente ... CA: <mint>`,
//! with the subscript-zero price `$0.0₃62`), and the formats of Solana Early Trending,
//! XTRACK, Large Buys / Momentum trackers, call analyzer, KOLscope and SpyDefi
//! (`💰 MC: $54,726`, `MC: $53.8k 👉`, `💰 E91 ($49.2K)`, `CALL ALERT: X`, bot start links,
//! gmgn.ai and pump.fun links). A market cap stands in for FDV when no FDV is given
//! (the two coincide for fully circulating memecoins).

use std::sync::LazyLock;

use herald_schemas::Chain;
use regex::Regex;

/// What a post says about one token.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedCall {
    pub chain: Chain,
    /// Contract address or mint, case kept.
    pub token: String,
    pub symbol: Option<String>,
    pub price_usd: Option<f64>,
    pub fdv_usd: Option<f64>,
}

const B58: &str = "[1-9A-HJ-NP-Za-km-z]{32,44}";

fn re(s: &str) -> Regex {
    Regex::new(&s.replace("B58", B58)).expect("static regex")
}

static CA_PATTERNS: LazyLock<Vec<Regex>> = LazyLock::new(|| {
    [
        r"soul_sniper_bot\?start=15_(B58)",
        r"(?i:spydefi_bot)\?start=(B58)",
        r"KOLscopeBot\?start=(B58)",
        r"gmgn\.ai/sol/token/(?:[A-Za-z0-9]+_)?(B58)",
        r"pump\.fun/(?:coin/)?(B58)",
        r"dexscreener\.com/solana/(B58)",
        r"(?:CA|Mint|Contract|📄)\s*:?\s*(B58|0x[0-9a-fA-F]{40})\b",
        r"\b(0x[0-9a-fA-F]{40})\b",
        r"\b(B58)\b",
    ]
    .iter()
    .map(|p| re(p))
    .collect()
});

static SYMBOL_PATTERNS: LazyLock<Vec<Regex>> = LazyLock::new(|| {
    [
        r"🔥\s*\x{200e}?([^\n]+?)\s+New\s+Trending",
        r"💰\s*([A-Za-z0-9\-]+)\s*\(",
        r"⚡\s*([A-Za-z0-9\-]+)\s*\(",
        r"Swapped\s+[\d,.]+(?:\s*\([^)]+\))?\s+#?[A-Za-z0-9]+\s+[^#]*for\s+[\d,.]+\s+#([A-Za-z0-9]+)",
        r"([A-Za-z0-9]+)\s+did\s+👉",
        r"⚪\s*[^(]+?\s*\(#([^)]+)\)",
        r"CALL ALERT:\s*([A-Za-z0-9\-]+)",
        r"call on\s+([A-Za-z0-9\-]+)",
        r"^#([A-Za-z0-9]+)",
        r"\$([A-Za-z][A-Za-z0-9]*)",
    ]
    .iter()
    .map(|p| re(p))
    .collect()
});

static PRICE: LazyLock<Regex> = LazyLock::new(|| re(r"(?:●|Price:?)\s*\$(\d+\.\d*)([₀₁₂₃₄₅₆₇₈₉]+)?(\d*)"));
static FDV: LazyLock<Vec<Regex>> = LazyLock::new(|| {
    [
        r"([\d.,]+)\s*([KkMmBb])?\s*FDV",
        r"FDV[:\s]+\$?([\d.,]+)\s*([KkMmBb])?",
        r"(?:MC|MCap|Market\s*Cap)[:\s]+\$?([\d.,]+)\s*([KkMmBb])?",
        r"\(\$([\d.,]+)\s*([KkMmBb])?\)",
    ]
    .iter()
    .map(|p| re(p))
    .collect()
});

/// Finds the call in a post's text (and its entities' URLs).
///
/// Returns `None` when no contract address is found (most channel chatter).
///
/// ```
/// use herald_pipeline::products::signals::sources::channel_post::parse_call;
/// let c = parse_call("#GOOP ● $0.0336 37K FDV atualmente\nCA: 54FE9JPbxgnv5hAEFXpb13M9wumR61eZemwJyvVHpump", &[]).unwrap();
/// assert_eq!((c.symbol.as_deref(), c.fdv_usd), (Some("GOOP"), Some(37_000.0)));
/// ```
pub fn parse_call(text: &str, urls: &[String]) -> Option<ParsedCall> {
    let haystack = format!("{text}\n{}", urls.join("\n"));
    let token = CA_PATTERNS.iter().find_map(|r| r.captures(&haystack).map(|c| c[1].to_string()))?;
    let chain = if token.starts_with("0x") {
        evm_chain(text)
    } else {
        Chain::from("solana")
    };
    let symbol = SYMBOL_PATTERNS
        .iter()
        .filter_map(|r| r.captures(text).map(|c| c[1].trim().to_string()))
        .find(|s| !s.is_empty() && !s.chars().all(|c| c.is_ascii_digit() || c == '.'));
    Some(ParsedCall {
        chain,
        token,
        symbol,
        price_usd: parse_price(text),
        fdv_usd: parse_fdv(text),
    })
}

fn evm_chain(text: &str) -> Chain {
    let lower = text.to_lowercase();
    let hint = ["bsc", "bnb", "bep20", "base", "arbitrum", "polygon"]
        .into_iter()
        .find(|h| lower.contains(h));
    Chain::from(hint.unwrap_or("ethereum"))
}

/// `$0.0225` -> 0.0225; `$0.0₃62` -> 0.00062 (subscript = number of zeros after the point).
fn parse_price(text: &str) -> Option<f64> {
    let c = PRICE.captures(text)?;
    match c.get(2) {
        None => c[1].parse().ok(),
        Some(sub) => {
            let zeros: usize = sub
                .as_str()
                .chars()
                .map(|ch| (ch as u32 - '₀' as u32).to_string())
                .collect::<String>()
                .parse()
                .ok()?;
            format!("0.{}{}", "0".repeat(zeros), &c[3]).parse().ok()
        }
    }
}

fn parse_fdv(text: &str) -> Option<f64> {
    FDV.iter().find_map(|r| {
        let c = r.captures(text)?;
        let n: f64 = c[1].replace(',', "").trim_end_matches('.').parse().ok()?;
        let mult = match c.get(2).map(|m| m.as_str().to_ascii_uppercase()) {
            Some(s) if s == "K" => 1e3,
            Some(s) if s == "M" => 1e6,
            Some(s) if s == "B" => 1e9,
            _ => 1.0,
        };
        Some(n * mult)
    })
}

/// Text (or caption) of a Telegram message plus every URL in its entities.
pub fn post_text_and_urls(post: &serde_json::Value) -> (String, Vec<String>) {
    let text = post
        .get("text")
        .or_else(|| post.get("caption"))
        .and_then(|t| t.as_str())
        .unwrap_or_default()
        .to_string();
    let urls = ["entities", "caption_entities"]
        .iter()
        .filter_map(|k| post.get(*k).and_then(|e| e.as_array()))
        .flatten()
        .filter_map(|e| e.get("url").and_then(|u| u.as_str()).map(str::to_string))
        .collect();
    (text, urls)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscript_zero_prices() {
        assert_eq!(parse_price("#oddbit ● $0.0₃62 62K FDV"), Some(0.00062));
        assert_eq!(parse_price("#x ● $0.0₁₂5 1K FDV"), Some(0.0000000000005));
        assert_eq!(parse_price("#GOD ● $0.00607998 128K"), Some(0.00607998));
    }

    #[test]
    fn trending_and_tracker_formats() {
        let c = parse_call(
            "🔥 \u{200e}The Goon New Trending\n💰 MC: $54,726 • 🔝 $60.7K\n💧 Liq: $21.8K",
            &["https://t.me/soul_sniper_bot?start=15_AJ37PzYsw6Bn7XscietdaGQbrm3oCNYuphL4iK34pump".into()],
        )
        .unwrap();
        assert_eq!(c.token, "AJ37PzYsw6Bn7XscietdaGQbrm3oCNYuphL4iK34pump");
        assert_eq!(c.symbol.as_deref(), Some("The Goon"));
        assert_eq!(c.fdv_usd, Some(54_726.0));
        let c = parse_call(
            "SLIDING did 👉 4x\n💰 MC: $53.8k 👉 $180k\nhttps://gmgn.ai/sol/token/rLkfkJiz_8neDcPFwrvRNM9WXHCtHwTcKZrVm6wr4cs4PSN9Hpump",
            &[],
        )
        .unwrap();
        assert_eq!((c.symbol.as_deref(), c.fdv_usd), (Some("SLIDING"), Some(53_800.0)));
        let c = parse_call(
            "💰 E91 ($49.2K) - 10.65 SOL BUY\npump.fun/GQ6mUfsySbXgDRGjewog4XoRWpYNkJ7YtSEYuMjCbonk",
            &[],
        )
        .unwrap();
        assert_eq!((c.symbol.as_deref(), c.fdv_usd), (Some("E91"), Some(49_200.0)));
    }

    #[test]
    fn evm_addresses_and_chatter() {
        let c = parse_call("CALL ALERT: PEPE on BSC\nCA: 0xe9e7CEA3DedcA5984780Bafc599bD69ADd087D56", &[]).unwrap();
        assert_eq!((c.chain.as_str(), c.symbol.as_deref()), ("bsc", Some("PEPE")));
        assert_eq!(parse_call("gm everyone, big day today", &[]), None);
        assert_eq!(parse_call("$24.4K volume", &[]), None);
    }
}
