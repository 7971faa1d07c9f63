//! Durability classes: where each stream, KV bucket and subject is stored.
//!
//! `sync_interval` is a nats-server setting, not a stream's, so Herald runs two servers:
//! the **money** server fsyncs every write before its ack (`nats/nats-money.conf`,
//! `sync_interval: always`), the **events** server flushes on nats-server's default
//! timer (`nats/nats-server.conf`). A stream declares its class in its definition
//! (`"metadata": {"herald.class": "money"}` in `nats/streams/*.json`), a bucket in its
//! [`crate::setup::BucketDef`]. [`Classes`] is the table built from those definitions;
//! [`Js`] is a JetStream handle on both servers that sends each request to its class's
//! server, so stage code names streams and subjects, never servers.
//!
//! Why two servers and not one cluster with placement tags: `docs/operations.md`
//! ("Durability classes").

use std::collections::BTreeSet;
use std::sync::Arc;

use async_nats::jetstream::{self, context::PublishAckFuture, kv, object_store, stream};
use async_nats::HeaderMap;

use crate::setup::{BucketDef, StreamDef};

/// The metadata key a stream definition declares its class under.
pub const CLASS_KEY: &str = "herald.class";

/// How a stream or bucket is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Class {
    /// Flushed on the server's timer (2 minutes by default): a power failure can lose
    /// the last acknowledged writes. Signals, chat, trivia, Telegram traffic.
    #[default]
    Events,
    /// fsync'd before the ack (`sync_interval: always`): what would lose or repeat money
    /// if lost (the ledger, deposits, the lottery's journal, paid access, ...).
    Money,
}

impl Class {
    /// `events` or `money`, as written in definitions, metrics and `/readyz`.
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Events => "events",
            Class::Money => "money",
        }
    }
}

impl std::str::FromStr for Class {
    type Err = String;

    /// `"events"` or `"money"`.
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "events" => Ok(Class::Events),
            "money" => Ok(Class::Money),
            other => Err(format!("unknown durability class {other:?} (events or money)")),
        }
    }
}

impl std::fmt::Display for Class {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which class each stream, bucket and subject belongs to. Anything not declared money
/// is events.
///
/// ```
/// use herald_runtime::classes::{Class, Classes};
/// use herald_runtime::setup::{BucketDef, StreamDef};
/// let ledger = StreamDef { file: "ledger.json", json: r#"{"name": "LEDGER", "subjects": ["herald.ledger.>"],
///     "retention": "limits", "storage": "file", "discard": "old", "num_replicas": 1, "metadata": {"herald.class": "money"}}"# };
/// let classes = Classes::from_definitions(&[ledger], &[BucketDef::forever("herald_access").money()]).unwrap();
/// assert_eq!(classes.of_subject("herald.ledger.42"), Class::Money);
/// assert_eq!(classes.of_subject("herald.out.reply.42"), Class::Events);
/// assert_eq!(classes.of_stream("KV_herald_access"), Class::Money);
/// assert_eq!(classes.of_bucket("herald_users"), Class::Events);
/// ```
#[derive(Debug, Clone, Default)]
pub struct Classes {
    money_streams: BTreeSet<String>,
    money_buckets: BTreeSet<String>,
    /// Subject filters of the money streams and buckets (`herald.ledger.>`, `$KV.herald_access.>`).
    money_filters: Vec<String>,
}

impl Classes {
    /// The table of `streams` and `buckets`.
    ///
    /// Errors: a stream definition does not parse or declares no class (every stream
    /// must say which it is, so a new one cannot land on the wrong server by default).
    pub fn from_definitions(streams: &[StreamDef], buckets: &[BucketDef]) -> anyhow::Result<Self> {
        let mut classes = Classes::default();
        for def in streams {
            let config = def.config()?;
            if def.class()? == Class::Money {
                classes.money_filters.extend(config.subjects.iter().cloned());
                classes.money_streams.insert(config.name);
            }
        }
        for bucket in buckets.iter().filter(|b| b.class == Class::Money) {
            classes.money_buckets.insert(bucket.name.to_string());
            classes.money_filters.push(format!("$KV.{}.>", bucket.name));
        }
        Ok(classes)
    }

    /// True if something is declared money.
    pub fn has_money(&self) -> bool {
        !self.money_streams.is_empty() || !self.money_buckets.is_empty()
    }

    /// The class of stream `name` (a bucket's stream is `KV_<bucket>`).
    pub fn of_stream(&self, name: &str) -> Class {
        match name.strip_prefix("KV_") {
            Some(bucket) if self.money_buckets.contains(bucket) => Class::Money,
            _ if self.money_streams.contains(name) => Class::Money,
            _ => Class::Events,
        }
    }

    /// The class of KV bucket `name`.
    pub fn of_bucket(&self, name: &str) -> Class {
        match self.money_buckets.contains(name) {
            true => Class::Money,
            false => Class::Events,
        }
    }

