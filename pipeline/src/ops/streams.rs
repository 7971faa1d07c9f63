//! `pipeline streams`: a status table of every Herald stream and its consumers.

use std::time::Duration;

use futures::TryStreamExt;

/// One consumer's state.
#[derive(Debug, Clone)]
pub struct ConsumerRow {
    pub name: String,
    /// Messages not yet delivered.
    pub pending: u64,
    /// Delivered, not yet acknowledged.
    pub ack_pending: usize,
    /// Messages delivered more than once (currently outstanding).
    pub redelivered: usize,
    /// Age of the first message above the ack floor, while any is unacknowledged.
    pub oldest_unacked: Option<Duration>,
}

/// One stream's state.
#[derive(Debug, Clone)]
pub struct StreamRow {
    pub name: String,
    /// Its durability class: which server holds it.
    pub class: herald_runtime::Class,
    pub messages: u64,
    pub bytes: u64,
    pub first_seq: u64,
    pub last_seq: u64,
    pub consumers: Vec<ConsumerRow>,
}

/// Every stream of `definitions` (the deployment's, `app::compose::definitions_of_all`)
/// that exists on the server, with consumers.
pub async fn status(js: &herald_runtime::Js, definitions: &[herald_runtime::setup::StreamDef]) -> anyhow::Result<Vec<StreamRow>> {
    let mut rows = Vec::new();
    for cfg in herald_runtime::setup::stream_configs(definitions)? {
        let Ok(mut stream) = js.get_stream(&cfg.name).await else { continue };
        let state = stream.info().await?.state.clone();
        let mut consumers = Vec::new();
        let infos: Vec<_> = stream.consumers().try_collect().await?;
        for c in infos {
            let oldest_unacked = if c.num_ack_pending > 0 {
                match stream.get_raw_message(c.ack_floor.stream_sequence + 1).await {
                    Ok(m) => Some((time::OffsetDateTime::now_utc() - m.time).unsigned_abs()),
                    Err(_) => None,
                }
            } else {
                None
            };
            consumers.push(ConsumerRow {
                name: c.name.clone(),
                pending: c.num_pending,
                ack_pending: c.num_ack_pending,
                redelivered: c.num_redelivered,
                oldest_unacked,
            });
        }
        consumers.sort_by(|a, b| a.name.cmp(&b.name));
        rows.push(StreamRow {
            name: cfg.name.clone(),
            class: js.classes().of_stream(&cfg.name),
            messages: state.messages,
            bytes: state.bytes,
            first_seq: state.first_sequence,
            last_seq: state.last_sequence,
            consumers,
        });
    }
    Ok(rows)
}

/// The rows as an aligned text table.
pub fn render(rows: &[StreamRow]) -> String {
    let mut out = format!(
        "{:<10} {:<6} {:>10} {:>12} {:>10} {:>10}\n",
        "STREAM", "CLASS", "MESSAGES", "BYTES", "FIRST", "LAST"
    );
    for r in rows {
        out += &format!(
            "{:<10} {:<6} {:>10} {:>12} {:>10} {:>10}\n",
            r.name,
            r.class.as_str(),
            r.messages,
            r.bytes,
            r.first_seq,
            r.last_seq
        );
        for c in &r.consumers {
            let age = c
                .oldest_unacked
                .map(|d| format!("{:.1}s", d.as_secs_f64()))
                .unwrap_or_else(|| "-".into());
            out += &format!(
                "  consumer {:<14} pending {:>8}  unacked {:>6}  redelivered {:>6}  oldest unacked {age}\n",
                c.name, c.pending, c.ack_pending, c.redelivered
            );
        }
    }
    out
}
