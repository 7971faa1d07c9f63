//! The product trait: what a product (signals, payments, ...) gives the core.
//!
//! A product lives in one folder under `products/`. It plugs in with one line in
//! [`crate::products`]'s registry: its [`Registration`] (its name, its `pipeline run`
//! flags, and how to build it from them). Built, it is a [`Product`]: the commands,
//! callback prefixes and update kinds the router hands it, its streams and buckets, and
//! its stages and tasks.

use futures::future::BoxFuture;
use herald_runtime::config::{RedisArgs, ServersArgs};

use super::limits::Limit;
use herald_runtime::setup::{BucketDef, StreamDef};
use herald_runtime::telemetry::Readiness;
use herald_runtime::{StageConfig, StageHandle};
use herald_schemas::{LegacyUser, MenuCommand, User};
use tokio_util::sync::CancellationToken;

/// A product's stream definition: `stream_def!("signals.calls.json")` embeds
/// `nats/streams/signals.calls.json` as a [`StreamDef`].
#[macro_export]
macro_rules! stream_def {
    ($file:literal) => {
        herald_runtime::setup::StreamDef {
            file: $file,
            json: include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../nats/streams/", $file)),
        }
    };
}

/// A valid routed command from user 1 (`text`, e.g. `/pause`): a product's sample input
/// for the compliance harness.
pub fn sample_command(text: &str) -> Vec<u8> {
    let update = serde_json::json!({"update_id": 1, "message": {"message_id": 1, "date": 1,
        "chat": {"id": 1, "type": "private"}, "from": {"id": 1, "is_bot": false, "first_name": "S"}, "text": text}});
    herald_schemas::encode(&herald_schemas::RoutedUpdate {
        v: 1,
        update_id: 1,
        kind: "message".into(),
        user_id: Some(1),
        chat_id: Some(1),
        command: Some(text.into()),
        callback_data: None,
        message_id: None,
        admin: false,
        update,
        received_ms: 0,
    })
}

/// How a product enters the registry.
///
/// ```
/// # use herald_pipeline::core::product::Registration;
/// # fn demo(reg: &Registration) {
/// let cmd = (reg.args)(clap::Command::new("run")); // the product's flags added
/// # }
/// ```
pub struct Registration {
    /// The product's name: `--products` lists it; its routed subjects are
    /// `herald.cmd.<name>.>`.
    pub name: &'static str,
    /// Adds the product's flags to `pipeline run` (`clap::Args::augment_args` of its
    /// own flags struct).
    pub args: fn(clap::Command) -> clap::Command,
    /// Builds the product from the parsed flags; `Ok(None)` when its flags turn it off
    /// (payments without a deposit xpub).
    ///
    /// Errors: a flag does not parse.
    pub build: Build,
    /// Products it needs in the same deployment (the lottery is paid from deposits:
    /// `&["payments"]`). Composition refuses a `--products` list that names it without
    /// them, and leaves it out, with a warning, when their flags turn them off.
    pub requires: &'static [&'static str],
    /// Its operator commands, `pipeline <name> …`, if it has any.
    pub operator: Option<Operator>,
}

/// A product's operator commands, `pipeline <product> …`: its own `clap::Subcommand`
/// enum and how to run what was parsed. The registry adds them to the command line.
///
/// ```no_run
/// # use herald_pipeline::core::product::Operator;
/// // pipeline trivia import FILE
/// let op: Operator = herald_pipeline::products::trivia::operator::OPERATOR;
/// let cmd = (op.command)(clap::Command::new("trivia").about(op.about));
/// # let _ = cmd;
/// ```
#[derive(Clone, Copy)]
pub struct Operator {
    /// The product's subcommand's help line.
    pub about: &'static str,
    /// Adds the subcommands (`Subcommand::augment_subcommands` of its enum).
    pub command: fn(clap::Command) -> clap::Command,
    /// Runs the parsed subcommand (the matches of `pipeline <product>`), connecting to
    /// NATS with the deployment's durability classes when it needs to.
    pub run: fn(clap::ArgMatches, herald_runtime::classes::Classes) -> BoxFuture<'static, anyhow::Result<()>>,
}

/// How a [`Registration`] builds its product from the parsed flags.
pub type Build = fn(&clap::ArgMatches) -> anyhow::Result<Option<Box<dyn Product>>>;

