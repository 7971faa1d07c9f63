//! Publishing to the dead-letter stream.

use async_nats::HeaderMap;
use herald_schemas::subjects;

use crate::classes::Js;

/// A message that cannot be processed, with why and where it came from.
#[derive(Debug, Clone)]
pub struct DeadLetter<'a> {
    /// Stage (or source) that gave up, e.g. `dedup`, `feed`.
    pub stage: &'a str,
    /// Human-readable reason, e.g. `malformed payload: missing field 'token'`.
    pub error: &'a str,
    /// Subject the message was consumed from (or the source's URL).
    pub original_subject: &'a str,
    /// Stream sequence of the original message, if it was in a stream.
    pub original_sequence: Option<u64>,
    /// The original payload, unchanged (truncated to 1 MiB minus headers, NATS's limit).
    pub payload: &'a [u8],
}

/// Publishes `letter` on `herald.dlq.<stage>` and waits for the stream's ack.
///
/// Errors: the publish or its ack failed (the caller must not ack the original then).
pub async fn dead_letter(js: &Js, letter: DeadLetter<'_>) -> anyhow::Result<()> {
    let mut headers = HeaderMap::new();
    headers.insert(subjects::HEADER_STAGE, letter.stage);
    // Header values cannot hold newlines.
    headers.insert(subjects::HEADER_ERROR, letter.error.replace(['\r', '\n'], " ").as_str());
    headers.insert(subjects::HEADER_ORIGINAL_SUBJECT, letter.original_subject);
    if let Some(seq) = letter.original_sequence {
        headers.insert(subjects::HEADER_ORIGINAL_SEQUENCE, seq.to_string().as_str());
        // A redelivered poison message dead-letters once.
        headers.insert(
            async_nats::header::NATS_MESSAGE_ID,
            format!("{}:{}", letter.original_subject, seq).as_str(),
        );
    }
    const MAX: usize = 1024 * 1024 - 4096;
    let body = &letter.payload[..letter.payload.len().min(MAX)];
    js.publish_with_headers(subjects::dead_letter(letter.stage), headers, bytes::Bytes::copy_from_slice(body))
        .await?
        .await?;
    metrics::counter!(crate::metric::DEAD_LETTERED.name, "stage" => letter.stage.to_string()).increment(1);
    tracing::warn!(
        stage = letter.stage,
        error = letter.error,
        subject = letter.original_subject,
        "dead-lettered"
    );
    Ok(())
}
