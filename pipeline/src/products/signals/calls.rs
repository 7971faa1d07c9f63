//! `/calls`: a user's tracked calls, a page at a time, with Prev/Next buttons.

use herald_schemas::Button;

use crate::core::reply::Reply;
use super::fanout::render::price;
use herald_schemas::escape_html;
use super::tracking::store::TrackedCall;

/// Calls per page.
pub const PER_PAGE: usize = 5;

/// Page number from a Prev/Next button (`c:<page>`).
pub fn parse_callback(data: &str) -> Option<usize> {
    data.strip_prefix("c:")?.parse().ok()
}

/// One page (0-based) of `total` calls, newest first.
///
/// ```
/// use herald_pipeline::products::signals::calls::page;
/// assert!(page(&[], 0, 0).text.contains("no tracked calls"));
/// ```
pub fn page(calls: &[TrackedCall], total: usize, page: usize) -> Reply {
    if total == 0 {
        return Reply::plain("You have no tracked calls yet: every token you are notified about becomes one.");
    }
    let pages = total.div_ceil(PER_PAGE);
    let mut text = format!("<b>Your tracked calls</b> ({total}), page {} of {pages}\n", page + 1);
    for c in calls {
        let name = c
            .symbol
            .as_deref()
            .map(|s| format!("${}", escape_html(s)))
            .unwrap_or_else(|| escape_html(&c.token));
        text.push_str(&format!(
            "\n<b>{name}</b> on {}\nentry {} · now {:.2}x · best {:.2}x\n<code>{}</code>\n",
            escape_html(c.chain.as_str()),
            price(c.entry_price_usd),
            c.last_multiple,
            c.best_multiple,
            escape_html(&c.token)
        ));
    }
    let mut row = Vec::new();
    if page > 0 {
        row.push(Button {
            text: "‹ Prev".into(),
            callback_data: format!("c:{}", page - 1),
            url: None,
        });
    }
    if page + 1 < pages {
        row.push(Button {
            text: "Next ›".into(),
            callback_data: format!("c:{}", page + 1),
            url: None,
        });
    }
    Reply {
        text,
        buttons: if row.is_empty() { Vec::new() } else { vec![row] },
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(n: usize) -> TrackedCall {
        TrackedCall {
            user_id: 1,
            chat_id: 1,
            chain: "solana".into(),
            token: format!("T{n}"),
            symbol: Some(format!("S{n}")),
            caller_ids: vec![],
            entry_price_usd: 0.01,
            called_at_ms: n as u64,
            last_multiple: 1.5,
            best_multiple: 2.5,
            alerted: 1,
        }
    }

    #[test]
    fn pages_have_prev_and_next_where_they_exist() {
        let calls: Vec<TrackedCall> = (0..5).map(call).collect();
        let first = page(&calls, 12, 0);
        assert!(first.text.contains("page 1 of 3") && first.text.contains("best 2.50x") && first.text.contains("now 1.50x"));
        assert_eq!(
            first.buttons[0].iter().map(|b| b.callback_data.as_str()).collect::<Vec<_>>(),
            ["c:1"]
        );
        let middle = page(&calls, 12, 1);
        assert_eq!(middle.buttons[0].len(), 2);
        let last = page(&calls[..2], 12, 2);
        assert_eq!(
            last.buttons[0].iter().map(|b| b.callback_data.as_str()).collect::<Vec<_>>(),
            ["c:1"]
        );
        assert_eq!(parse_callback("c:2"), Some(2));
        assert_eq!(parse_callback("f:wr:60"), None);
    }
}