/// A running product's part: what it answers and what it runs.
pub trait Product: Send + Sync + 'static {
    /// The registration name.
    fn name(&self) -> &'static str;

    /// Its commands, from its `BotCommands` enum (`Enum::bot_commands()`): the router
    /// hands them to this product; `/help` and Telegram's menu list them.
    fn commands(&self) -> Vec<MenuCommand> {
        Vec::new()
    }

    /// More `/help` text (HTML) after the command list: examples, arguments.
    fn help(&self) -> Option<String> {
        None
    }

    /// Those of its commands that also work in groups (`trivia`): the router hands a
    /// group's `/trivia` to this product with the group as the chat, and the sender
    /// needs no `/start` first.
    fn group_commands(&self) -> &'static [&'static str] {
        &[]
    }

    /// Callback-data prefixes of its buttons (`f:`); the router hands presses to it.
    fn callback_prefixes(&self) -> &'static [&'static str] {
        &[]
    }

    /// Update kinds it takes whole (`channel_post`).
    fn update_kinds(&self) -> &'static [&'static str] {
        &[]
    }

    /// `/admin` subcommands it answers (`coupon`, `stats`); the router checks the admin
    /// ids before any of them.
    fn admin_commands(&self) -> &'static [&'static str] {
        &[]
    }

    /// The per-user inbound limit of its updates (overridden by `--inbound-limit`).
    fn inbound_limit(&self) -> Option<Limit> {
        None
    }

    /// What a new user's `/start` adds: a line of the welcome, and paid access to
    /// grant (a trial), written by the router with the new user.
    fn welcome(&self, _user: &User, _now_ms: u64) -> Welcome {
        Welcome::default()
    }

    /// Takes this product's part of a user record written before the core record was
    /// split (version 1 of `herald_users`) into its own bucket, if it has none there
    /// yet. Run by the migration before the record is rewritten as a core record, so
    /// it must be idempotent.
    ///
    /// Errors: KV unreachable.
    fn adopt_legacy<'a>(&'a self, _js: &'a herald_runtime::Js, _legacy: &'a LegacyUser) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async { Ok(()) })
    }

    /// Its streams (`nats/streams/<product>.*.json`).
    fn streams(&self) -> Vec<StreamDef> {
        Vec::new()
    }

    /// Its KV buckets.
    fn buckets(&self) -> Vec<BucketDef> {
        Vec::new()
    }

    /// The consumers of its stages (stream, durable name, filter, order), as `start`
    /// runs them with the default in-flight bound: `pipeline setup` reports existing
    /// consumers whose settings drifted from these.
    fn consumers(&self) -> Vec<StageConfig> {
        Vec::new()
    }

    /// Its metrics (its `metrics::ALL`): described at start, so `/metrics` explains them.
    fn metrics(&self) -> &'static [herald_runtime::metric::Metric] {
        &[]
    }

    /// Its section of `/admin stats` (HTML, a bold title line first; what users typed
    /// escaped): its figures for today (since 00:00 UTC) and now. `None`: it has none.
    /// Read only; called by the core's desk with `env`.
    ///
    /// Errors: a store is unreachable (the desk prints the error in its place).
    fn stats<'a>(&'a self, _env: &'a StatsEnv) -> BoxFuture<'a, anyhow::Result<Option<String>>> {
        Box::pin(async { Ok(None) })
    }

    /// The broadcast segments it declares: (name, what it holds), e.g. `("lottery",
    /// "lottery players")`; `/admin broadcast NAME` sends to [`Product::segment`].
    fn segments(&self) -> &'static [(&'static str, &'static str)] {
        &[]
    }

    /// The user ids of its segment `name` (one of [`Product::segments`]); the desk keeps
    /// those who are reachable.
    ///
    /// Errors: a store is unreachable.
    fn segment<'a>(&'a self, _name: &'a str, _env: &'a StatsEnv) -> BoxFuture<'a, anyhow::Result<Vec<i64>>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    /// Runs every parser of user input it has (commands, arguments, callback data) on
    /// `text`, asserting its own invariants on what parses: the fuzz target `commands`
    /// calls it for every registered product. Must not panic on any input unless an
    /// invariant breaks.
    fn check_parsers(&self, _text: &str) {}

    /// Writes what its stages' samples (see [`herald_runtime::StageHandle::with_sample`])
    /// need to be processed, not refused: the compliance harness runs it before
    /// starting the stages (the trivia scorer's sample answers a game that must exist).
    ///
    /// Errors: NATS failed.
    fn seed_samples<'a>(&'a self, _js: &'a herald_runtime::Js) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async { Ok(()) })
    }

    /// Builds its stages and starts its other tasks (sources, periodic work) on `ctx`.
    /// The stages are returned, not run: `pipeline run` runs them, the compliance
    /// harness runs them with faults injected.
    ///
    /// Errors: a store or connection cannot be opened.
    fn start<'a>(&'a self, ctx: &'a mut Ctx) -> BoxFuture<'a, anyhow::Result<Vec<StageHandle>>>;
}

