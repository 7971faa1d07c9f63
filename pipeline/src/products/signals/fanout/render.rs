//! Notification text (Telegram HTML).

use herald_schemas::{escape_html, ChannelStats, Signal};

/// `1234567.0` -> `$1.23M`; `258000.0` -> `$258K`.
pub fn usd_compact(v: f64) -> String {
    let (n, suffix) = match v.abs() {
        a if a >= 1e9 => (v / 1e9, "B"),
        a if a >= 1e6 => (v / 1e6, "M"),
        a if a >= 1e3 => (v / 1e3, "K"),
        _ => (v, ""),
    };
    let s = format!("{n:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    format!("${s}{suffix}")
}

/// A price with enough significant digits for sub-cent tokens: `0.00062` -> `$0.00062`.
pub fn price(v: f64) -> String {
    if v >= 1.0 {
        format!("${v:.4}").trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        format!("${}", format_sig(v, 4))
    }
}

fn format_sig(v: f64, digits: i32) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let decimals = (digits - 1 - v.abs().log10().floor() as i32).max(0) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// The notification body for a signal: token, chain, price, FDV, callers with stats, links.
pub fn signal_text(signal: &Signal, stats_of: impl Fn(&str) -> Option<ChannelStats>) -> String {
    let call = &signal.call;
    let symbol = call
        .symbol
        .as_deref()
        .map(|s| format!("${}", escape_html(s)))
        .unwrap_or_else(|| "New token".into());
    let mut text = format!(
        "🔔 <b>{symbol}</b> on {}\n<code>{}</code>\n",
        escape_html(call.chain.as_str()),
        escape_html(&call.token)
    );
    let mut facts = Vec::new();
    if let Some(p) = call.price_usd {
        facts.push(format!("Price {}", price(p)));
    } else if let Some(p) = call.price_native {
        let unit = if call.chain.as_str() == "solana" { "SOL" } else { "native" };
        facts.push(format!("Price {} {unit}", format_sig(p, 4)));
    }
    if let Some(f) = call.fdv_usd {
        facts.push(format!("FDV {}", usd_compact(f)));
    }
    if !facts.is_empty() {
        text.push_str(&facts.join(" · "));
        text.push('\n');
    }
    text.push_str("Called by:\n");
    for id in &signal.all_caller_ids {
        let caller = signal.new_callers.iter().find(|c| &c.id == id);
        let name = caller.and_then(|c| c.name.clone()).unwrap_or_else(|| id.clone());
        let new = if caller.is_some() { " 🆕" } else { "" };
        let stats = if caller.is_some() && call.caller.id == *id {
            call.caller_stats.or_else(|| stats_of(id))
        } else {
            stats_of(id)
        };
        let stats = stats
            .map(|s| format!(" — win {:.0}%, avg +{:.0}% ({} calls)", s.win_rate * 100.0, s.avg_gain_pct, s.calls))
            .unwrap_or_default();
        text.push_str(&format!("• {}{new}{stats}\n", escape_html(&name)));
    }
    let mut links: Vec<String> = call
        .links
        .iter()
        .map(|l| format!("<a href=\"{}\">{}</a>", escape_html(&l.url), escape_html(&l.label)))
        .collect();
    links.push(format!(
        "<a href=\"https://dexscreener.com/{}/{}\">DexScreener</a>",
        escape_html(call.chain.as_str()),
        escape_html(&call.token)
    ));
    text.push_str(&links.join(" | "));
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_like_a_trader_writes_them() {
        assert_eq!(usd_compact(258_000.0), "$258K");
        assert_eq!(usd_compact(1_234_567.0), "$1.23M");
        assert_eq!(usd_compact(950.0), "$950");
        assert_eq!(price(0.00062), "$0.00062");
        assert_eq!(price(0.0225), "$0.0225");
        assert_eq!(price(1.5), "$1.5");
        assert_eq!(escape_html("<a&b>"), "&lt;a&amp;b&gt;");
    }
}
