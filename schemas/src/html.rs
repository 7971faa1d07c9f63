//! Telegram's HTML (`parse_mode=HTML`, core.telegram.org/bots/api#html-style), made
//! safe in one place: every outbound text passes [`sanitize`] and [`fit`] when its
//! [`crate::OutboundMessage`] is made, so no product can send markup Telegram refuses.
//!
//! - Tags Telegram supports are kept when they nest properly; attributes only where
//!   Telegram reads them (`a href`, `span class="tg-spoiler"`, `code class`,
//!   `blockquote expandable`, `tg-emoji emoji-id`).
//! - Every other `<`, `>` and `&` becomes an entity: `<script>` is shown, not parsed.
//! - Tags left open at the end are closed.
//! - [`fit`] cuts a text to Telegram's limit (4,096 characters for a message, 1,024 for a
//!   caption, counted after entity parsing, in UTF-16 code units) at a word or line
//!   boundary, adds `…` and closes the tags it cut through.
//!
//! ```
//! use herald_schemas::html::{fit, sanitize};
//! assert_eq!(sanitize("<b>chains:</b> <script>x</script> & co"), "<b>chains:</b> &lt;script&gt;x&lt;/script&gt; &amp; co");
//! assert_eq!(sanitize("<b>open"), "<b>open</b>");
//! assert_eq!(fit("<b>aaaa bbbb</b>", 6), "<b>aaaa…</b>");
//! ```

/// Longest message text (characters after entity parsing).
pub const MAX_TEXT: usize = 4096;
/// Longest caption (characters after entity parsing).
pub const MAX_CAPTION: usize = 1024;

const TAGS: &[&str] = &[
    "b",
    "strong",
    "i",
    "em",
    "u",
    "ins",
    "s",
    "strike",
    "del",
    "span",
    "tg-spoiler",
    "a",
    "tg-emoji",
    "code",
    "pre",
    "blockquote",
];

/// One piece of a text: a kept tag, an entity, or one visible character.
#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Open {
        name: String,
        raw: String,
    },
    Close(String),
    /// Visible text: a character or an entity, and its UTF-16 length once parsed.
    Text {
        raw: String,
        units: usize,
    },
}

fn pieces(s: &str) -> Vec<Piece> {
    let mut out = Vec::new();
    let mut open: Vec<String> = Vec::new();
    let mut rest = s;
    while let Some(c) = rest.chars().next() {
        if c == '<' {
            if let Some((piece, len)) = tag(rest, &open) {
                match &piece {
                    Piece::Open { name, .. } => open.push(name.clone()),
                    Piece::Close(_) => {
                        open.pop();
                    }
                    Piece::Text { .. } => {}
                }
                out.push(piece);
                rest = &rest[len..];
                continue;
            }
        }
        if c == '&' {
            if let Some(len) = entity(rest) {
                out.push(Piece::Text {
                    raw: rest[..len].to_string(),
                    units: 1,
                });
                rest = &rest[len..];
                continue;
            }
        }
        let raw = match c {
            '<' => "&lt;".to_string(),
            '>' => "&gt;".to_string(),
            '&' => "&amp;".to_string(),
            c => c.to_string(),
        };
        out.push(Piece::Text { raw, units: c.len_utf16() });
        rest = &rest[c.len_utf8()..];
    }
    for name in open.into_iter().rev() {
        out.push(Piece::Close(name));
    }
    out
}

/// A kept tag at the start of `s` and its length: a supported opening tag, or the
/// closing tag of the innermost open one.
fn tag(s: &str, open: &[String]) -> Option<(Piece, usize)> {
    let end = s.find('>')?;
    let inner = &s[1..end];
    if inner.contains('<') {
        return None;
    }
    if let Some(name) = inner.strip_prefix('/') {
        let name = name.trim().to_ascii_lowercase();
        return (open.last() == Some(&name)).then(|| (Piece::Close(name), end + 1));
    }
    let (name, attrs) = inner.split_once(char::is_whitespace).unwrap_or((inner, ""));
    let name = name.to_ascii_lowercase();
    if !TAGS.contains(&name.as_str()) {
        return None;
    }
    let attrs = attrs.trim();
    let allowed = match name.as_str() {
        "a" => attr_value(attrs, "href").is_some_and(|v| !v.is_empty()),
        "span" => attrs == "class=\"tg-spoiler\"",
        "code" => attrs.is_empty() || attr_value(attrs, "class").is_some_and(|v| v.starts_with("language-")),
        "blockquote" => attrs.is_empty() || attrs == "expandable",
        "tg-emoji" => attr_value(attrs, "emoji-id").is_some_and(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit())),
        _ => attrs.is_empty(),
    };
    allowed.then(|| {
        (
            Piece::Open {
                name,
                raw: s[..=end].to_string(),
            },
            end + 1,
        )
    })
}