/// What a product's [`Product::stats`] reads with.
pub struct StatsEnv {
    /// JetStream on both durability classes' servers.
    pub js: herald_runtime::Js,
    /// Redis, when the deployment has it.
    pub redis: Option<redis::aio::ConnectionManager>,
    /// Now, ms since epoch (today starts at [`herald_runtime::reader::today_start_ms`]).
    pub now_ms: u64,
}

impl StatsEnv {
    /// The start of today (00:00 UTC), ms since epoch.
    pub fn today_ms(&self) -> u64 {
        herald_runtime::reader::today_start_ms(self.now_ms)
    }

    /// How many messages of `stream` on `filter` were stored today.
    ///
    /// Errors: the stream is missing or NATS failed.
    pub async fn count_today(&self, stream: &str, filter: &str) -> anyhow::Result<u64> {
        herald_runtime::reader::count(&self.js, stream, Some(filter), herald_runtime::reader::since(self.today_ms())).await
    }

    /// Redis, or an error saying the deployment has none.
    ///
    /// Errors: no Redis.
    pub fn redis(&self) -> anyhow::Result<redis::aio::ConnectionManager> {
        self.redis.clone().ok_or_else(|| anyhow::anyhow!("no Redis in this deployment"))
    }
}

/// A product's part of a new user's `/start`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Welcome {
    /// A line of the welcome text (HTML).
    pub line: Option<String>,
    /// Paid access until then (ms since epoch), unless the user has access already.
    pub paid_until_ms: Option<u64>,
}

/// What a product starts with: connections, the shutdown signal, its tasks.
pub struct Ctx {
    pub nats: ServersArgs,
    pub redis: RedisArgs,
    /// The process's JetStream on both durability classes' servers (stages get their
    /// own connections, see [`Ctx::connect`]).
    pub js: herald_runtime::Js,
    pub shutdown: CancellationToken,
    pub ready: Readiness,
    /// Messages each stage processes at once.
    pub max_in_flight: usize,
    /// `--stages`: the stages and tasks this process runs (empty = all).
    pub only: Vec<String>,
    /// Names of the products running in this deployment.
    pub products: Vec<&'static str>,
    /// `--admin-ids`: who is told when something needs a human (a refused settlement).
    pub admins: Vec<i64>,
    /// Tasks besides stages (sources, periodic work), awaited by `pipeline run`.
    pub tasks: tokio::task::JoinSet<anyhow::Result<()>>,
    connections: Vec<herald_runtime::Js>,
}

impl Ctx {
    /// A context on `js`, with 256 messages in flight per stage, every stage wanted and
    /// no product named yet.
    pub fn new(nats: ServersArgs, redis: RedisArgs, js: herald_runtime::Js, shutdown: CancellationToken) -> Self {
        Ctx {
            nats,
            redis,
            js,
            shutdown,
            ready: Readiness::default(),
            max_in_flight: 256,
            only: Vec::new(),
            products: Vec::new(),
            admins: Vec::new(),
            tasks: tokio::task::JoinSet::new(),
            connections: Vec::new(),
        }
    }

    /// Whether this process runs the stage or task `name`.
    pub fn wants(&self, name: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|s| s == name)
    }

    /// Whether the product `name` runs in this deployment.
    pub fn has_product(&self, name: &str) -> bool {
        self.products.contains(&name)
    }

    /// JetStream on connections of its own (to each class's server): each client
    /// multiplexes through one connection task, which would otherwise serialise every
    /// stage on one core.
    ///
    /// Errors: NATS unreachable.
    pub async fn connect(&mut self) -> anyhow::Result<herald_runtime::Js> {
        let js = self.nats.connect(self.js.classes().clone()).await?;
        self.connections.push(js.clone());
        Ok(js)
    }

    /// A stage's consumer settings (from its product's [`Product::consumers`]) with this
    /// process's in-flight bound.
    pub fn configure(&self, cfg: StageConfig) -> StageConfig {
        StageConfig {
            max_in_flight: self.max_in_flight,
            ..cfg
        }
    }

    /// The ledger (the core's, on the money server): what every product that moves
    /// money writes through.
    ///
    /// Errors: the LEDGER stream or its references bucket is missing (`pipeline setup`).
    pub async fn ledger(&self) -> anyhow::Result<crate::core::ledger::Ledger> {
        crate::core::ledger::Ledger::open(self.js.clone()).await
    }

    /// Flushes every connection opened by [`Ctx::connect`].
    ///
    /// Errors: a flush failed.
    pub async fn flush(&self) -> anyhow::Result<()> {
        for js in &self.connections {
            for (_, server) in js.servers() {
                server.client().flush().await?;
            }
        }
        Ok(())
    }
}