    /// The class of the stream that stores a publish on `subject`.
    pub fn of_subject(&self, subject: &str) -> Class {
        match self.money_filters.iter().any(|f| subject_matches(f, subject)) {
            true => Class::Money,
            false => Class::Events,
        }
    }

    /// Money streams and bucket streams (`KV_<bucket>`), sorted: what the money server
    /// must hold.
    pub fn money_stream_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.money_streams.iter().cloned().collect();
        names.extend(self.money_buckets.iter().map(|b| format!("KV_{b}")));
        names.sort();
        names
    }
}

/// NATS subject matching: `*` matches one token, a final `>` one or more.
///
/// ```
/// use herald_runtime::classes::subject_matches;
/// assert!(subject_matches("herald.ledger.>", "herald.ledger.42"));
/// assert!(!subject_matches("herald.ledger.>", "herald.ledger"));
/// assert!(subject_matches("a.*.c", "a.b.c"));
/// assert!(!subject_matches("a.*.c", "a.b.d"));
/// ```
pub fn subject_matches(filter: &str, subject: &str) -> bool {
    let mut subject = subject.split('.');
    for token in filter.split('.') {
        match (token, subject.next()) {
            (">", Some(_)) => return true,
            ("*", Some(_)) => {}
            (t, Some(s)) if t == s => {}
            _ => return false,
        }
    }
    subject.next().is_none()
}

/// JetStream on Herald's two servers: each call goes to the server of the class its
/// stream, bucket or subject belongs to ([`Classes`]). Cheap to clone.
///
/// A process with no money in its definitions (the bot) has no money server; asking it
/// for a money stream is an error, not a silent write to the events server.
///
/// ```no_run
/// # async fn demo(js: herald_runtime::Js) -> anyhow::Result<()> {
/// // the LEDGER stream is declared money: this goes to the money server
/// js.publish("herald.ledger.42", "{}".into()).await?.await?;
/// // OUTBOUND is events
/// js.publish("herald.out.reply.42", "{}".into()).await?.await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Js(Arc<Servers>);

/// What a [`Js`] shares: cloned per message by the stage runner, so one reference count
/// (a `jetstream::Context` clone copies its API prefix string).
struct Servers {
    events: jetstream::Context,
    money: Option<jetstream::Context>,
    classes: Classes,
}

impl std::fmt::Debug for Js {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Js")
            .field("money_server", &self.0.money.is_some())
            .field("classes", &self.0.classes)
            .finish()
    }
}

impl Js {
    /// Both classes' servers.
    pub fn new(events: jetstream::Context, money: Option<jetstream::Context>, classes: Classes) -> Self {
        Js(Arc::new(Servers { events, money, classes }))
    }

    /// Everything on one server (tests of one stage, operator tools pointed at one
    /// server): the table is kept, so a money request is still known as one.
    pub fn one_server(context: jetstream::Context, classes: Classes) -> Self {
        Js::new(context.clone(), Some(context), classes)
    }

    /// The routing table.
    pub fn classes(&self) -> &Classes {
        &self.0.classes
    }

    /// The events server's context.
    pub fn events(&self) -> &jetstream::Context {
        &self.0.events
    }

    /// The context serving `class`.
    ///
    /// Errors: money asked of a process connected to no money server.
    pub fn of(&self, class: Class) -> anyhow::Result<&jetstream::Context> {
        match class {
            Class::Events => Ok(&self.0.events),
            Class::Money => self
                .0
                .money
                .as_ref()
                .ok_or_else(|| anyhow::anyhow!("this process has no money server (--nats-money-url)")),
        }
    }

    /// The context of stream `name`'s class.
    pub fn for_stream(&self, name: &str) -> anyhow::Result<&jetstream::Context> {
        self.of(self.0.classes.of_stream(name))
    }

    /// The context of the stream that stores `subject`.
    pub fn for_subject(&self, subject: &str) -> anyhow::Result<&jetstream::Context> {
        self.of(self.0.classes.of_subject(subject))
    }

    /// Stream `name`, from its class's server.
    ///
    /// Errors: no such stream there, or the server cannot be reached.
    pub async fn get_stream(&self, name: impl AsRef<str>) -> anyhow::Result<stream::Stream> {
        let name = name.as_ref();
        Ok(self.for_stream(name)?.get_stream(name).await?)
    }

    /// KV bucket `name`, from its class's server.
    ///
    /// Errors: no such bucket there, or the server cannot be reached.
    pub async fn get_key_value(&self, name: impl AsRef<str>) -> anyhow::Result<kv::Store> {
        let name = name.as_ref();
        Ok(self.of(self.0.classes.of_bucket(name))?.get_key_value(name).await?)
    }

    /// Object store `name` (always events: bundles and question banks can be rebuilt).
    ///
    /// Errors: no such store, or the server cannot be reached.
    pub async fn get_object_store(&self, name: impl AsRef<str>) -> anyhow::Result<object_store::ObjectStore> {
        Ok(self.0.events.get_object_store(name.as_ref()).await?)
    }

