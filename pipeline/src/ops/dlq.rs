//! `pipeline dlq`: list dead-lettered messages with their errors, and re-drive chosen
//! ones to where they came from once the cause is fixed.

use async_nats::jetstream::consumer::DeliverPolicy;
use async_nats::HeaderMap;
use herald_schemas::subjects;

use herald_runtime::reader::scan;

/// One dead letter.
#[derive(Debug, Clone)]
pub struct DeadLetterRow {
    /// Sequence in the DLQ stream (what `dlq redrive` takes).
    pub seq: u64,
    pub at: time::OffsetDateTime,
    pub stage: String,
    pub error: String,
    pub original_subject: String,
    pub original_sequence: Option<u64>,
    pub bytes: usize,
    /// The payload's first 120 characters.
    pub preview: String,
}

fn header(h: Option<&HeaderMap>, name: &str) -> String {
    h.and_then(|h| h.get(name)).map(|v| v.to_string()).unwrap_or_default()
}

/// Dead letters, oldest first, optionally of one stage, at most `limit`.
pub async fn list(js: &herald_runtime::Js, stage: Option<&str>, limit: usize) -> anyhow::Result<Vec<DeadLetterRow>> {
    let filter = stage.map(subjects::dead_letter);
    let mut rows = Vec::new();
    scan(js, subjects::DLQ_STREAM, filter.as_deref(), DeliverPolicy::All, async |m| {
        let info = m.info().map_err(|e| anyhow::anyhow!("{e}"))?;
        let h = m.headers.as_ref();
        rows.push(DeadLetterRow {
            seq: info.stream_sequence,
            at: info.published,
            stage: header(h, subjects::HEADER_STAGE),
            error: header(h, subjects::HEADER_ERROR),
            original_subject: header(h, subjects::HEADER_ORIGINAL_SUBJECT),
            original_sequence: header(h, subjects::HEADER_ORIGINAL_SEQUENCE).parse().ok(),
            bytes: m.payload.len(),
            preview: String::from_utf8_lossy(&m.payload).chars().take(120).collect(),
        });
        Ok(rows.len() < limit)
    })
    .await?;
    Ok(rows)
}

/// The rows as text, one dead letter per block.
pub fn render(rows: &[DeadLetterRow]) -> String {
    let mut out = String::new();
    for r in rows {
        let fmt = time::format_description::well_known::Rfc3339;
        out += &format!(
            "#{} {} stage={} from={}{}\n  error: {}\n  payload ({} B): {}\n",
            r.seq,
            r.at.format(&fmt).unwrap_or_default(),
            r.stage,
            r.original_subject,
            r.original_sequence.map(|s| format!(" seq={s}")).unwrap_or_default(),
            r.error,
            r.bytes,
            r.preview
        );
    }
    out += &format!("{} dead letter(s)\n", rows.len());
    out
}

/// Re-publishes dead letter `seq` to its original subject (or `to`), waits for the ack,
/// then deletes it from the DLQ unless `keep`. Returns the subject it went to.
///
/// Errors: no such dead letter; its origin is not a Herald subject (a source's URL)
/// and no `to` was given; the publish failed (the dead letter is kept).
pub async fn redrive(js: &herald_runtime::Js, seq: u64, to: Option<&str>, keep: bool) -> anyhow::Result<String> {
    let stream = js.get_stream(subjects::DLQ_STREAM).await?;
    let m = stream
        .get_raw_message(seq)
        .await
        .map_err(|e| anyhow::anyhow!("dead letter #{seq}: {e}"))?;
    let original = m
        .headers
        .get(subjects::HEADER_ORIGINAL_SUBJECT)
        .map(|v| v.to_string())
        .unwrap_or_default();
    let subject = match to {
        Some(t) => t.to_string(),
        None if original.starts_with("herald.") => original,
        None => anyhow::bail!("dead letter #{seq} came from {original:?}, not a subject; pass --to SUBJECT"),
    };
    let mut headers = herald_runtime::msg_id_headers(&format!("redrive:{seq}"));
    headers.insert("Herald-Redrive-Of", seq.to_string().as_str());
    js.publish_with_headers(subject.clone(), headers, m.payload.clone()).await?.await?;
    if !keep {
        stream.delete_message(seq).await?;
    }
    Ok(subject)
}
