//! `pipeline setup --move-money`: moves the money streams and buckets a deployment made
//! before the durability classes (all on one server) to the money server.
//!
//! Per stream, with nothing running: the money server gets a stream of the same
//! configuration; every message is copied in order, same subject, same headers (the
//! `Nats-Msg-Id` and `Nats-Expected-*` dropped: an empty stream filled once needs no
//! duplicate check, and the conditions named the old stream's sequences); the copy is
//! checked (same count, same last message) and only
//! then is the old stream deleted. A bucket is its `KV_<name>` stream, copied the same
//! way, so keys, values and deletions move with it.

use async_nats::jetstream::{self, stream};
use async_nats::HeaderMap;

use crate::classes::{Class, Js};

/// One stream moved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moved {
    pub stream: String,
    /// Messages copied.
    pub messages: u64,
}

/// Moves every money stream and bucket stream in `names` that exists on the events
/// server (and is not already on the money server) to the money server.
///
/// Errors: the two classes share one server (nothing to move); a target already holds
/// messages (a half-done move: compare and delete one by hand); a copy does not match
/// its source (the source is kept).
pub async fn move_money(js: &Js, names: &[String]) -> anyhow::Result<Vec<Moved>> {
    let (events, money) = (js.events(), js.of(Class::Money)?);
    anyhow::ensure!(
        !crate::setup::same_server(events, money),
        "the events and money classes are on one server: nothing to move"
    );
    let mut moved = Vec::new();
    for name in names {
        let Ok(mut source) = events.get_stream(name).await else {
            continue;
        };
        let info = source.info().await?.clone();
        let target = money
            .get_or_create_stream(stream::Config {
                placement: None,
                ..info.config.clone()
            })
            .await
            .map_err(|e| anyhow::anyhow!("creating {name} on the money server: {e}"))?;
        let mut target_info = target.clone();
        let have = target_info.info().await?.state.messages;
        anyhow::ensure!(
            have == 0,
            "{name} already has {have} messages on the money server: a move was interrupted; compare the two and delete one"
        );
        let copied = copy(money, &source, info.state.first_sequence, info.state.last_sequence).await?;
        let after = target_info.info().await?.state.clone();
        anyhow::ensure!(
            after.messages == info.state.messages && copied == info.state.messages,
            "{name}: copied {copied} of {} messages ({} on the money server); the source is kept",
            info.state.messages,
            after.messages
        );
        if info.state.messages > 0 {
            let last_old = source.get_raw_message(info.state.last_sequence).await?;
            let last_new = target.get_raw_message(after.last_sequence).await?;
            anyhow::ensure!(
                last_old.payload == last_new.payload && last_old.subject == last_new.subject,
                "{name}: the copy's last message differs from the source's; the source is kept"
            );
        }
        events
            .delete_stream(name)
            .await
            .map_err(|e| anyhow::anyhow!("deleting {name} from the events server: {e}"))?;
        tracing::info!(stream = %name, messages = copied, "moved to the money server");
        moved.push(Moved {
            stream: name.clone(),
            messages: copied,
        });
    }
    Ok(moved)
}

/// Copies messages `first..=last` of `source` (skipping deleted ones) to `money` in
/// order, each acknowledged before the next.
async fn copy(money: &jetstream::Context, source: &stream::Stream, first: u64, last: u64) -> anyhow::Result<u64> {
    let mut copied = 0;
    for seq in first.max(1)..=last {
        let Ok(m) = source.get_raw_message(seq).await else {
            continue; // deleted from the source
        };
        let mut headers = HeaderMap::new();
        for (name, values) in m.headers.iter() {
            let key: &str = name.as_ref();
            if key.starts_with("Nats-Expected") || key == "Nats-Msg-Id" {
                continue;
            }
            for v in values {
                headers.append(name.clone(), v.clone());
            }
        }
        money
            .publish_with_headers(m.subject.clone(), headers, m.payload.clone())
            .await?
            .await
            .map_err(|e| anyhow::anyhow!("copying {} #{seq}: {e}", source.cached_info().config.name))?;
        copied += 1;
    }
    Ok(copied)
}