    /// Creates object store `config.bucket` on the events server.
    ///
    /// Errors: NATS refused it.
    pub async fn create_object_store(&self, config: object_store::Config) -> anyhow::Result<object_store::ObjectStore> {
        Ok(self.0.events.create_object_store(config).await?)
    }

    /// Publishes `payload` on `subject` to its class's server; await the returned future
    /// for the stream's ack.
    ///
    /// Errors: money subject without a money server, or the publish failed.
    pub async fn publish(&self, subject: impl Into<async_nats::Subject>, payload: bytes::Bytes) -> anyhow::Result<PublishAckFuture> {
        let subject = subject.into();
        Ok(self.for_subject(&subject)?.publish(subject, payload).await?)
    }

    /// [`Js::publish`] under message id `id` (`Nats-Msg-Id`): the stream stores one
    /// message per id within its duplicate window, so publishing again after a crash or
    /// a lost ack stores nothing twice. The one way Herald publishes with an id.
    ///
    /// ```no_run
    /// # async fn demo(js: herald_runtime::Js) -> anyhow::Result<()> {
    /// let ack = js.publish_with_id("herald.updates.message.42", "update:7001", "{}".into()).await?.await?;
    /// println!("stored at {}, duplicate: {}", ack.sequence, ack.duplicate);
    /// # Ok(()) }
    /// ```
    ///
    /// Errors: as [`Js::publish`].
    pub async fn publish_with_id(
        &self,
        subject: impl Into<async_nats::Subject>,
        id: &str,
        payload: bytes::Bytes,
    ) -> anyhow::Result<PublishAckFuture> {
        self.publish_with_headers(subject, msg_id_headers(id), payload).await
    }

    /// [`Js::publish`] with headers (`Nats-Msg-Id`, expected sequences).
    ///
    /// Errors: as [`Js::publish`].
    pub async fn publish_with_headers(
        &self,
        subject: impl Into<async_nats::Subject>,
        headers: HeaderMap,
        payload: bytes::Bytes,
    ) -> anyhow::Result<PublishAckFuture> {
        let subject = subject.into();
        Ok(self.for_subject(&subject)?.publish_with_headers(subject, headers, payload).await?)
    }

    /// Keeps a `/readyz` dependency per class (`nats events server`, `nats money
    /// server`) up to date: a PING answered within 2 s, every second, until `shutdown`.
    /// A class's server down marks only that class missing; the other goes on.
    pub fn watch_servers(&self, ready: &crate::telemetry::Readiness, shutdown: tokio_util::sync::CancellationToken) {
        for (class, server) in self.servers() {
            let name = match class {
                Class::Events => "nats events server",
                Class::Money => "nats money server",
            };
            let dependency = ready.dependency(name);
            let client = server.client();
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                while !shutdown.is_cancelled() {
                    let up = matches!(
                        tokio::time::timeout(std::time::Duration::from_secs(2), client.flush()).await,
                        Ok(Ok(()))
                    );
                    dependency.set(up);
                    tokio::select! {
                        _ = shutdown.cancelled() => {}
                        _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                    }
                }
            });
        }
    }

    /// Each class's server, with the class: events first, then money if it is another
    /// connection.
    pub fn servers(&self) -> Vec<(Class, &jetstream::Context)> {
        let mut out = vec![(Class::Events, &self.0.events)];
        if let Some(money) = &self.0.money {
            out.push((Class::Money, money));
        }
        out
    }
}

/// Headers holding `Nats-Msg-Id: id`: the stream stores a message with that id once
/// within its duplicate window. Every publish with a message id builds its headers here.
///
/// ```
/// let h = herald_runtime::msg_id_headers("route:42");
/// assert_eq!(h.get(async_nats::header::NATS_MESSAGE_ID).unwrap().as_str(), "route:42");
/// ```
pub fn msg_id_headers(id: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(async_nats::header::NATS_MESSAGE_ID, id);
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching_follows_nats_rules() {
        assert!(subject_matches(">", "a"));
        assert!(subject_matches("a.>", "a.b.c"));
        assert!(!subject_matches("a.>", "b.c"));
        assert!(!subject_matches("a.b", "a.b.c"));
        assert!(!subject_matches("a.b.c", "a.b"));
        assert!(subject_matches("$KV.x.>", "$KV.x.key"));
    }

    #[test]
    fn an_undeclared_stream_is_an_error() {
        let def = StreamDef {
            file: "x.json",
            json: r#"{"name": "X", "subjects": ["x.>"], "retention": "limits", "storage": "file", "discard": "old", "num_replicas": 1}"#,
        };
        let err = Classes::from_definitions(&[def], &[]).unwrap_err().to_string();
        assert!(err.contains("x.json") && err.contains("herald.class"), "{err}");
    }
}
