//! Telegram's HTML parse mode as the Bot API applies it (core.telegram.org/bots/api#html-style):
//! a text whose markup it cannot parse is refused with `400 Bad Request: can't parse
//! entities: ...`, and the length limits count the text after parsing. Written apart
//! from Herald's own sanitizer, so that the tests check one against the other.

/// Tags the Bot API supports.
const SUPPORTED: &[&str] = &[
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

/// The text's length after entity parsing (UTF-16 code units), or Telegram's refusal.
pub fn parse_html(text: &str) -> Result<usize, String> {
    let mut open: Vec<String> = Vec::new();
    let mut len = 0;
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'<' => {
                let end = text[i..]
                    .find('>')
                    .ok_or_else(|| format!("can't parse entities: Unclosed start tag at byte offset {i}"))?;
                let inner = &text[i + 1..i + end];
                if let Some(name) = inner.strip_prefix('/') {
                    let name = name.trim().to_ascii_lowercase();
                    if open.pop().as_deref() != Some(name.as_str()) {
                        return Err(format!("can't parse entities: Unexpected end tag at byte offset {i}"));
                    }
                } else {
                    let name = inner.split_whitespace().next().unwrap_or_default().to_ascii_lowercase();
                    if !SUPPORTED.contains(&name.as_str()) {
                        return Err(format!("can't parse entities: Unsupported start tag \"{name}\" at byte offset {i}"));
                    }
                    open.push(name);
                }
                i += end + 1;
            }
            b'&' => {
                let end = text[i..].find(';').filter(|e| *e <= 10);
                let known = end.is_some_and(|e| {
                    let body = &text[i + 1..i + e];
                    matches!(body, "lt" | "gt" | "amp" | "quot") || body.starts_with('#')
                });
                if !known {
                    // Telegram takes an unknown `&...;` literally, but a bare `&` before a
                    // name it knows nothing of is refused
                    return Err(format!("can't parse entities: Character entity expected at byte offset {i}"));
                }
                len += 1;
                i += end.unwrap_or(0) + 1;
            }
            _ => {
                let c = text[i..].chars().next().unwrap_or_default();
                len += c.len_utf16();
                i += c.len_utf8();
            }
        }
    }
    match open.last() {
        Some(tag) => Err(format!(
            "can't parse entities: Can't find end tag corresponding to start tag \"{tag}\""
        )),
        None => Ok(len),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_the_bot_api() {
        assert_eq!(parse_html("<b>hi</b> &lt;3"), Ok(5));
        assert!(parse_html("<script>x</script>")
            .unwrap_err()
            .contains("Unsupported start tag \"script\""));
        assert!(parse_html("<b>open").unwrap_err().contains("end tag"));
        assert!(parse_html("a & b").is_err());
        assert_eq!(parse_html("😀"), Ok(2));
    }
}