/// The value of the only attribute `name="value"` (no quotes or `&` inside but entities).
fn attr_value<'a>(attrs: &'a str, name: &str) -> Option<&'a str> {
    let v = attrs.strip_prefix(name)?.strip_prefix("=\"")?.strip_suffix('"')?;
    (!v.contains('"')).then_some(v)
}

/// The length of the entity at the start of `s` (`&lt;`, `&gt;`, `&amp;`, `&quot;`,
/// `&#39;`, `&#x1F600;`), if one is there.
fn entity(s: &str) -> Option<usize> {
    // by bytes: a cut at byte 12 may fall inside a character (found by fuzzing)
    let end = s.bytes().take(12).position(|b| b == b';')?;
    let body = &s[1..end];
    let ok = matches!(body, "lt" | "gt" | "amp" | "quot")
        || body
            .strip_prefix("#x")
            .or_else(|| body.strip_prefix("#X"))
            .is_some_and(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_hexdigit()))
        || body
            .strip_prefix('#')
            .is_some_and(|d| !d.is_empty() && d.chars().all(|c| c.is_ascii_digit()));
    ok.then_some(end + 1)
}

fn render(pieces: &[Piece]) -> String {
    let mut s = String::new();
    for p in pieces {
        match p {
            Piece::Open { raw, .. } | Piece::Text { raw, .. } => s.push_str(raw),
            Piece::Close(name) => {
                s.push_str("</");
                s.push_str(name);
                s.push('>');
            }
        }
    }
    s
}

/// `s` as well-formed Telegram HTML: supported tags kept where they nest, every other
/// markup character escaped, open tags closed. Text that is already well formed is
/// returned unchanged, so sanitizing twice changes nothing.
pub fn sanitize(s: &str) -> String {
    render(&pieces(s))
}

/// Length of `s` as Telegram counts it: UTF-16 code units of the text after entity
/// parsing (tags count nothing, an entity one).
pub fn visible_len(s: &str) -> usize {
    pieces(s)
        .iter()
        .map(|p| match p {
            Piece::Text { units, .. } => *units,
            _ => 0,
        })
        .sum()
}

/// The text a Telegram client shows for `s` once sanitized: tags dropped, entities
/// decoded (`&lt;` `&gt;` `&amp;` `&quot;` and numeric ones).
///
/// ```
/// use herald_schemas::html::visible_text;
/// assert_eq!(visible_text("<b>1 &lt; 2</b> &amp; <i>x</i>"), "1 < 2 & x");
/// ```
pub fn visible_text(s: &str) -> String {
    pieces(s)
        .iter()
        .filter_map(|p| match p {
            Piece::Text { raw, .. } => Some(decode_entity(raw)),
            _ => None,
        })
        .collect()
}

/// One piece of visible text as shown: an entity decoded, a character as it is.
fn decode_entity(raw: &str) -> String {
    let numeric = |n: &str, radix| u32::from_str_radix(n, radix).ok().and_then(char::from_u32).map(String::from);
    let decoded = match raw {
        "&lt;" => Some("<".to_string()),
        "&gt;" => Some(">".to_string()),
        "&amp;" => Some("&".to_string()),
        "&quot;" => Some("\"".to_string()),
        _ => match raw.strip_prefix("&#").and_then(|r| r.strip_suffix(';')) {
            Some(hex) if hex.starts_with(['x', 'X']) => numeric(&hex[1..], 16),
            Some(dec) => numeric(dec, 10),
            None => None,
        },
    };
    decoded.unwrap_or_else(|| raw.to_string())
}

