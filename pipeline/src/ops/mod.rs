//! Operator tools behind `pipeline replay`, `pipeline streams` and `pipeline dlq`.
//! They read the same stream definitions as `pipeline setup`; the streams stay plain
//! JetStream streams, usable from the standard `nats` CLI too.

pub mod dlq;
pub mod replay;
pub mod streams;

/// Parses a point in time: RFC 3339 (`2026-11-20T23:00:00Z`) or an age before now
/// (`90s`, `15m`, `2h`, `7d`).
pub fn parse_time(s: &str) -> anyhow::Result<time::OffsetDateTime> {
    let s = s.trim();
    if let Ok(t) = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339) {
        return Ok(t);
    }
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = num
        .parse()
        .map_err(|_| anyhow::anyhow!("not a time: {s:?} (RFC 3339, or an age like 15m, 2h, 7d)"))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => anyhow::bail!("not a time: {s:?} (RFC 3339, or an age like 15m, 2h, 7d)"),
    };
    Ok(time::OffsetDateTime::now_utc() - time::Duration::seconds(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_absolute_and_relative() {
        let t = parse_time("2026-11-20T23:00:00Z").unwrap();
        assert_eq!(t.unix_timestamp(), 1_795_215_600);
        let ago = time::OffsetDateTime::now_utc() - parse_time("15m").unwrap();
        assert!((ago.whole_seconds() - 900).abs() <= 2);
        assert!(parse_time("yesterday").is_err());
        assert!(parse_time("5y").is_err());
    }
}