/// `s` sanitized and, when longer than `limit` (see [`visible_len`]), cut at the last
/// line break or space that leaves room for `…`, with open tags closed.
pub fn fit(s: &str, limit: usize) -> String {
    let all = pieces(s);
    let total: usize = all.iter().map(units).sum();
    if total <= limit {
        return render(&all);
    }
    // the longest prefix that leaves one unit for the ellipsis
    let mut used = 0;
    let mut end = 0;
    let mut boundary = None;
    for (i, p) in all.iter().enumerate() {
        let u = units(p);
        if used + u > limit.saturating_sub(1) {
            break;
        }
        used += u;
        end = i + 1;
        if matches!(p, Piece::Text { raw, .. } if raw == " " || raw == "\n") {
            boundary = Some(i);
        }
    }
    // a boundary in the last fifth keeps whole words; otherwise cut mid-word
    let cut = match boundary {
        Some(b) if b * 5 >= end * 4 => b,
        _ => end,
    };
    let mut kept: Vec<Piece> = all[..cut].to_vec();
    let mut open: Vec<String> = Vec::new();
    for p in &kept {
        match p {
            Piece::Open { name, .. } => open.push(name.clone()),
            Piece::Close(_) => {
                open.pop();
            }
            Piece::Text { .. } => {}
        }
    }
    kept.push(Piece::Text {
        raw: "…".into(), units: 1
    });
    kept.extend(open.into_iter().rev().map(Piece::Close));
    render(&kept)
}

fn units(p: &Piece) -> usize {
    match p {
        Piece::Text { units, .. } => *units,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_markup_is_shown_not_parsed() {
        assert_eq!(sanitize("<script>alert(1)</script>"), "&lt;script&gt;alert(1)&lt;/script&gt;");
        assert_eq!(sanitize("a < b > c & d"), "a &lt; b &gt; c &amp; d");
        assert_eq!(sanitize("<b>x</i></b>"), "<b>x&lt;/i&gt;</b>");
        assert_eq!(sanitize("<a href=\"https://t.me\">t</a>"), "<a href=\"https://t.me\">t</a>");
        assert_eq!(sanitize("<a onclick=\"x\">t</a>"), "&lt;a onclick=\"x\"&gt;t&lt;/a&gt;");
        assert_eq!(sanitize("<b><i>x</b>"), "<b><i>x&lt;/b&gt;</i></b>");
    }

    #[test]
    fn well_formed_text_is_kept_and_sanitizing_twice_changes_nothing() {
        let text = "<b>$PEPE</b> on bsc &amp; <code>0xabc</code>\n<i>2.5x</i> &lt;3 &#128512;";
        assert_eq!(sanitize(text), text);
        for s in [
            "<b>a",
            "x & y <z>",
            "&bogus; &#; &#x;",
            "<pre><code class=\"language-rust\">x</code></pre>",
        ] {
            let once = sanitize(s);
            assert_eq!(sanitize(&once), once, "{s}");
        }
    }

    #[test]
    fn found_by_fuzzing() {
        // an entity-like `&` followed by a multi-byte character at byte 12 panicked
        let s = "<a&hre.fqs:/<\u{6f7}oampope</a>";
        let once = sanitize(s);
        assert_eq!(sanitize(&once), once, "{s:?} -> {once:?}");
        let cut = fit(s, MAX_CAPTION);
        assert_eq!(sanitize(&cut), cut);
    }

    #[test]
    fn long_texts_are_cut_within_the_limit_with_tags_closed() {
        let long = format!("<b>{}</b>", "word ".repeat(2000));
        let cut = fit(&long, MAX_TEXT);
        assert!(visible_len(&cut) <= MAX_TEXT, "{}", visible_len(&cut));
        assert!(cut.ends_with("…</b>"), "{}", &cut[cut.len() - 20..]);
        assert_eq!(sanitize(&cut), cut);
        let emoji = "😀".repeat(3000);
        assert!(visible_len(&fit(&emoji, MAX_CAPTION)) <= MAX_CAPTION);
        assert_eq!(fit("short", MAX_TEXT), "short");
        assert_eq!(visible_len("&lt;b&gt;"), 3);
    }
}
