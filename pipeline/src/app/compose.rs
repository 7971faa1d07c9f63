//! A deployment composed from the registry: the products `--products` names, built
//! from their flags, their streams and buckets set up, the router and their stages run.

use std::collections::HashMap;
use std::sync::Arc;

use herald_runtime::classes::Classes;
use herald_runtime::config::{MetricsArgs, RedisArgs, ServersArgs};
use herald_runtime::setup::{self, BucketDef, StreamDef};
use herald_runtime::{telemetry, Output, StageConfig, StageHandle};
use herald_schemas::{subjects, Content, OutboundMessage, Priority};

use crate::core::limits::{InboundLimits, Limit};
use crate::core::product::{Ctx, Product, Registration};
use crate::core::router::{Router, Routes};
use crate::products::REGISTRY;

/// `pipeline run`'s own flags (each product adds its own, see [`Registration::args`]).
#[derive(clap::Args, Debug, Clone)]
pub struct CoreArgs {
    #[command(flatten)]
    pub nats: ServersArgs,
    /// Run even if the money server does not fsync every write (development only: a
    /// power failure can then lose acknowledged payments). Logged as a warning.
    #[arg(long, env = "HERALD_ALLOW_UNSYNCED_MONEY")]
    pub allow_unsynced_money: bool,
    #[command(flatten)]
    pub redis: RedisArgs,
    #[command(flatten)]
    pub metrics: MetricsArgs,
    /// Products to run, from the registry (default: every one it has). A product whose
    /// flags turn it off, such as payments without `--deposit-xpub`, does not run.
    #[arg(long, env = "HERALD_PRODUCTS", value_delimiter = ',')]
    pub products: Vec<String>,
    /// Stages and tasks this process runs (default: all). Several processes may run the
    /// same stage: they share its durable consumer and split the work. Names: router,
    /// dedup, fanout, tracker (track, multiplier and their tasks), signals_inbox,
    /// credit, watcher, payments_inbox, chat_inbox, chat_delivery, chat_outbox,
    /// chat_sweeper, lottery_inbox, lottery_scheduler, lottery_http, trivia_inbox,
    /// trivia_scorer, trivia_polls, trivia_explainer, trivia_clock, trivia_http.
    #[arg(long, env = "HERALD_STAGES", value_delimiter = ',')]
    pub stages: Vec<String>,
    /// Telegram user ids allowed to use `/admin`, checked by the router on every
    /// admin command of every product.
    #[arg(long, env = "HERALD_ADMIN_IDS", value_delimiter = ',')]
    pub admin_ids: Vec<i64>,
    /// Per-user inbound limits, `product=N/SECS` (N updates per SECS seconds),
    /// overriding the products' defaults; `product=off` removes one.
    #[arg(long = "inbound-limit", env = "HERALD_INBOUND_LIMITS", value_delimiter = ',')]
    pub inbound_limits: Vec<String>,
    /// Messages each stage processes at once (and publishes a source keeps unacked).
    #[arg(long, env = "HERALD_MAX_IN_FLIGHT", default_value_t = 256)]
    pub max_in_flight: usize,
}

impl CoreArgs {
    /// `--products`, or every product of the registry when it is not given.
    pub fn product_names(&self) -> Vec<String> {
        match self.products.is_empty() {
            true => REGISTRY.iter().map(|r| r.name.to_string()).collect(),
            false => self.products.clone(),
        }
    }
}

/// The products `names` asks for, built from `matches` (products their flags turn off
/// are left out, and so are those that require them, see [`Registration::requires`]).
/// A product comes after those it requires in `names` (the registry's order does so).
///
/// Errors: a name is not in the registry, a product's flags do not parse, or a product
/// is named without one it requires.
pub fn build(names: &[String], matches: &clap::ArgMatches) -> anyhow::Result<Vec<Arc<dyn Product>>> {
    let names: Vec<&str> = names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()).collect();
    let mut out: Vec<Arc<dyn Product>> = Vec::new();
    for name in &names {
        let reg = registration(name)?;
        if let Some(missing) = reg.requires.iter().find(|r| !names.contains(r)) {
            anyhow::bail!("product {name} requires {missing}: add {missing} to --products (HERALD_PRODUCTS)");
        }
        if let Some(off) = reg.requires.iter().find(|r| !out.iter().any(|p| p.name() == **r)) {
            tracing::warn!(
                product = name,
                requires = off,
                "{name} is off: {off}, which it requires, is off (see its flags)"
            );
            continue;
        }
        if let Some(p) = (reg.build)(matches)? {
            out.push(Arc::from(p));
        }
    }
    Ok(out)
}

/// The registry entry named `name`.
///
/// Errors: no such product (the message lists them).
pub fn registration(name: &str) -> anyhow::Result<&'static Registration> {
    REGISTRY.iter().find(|r| r.name == name).ok_or_else(|| {
        let known: Vec<&str> = REGISTRY.iter().map(|r| r.name).collect();
        anyhow::anyhow!("no product {name:?}; the registry has {}", known.join(", "))
    })
}

/// Adds every registered product's flags to `cmd`.
pub fn with_product_args(cmd: clap::Command) -> clap::Command {
    // augmenting takes the flags struct's doc as the command's; keep the command's own
    let (about, long_about) = (cmd.get_about().cloned(), cmd.get_long_about().cloned());
    let cmd = REGISTRY.iter().fold(cmd, |cmd, reg| (reg.args)(cmd));
    let cmd = match about {
        Some(about) => cmd.about(about),
        None => cmd,
    };
    match long_about {
        Some(long) => cmd.long_about(long),
        None => cmd,
    }
}

/// Adds every registered product's operator commands to `cmd`, as `<product> …`
/// (see [`crate::core::product::Operator`]).
pub fn with_operators(cmd: clap::Command) -> clap::Command {
    REGISTRY.iter().fold(cmd, |cmd, reg| match reg.operator {
        Some(op) => cmd.subcommand((op.command)(clap::Command::new(reg.name)).about(op.about).subcommand_required(true)),
        None => cmd,
    })
}

/// The core's streams and buckets (the runtime's and the ledger's), and every product's.
pub fn definitions(products: &[Arc<dyn Product>]) -> (Vec<StreamDef>, Vec<BucketDef>) {
    let (mut streams, mut buckets) = core_definitions();
    for p in products {
        streams.extend(p.streams());
        buckets.extend(p.buckets());
    }
    (streams, buckets)
}

/// Every registered product built with its defaults, as `pipeline setup` and the
/// operator commands see them (payments included whatever its flags).
pub fn definitions_of_all() -> (Vec<StreamDef>, Vec<BucketDef>) {
    definitions(&all_products())
}

/// The core's own streams and buckets: the runtime's (updates, commands, outbound, dead
/// letters, users, sessions...) and the ledger's.
fn core_definitions() -> (Vec<StreamDef>, Vec<BucketDef>) {
    let (mut streams, mut buckets) = (herald_core::streams::core_streams(), herald_core::streams::core_buckets());
    buckets.push(herald_runtime::setup::BucketDef::expiring(
        crate::core::broadcast::store::BUCKET,
        crate::core::broadcast::store::KEPT,
    ));
    let (ledger_streams, ledger_buckets) = crate::core::ledger::definitions();
    streams.extend(ledger_streams);
    buckets.extend(ledger_buckets);
    (streams, buckets)
}

/// The durability classes of every registered product's and the core's streams and
/// buckets: one table for every process, whichever products it runs.
pub fn classes() -> Classes {
    let (streams, buckets) = definitions_of_all();
    Classes::from_definitions(&streams, &buckets).expect("every stream definition declares its class (tested)")
}

/// Connects to both classes' servers with the table of [`classes`].
///
/// Errors: a server did not answer.
pub async fn connect(nats: &ServersArgs) -> anyhow::Result<herald_runtime::Js> {
    nats.connect(classes()).await
}

/// `pipeline setup`: the core's and every registered product's streams and buckets,
/// then the user-record migration (see [`crate::core::migrate`]).
///
/// Errors: as [`setup::apply`].
pub async fn setup_all(js: &herald_runtime::Js, update: bool, replicas: setup::Replicas) -> anyhow::Result<Vec<setup::Applied>> {
    let (streams, buckets) = definitions_of_all();
    let applied = setup::apply(js, &streams, &buckets, update, replicas).await?;
    crate::core::migrate::legacy_users(js, &all_products()).await?;
    Ok(applied)
}

/// The flags that turn on what products leave off by default: withdrawals and
/// NOWPayments (placeholder credentials; the IPN endpoint on any free port, since
/// several harnesses may run at once). For [`all_products`] and the compliance harness.
pub const EVERY_FEATURE: &[&str] = &[
    "--withdrawals",
    "--nowpayments-api-key",
    "placeholder",
    "--nowpayments-ipn-secret",
    "placeholder",
    "--nowpayments-callback-url",
    "https://example.invalid/nowpayments/ipn",
    "--nowpayments-ipn-addr",
    "127.0.0.1:0",
];

/// Every registered product, built from default flags with every feature on (a
/// placeholder deposit xpub so payments builds, withdrawals, NOWPayments with
/// placeholder credentials): for definitions and the compliance harness, not to run.
pub fn all_products() -> Vec<Arc<dyn Product>> {
    let cmd = with_product_args(clap::Command::new("all").no_binary_name(true));
    let matches = cmd
        .try_get_matches_from(["--deposit-xpub", "xpub-placeholder"].iter().chain(EVERY_FEATURE))
        .expect("the registry's default flags parse");
    REGISTRY
        .iter()
        .filter_map(|r| (r.build)(&matches).expect("a product builds from its defaults"))
        .map(Arc::from)
        .collect()
}

/// The per-product limits: each product's default, then `--inbound-limit` overrides.
///
/// Errors: an override is not `product=N/SECS` or `product=off`.
pub fn inbound_limits(products: &[Arc<dyn Product>], overrides: &[String]) -> anyhow::Result<HashMap<&'static str, Limit>> {
    let mut limits: HashMap<&'static str, Limit> = products.iter().filter_map(|p| Some((p.name(), p.inbound_limit()?))).collect();
    for o in overrides {
        let (name, value) = o
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("--inbound-limit {o:?}: expected product=N/SECS"))?;
        let name = registration(name.trim())?.name;
        match value.trim() {
            "off" => {
                limits.remove(name);
            }
            v => {
                limits.insert(name, v.parse().map_err(|e: String| anyhow::anyhow!(e))?);
            }
        }
    }
    Ok(limits)
}

/// Every metric a pipeline running `products` exports: the runtime's, the core's and
/// theirs.
pub fn metrics_of(products: &[Arc<dyn Product>]) -> Vec<herald_runtime::metric::Metric> {
    let mut all = herald_runtime::metric::RUNTIME.to_vec();
    all.extend(crate::core::metrics::ALL);
    for p in products {
        all.extend(p.metrics());
    }
    all
}

/// Describes [`metrics_of`] `products` to the exporter (help and unit on `/metrics`).
pub fn describe_metrics(products: &[Arc<dyn Product>]) {
    herald_runtime::metric::describe(&metrics_of(products));
}

/// The router stage for `products`.
///
/// Errors: two products claim the same command, prefix or kind; KV or Redis is down.
pub async fn router(ctx: &Ctx, products: &[Arc<dyn Product>], core: &CoreArgs) -> anyhow::Result<StageHandle> {
    let limits = inbound_limits(products, &core.inbound_limits)?;
    let router = Router {
        users: ctx.js.get_key_value(subjects::USERS_BUCKET).await?,
        access: ctx.js.get_key_value(subjects::ACCESS_BUCKET).await?,
        sessions: ctx.js.get_key_value(subjects::SESSIONS_BUCKET).await?,
        admins: core.admin_ids.clone(),
        routes: Routes::new(products)?,
        limits: match limits.is_empty() {
            true => None,
            false => Some(InboundLimits::new(ctx.redis.connect().await?, limits)),
        },
    };
    let cfg = ctx.configure(router_consumer());
    let sample = serde_json::json!({"update_id": 1, "message": {"message_id": 1, "date": 1,
        "chat": {"id": 1, "type": "private"}, "from": {"id": 1, "is_bot": false, "first_name": "S"}, "text": "/help"}});
    Ok(StageHandle::new(router, cfg).with_sample(subjects::update("message", Some(1)), serde_json::to_vec(&sample)?))
}

/// The operators' desk (`/admin stats|status`) for `products`: their sections, and
/// the backlog of the router's, the bot's, the desk's and their consumers.
///
/// Errors: the broadcasts' stores cannot be opened.
pub async fn desk(ctx: &Ctx, products: &[Arc<dyn Product>]) -> anyhow::Result<StageHandle> {
    let redis = match ctx.redis.connect().await {
        Ok(r) => Some(r),
        Err(e) => {
            tracing::warn!(error = %e, "the desk runs without Redis: /admin status says so");
            None
        }
    };
    let mut consumers = vec![router_consumer(), crate::core::desk::consumer()];
    consumers.extend(herald_core::streams::bot_consumers());
    consumers.extend(products.iter().flat_map(|p| p.consumers()));
    let broadcasts = crate::core::broadcast::Broadcasts::open(&ctx.js).await?;
    let desk = crate::core::desk::Desk {
        products: products.to_vec(),
        js: ctx.js.clone(),
        redis,
        consumers,
        broadcasts,
    };
    let mut sample: herald_schemas::RoutedUpdate =
        herald_schemas::decode(&crate::core::product::sample_command("/admin status")).expect("the sample command decodes");
    sample.admin = true;
    Ok(StageHandle::new(desk, ctx.configure(crate::core::desk::consumer()))
        .with_sample(subjects::routed(crate::core::desk::ROUTE, 1), herald_schemas::encode(&sample)))
}

/// The `broadcast_sender` task (see `core::broadcast::sender`), every second.
///
/// Errors: the broadcasts' stores cannot be opened.
pub async fn broadcast_sender(ctx: &mut Ctx) -> anyhow::Result<()> {
    let broadcasts = crate::core::broadcast::Broadcasts::open(&ctx.js).await?;
    let js = ctx.js.clone();
    ctx.tasks.spawn(herald_runtime::periodic::every(
        "broadcast_sender",
        std::time::Duration::from_secs(1),
        ctx.shutdown.clone(),
        move || {
            let (js, b) = (js.clone(), broadcasts.clone());
            async move { crate::core::broadcast::sender::tick(&js, &b).await }
        },
    ));
    Ok(())
}

/// The router's consumer: UPDATES, one sender's updates in order.
pub fn router_consumer() -> StageConfig {
    StageConfig {
        in_order_per_sender: true,
        ..StageConfig::new(subjects::UPDATES_STREAM, "router", vec!["herald.updates.>".into()])
    }
}

/// Every consumer Herald runs with its default settings: the router's, the bot's
/// (`herald_core::streams::bot_consumers`) and every registered product's.
pub fn all_consumers() -> Vec<StageConfig> {
    let mut all = vec![router_consumer(), crate::core::desk::consumer()];
    all.extend(herald_core::streams::bot_consumers());
    all.extend(all_products().iter().flat_map(|p| p.consumers()));
    all
}

/// Existing consumers whose settings differ from what Herald runs them with, as
/// `consumer STREAM/NAME: field: existing != wanted` lines. A stage updates its own
/// consumer when it starts; this shows the drift before that.
///
/// Errors: NATS refused a request.
pub async fn consumer_drift(js: &herald_runtime::Js) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    for want in all_consumers() {
        let Ok(stream) = js.get_stream(&want.stream).await else { continue };
        let Ok(existing) = stream.consumer_info(&want.durable).await else {
            continue;
        };
        for d in herald_runtime::stage::consumer_differences(&existing.config, &want.consumer_config()) {
            out.push(format!("consumer {}/{}: {d}", want.stream, want.durable));
        }
    }
    Ok(out)
}

/// The `setMyCommands` call for the menu of `products` (sent by the bot).
pub fn menu_output(products: &[Arc<dyn Product>]) -> anyhow::Result<Output> {
    let commands = Routes::new(products)?.menu();
    let digest: u64 = commands
        .iter()
        .flat_map(|c| c.command.bytes().chain(c.description.bytes()))
        .fold(0xcbf29ce484222325, |h, b| (h ^ b as u64).wrapping_mul(0x100000001b3)); // FNV-1a
                                                                                      // keyed by the menu's content: the same menu is set once, a changed one again
    let key = format!("menu.{digest:016x}");
    let msg = OutboundMessage::new(
        key.clone(),
        0,
        Content::SetMyCommands { commands },
        Priority::Reply,
        herald_schemas::now_ms(),
    );
    Ok(Output {
        subject: subjects::reply(0),
        msg_id: key,
        payload: herald_schemas::encode(&msg),
    })
}

/// Runs a deployment until SIGTERM: sets up streams and buckets, starts the router and
/// every product's stages and tasks, sends the command menu, and supervises them all.
///
/// Errors: set-up failed, or a task failed or panicked (the others are stopped first).
pub async fn run(core: CoreArgs, matches: &clap::ArgMatches) -> anyhow::Result<()> {
    telemetry::install_metrics();
    let shutdown = telemetry::shutdown_on_signal();
    let products = build(&core.product_names(), matches)?;
    describe_metrics(&products);
    let js = connect(&core.nats).await?;
    herald_runtime::durability::require_synced_money(&js, &core.nats.money_monitors(), core.allow_unsynced_money).await?;
    let (streams, buckets) = definitions(&products);
    setup::apply(&js, &streams, &buckets, false, setup::Replicas::Existing).await?;
    // every registered product adopts its part of old records, running or not
    crate::core::migrate::legacy_users(&js, &all_products()).await?;

    let mut ctx = Ctx::new(core.nats.clone(), core.redis.clone(), js.clone(), shutdown.clone());
    ctx.max_in_flight = core.max_in_flight;
    ctx.only = core.stages.clone();
    ctx.products = products.iter().map(|p| p.name()).collect();
    ctx.admins = core.admin_ids.clone();
    tokio::spawn(telemetry::serve(core.metrics.metrics_addr, ctx.ready.clone(), shutdown.clone()));
    js.watch_servers(&ctx.ready, shutdown.clone());

    ctx.tasks.spawn(herald_runtime::processes::beat(
        js.clone(),
        "pipeline",
        ctx.ready.clone(),
        shutdown.clone(),
    ));

    let mut stages = Vec::new();
    if ctx.wants("router") {
        stages.push(router(&ctx, &products, &core).await?);
        herald_runtime::publish_all(&js, vec![menu_output(&products)?]).await?;
    }
    if ctx.wants("admin_desk") {
        stages.push(desk(&ctx, &products).await?);
    }
    if ctx.wants("broadcast_sender") {
        broadcast_sender(&mut ctx).await?;
    }
    for p in &products {
        stages.extend(p.start(&mut ctx).await?);
    }
    let names: Vec<&str> = stages.iter().map(|s| s.name).collect();
    for mut stage in stages {
        stage.config.ready = Some(ctx.ready.part());
        let js = ctx.connect().await?;
        ctx.tasks.spawn(stage.run(js, shutdown.clone()));
    }
    tracing::info!(products = ?ctx.products, stages = ?names, "pipeline running");
    let tasks = std::mem::take(&mut ctx.tasks);
    let result = telemetry::supervise(tasks, &ctx.ready, &shutdown).await;
    ctx.flush().await?;
    for (_, server) in js.servers() {
        server.client().flush().await?;
    }
    tracing::info!("pipeline stopped");
    result
}

/// Update kinds no product takes and the router does not handle are dropped; this lists
/// the ones the router answers itself, for the docs.
pub const CORE_KINDS: &[&str] = &["message", "callback_query", "my_chat_member"];

#[cfg(test)]
mod tests {
    use super::*;
    use herald_schemas::telegram;

    #[test]
    fn every_routed_kind_is_a_telegram_kind() {
        for p in all_products() {
            for k in p.update_kinds() {
                assert!(telegram::KNOWN_KINDS.contains(k), "{}: {k}", p.name());
            }
        }
        for k in CORE_KINDS {
            assert!(telegram::KNOWN_KINDS.contains(k));
        }
    }

    #[test]
    fn every_metric_is_declared_once_and_documented() {
        let docs = include_str!("../../../docs/operations.md");
        let all = metrics_of(&all_products());
        let mut names: Vec<&str> = all.iter().map(|m| m.name).collect();
        names.sort();
        let before = names.len();
        names.dedup();
        assert_eq!(names.len(), before, "a metric name declared twice");
        for m in &all {
            assert!(m.name.starts_with("herald_") && !m.help.is_empty(), "{}", m.name);
            assert!(
                docs.contains(&format!("| `{}` |", m.name)),
                "{} is missing from docs/operations.md's table",
                m.name
            );
        }
    }

    #[test]
    fn every_product_s_parsers_take_hostile_text() {
        let hostile = [
            "/filters fdv 300k 50k",
            "/filters winrate 999",
            "f:wr:-5",
            "/buy 99999999999999999999",
            "/trivia \u{202e}x",
            "",
            "/",
            "pay:weekly:\0",
        ];
        for p in all_products() {
            for text in hostile {
                p.check_parsers(text);
            }
        }
    }

    #[test]
    fn a_product_needs_what_it_requires() {
        let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let matches = |args: &[&str]| {
            with_product_args(clap::Command::new("run").no_binary_name(true))
                .try_get_matches_from(args)
                .unwrap()
        };
        let err = build(&names(&["lottery"]), &matches(&[])).err().expect("refused").to_string();
        assert!(err.contains("lottery requires payments"), "{err}");
        // named, but payments is off without its xpub: the lottery is left out with it
        let built = build(&names(&["payments", "lottery", "chat"]), &matches(&[])).unwrap();
        assert_eq!(built.iter().map(|p| p.name()).collect::<Vec<_>>(), ["chat"]);
        let built = build(&names(&["payments", "lottery"]), &matches(&["--deposit-xpub", "xpub-placeholder"])).unwrap();
        assert_eq!(built.iter().map(|p| p.name()).collect::<Vec<_>>(), ["payments", "lottery"]);
    }

    #[test]
    fn the_default_product_set_is_the_registry() {
        use clap::{Args, FromArgMatches};
        let cmd = CoreArgs::augment_args(clap::Command::new("run").no_binary_name(true));
        let core = CoreArgs::from_arg_matches(&cmd.try_get_matches_from(Vec::<String>::new()).unwrap()).unwrap();
        let all: Vec<String> = REGISTRY.iter().map(|r| r.name.to_string()).collect();
        assert_eq!(core.product_names(), all);
    }

    #[test]
    fn limits_take_overrides_and_refuse_nonsense() {
        let products = all_products();
        let l = inbound_limits(&products, &["signals=5/1".into(), "payments=off".into()]).unwrap();
        assert_eq!(l["signals"].updates, 5);
        assert!(!l.contains_key("payments"));
        assert!(inbound_limits(&products, &["signals=5".into()]).is_err());
        assert!(inbound_limits(&products, &["nope=1/1".into()]).is_err());
    }

    #[test]
    fn money_is_the_ledger_deposits_withdrawals_lottery_and_their_buckets() {
        let classes = classes();
        assert_eq!(
            classes.money_stream_names(),
            [
                "DEPOSITS",
                "GATEWAY",
                "KV_herald_access",
                "KV_herald_coupons",
                "KV_herald_gateway",
                "KV_herald_ledger_refs",
                "KV_herald_lottery",
                "KV_herald_signer",
                "KV_herald_wallet",
                "KV_herald_watcher",
                "KV_herald_withdrawals",
                "LEDGER",
                "LOTTERY",
                "WITHDRAWALS"
            ]
        );
        use herald_runtime::Class;
        assert_eq!(classes.of_subject(&subjects::ledger(7)), Class::Money);
        assert_eq!(classes.of_subject(&subjects::lottery_round(3)), Class::Money);
        assert_eq!(classes.of_subject(&subjects::notify(7)), Class::Events);
        assert_eq!(classes.of_subject(&subjects::call("solana", "feed")), Class::Events);
        assert_eq!(classes.of_stream(subjects::TRIVIA_STREAM), Class::Events);
    }

    #[test]
    fn every_subject_falls_in_exactly_one_stream() {
        let (streams, _) = definitions_of_all();
        let configs = setup::stream_configs(&streams).unwrap();
        let mut names: Vec<&str> = configs.iter().map(|c| c.name.as_str()).collect();
        names.sort();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len(), "a stream is defined twice");
        for subject in [
            subjects::call("solana", "feed"),
            subjects::signal("bsc"),
            subjects::notify(1),
            subjects::reply(-5),
            subjects::update("message", Some(7)),
            subjects::routed("signals", 7),
            subjects::dead_letter("x"),
            subjects::price("solana"),
            subjects::deposit(herald_schemas::DepositStage::Final, "bsc"),
            subjects::ledger(42),
            subjects::tracked("solana"),
        ] {
            let owners = configs
                .iter()
                .filter(|c| {
                    c.subjects
                        .iter()
                        .any(|p| !p.trim_end_matches('>').is_empty() && subject.starts_with(p.trim_end_matches('>')))
                })
                .count();
            assert_eq!(owners, 1, "{subject}");
        }
    }

    /// nats-server refuses a stream whose `max_bytes` would take the reserved total past
    /// `max_file_store` ("insufficient storage resources available").
    #[test]
    fn stream_reservations_fit_the_server_config() {
        use herald_runtime::Class;
        let limit = |conf: &str| {
            conf.lines()
                .find_map(|l| l.trim().strip_prefix("max_file_store:"))
                .and_then(|v| v.trim().strip_suffix("GB"))
                .and_then(|gb| gb.parse::<i64>().ok())
                .expect("the server configuration sets max_file_store in GB")
                << 30
        };
        let (streams, _) = definitions_of_all();
        for (class, conf) in [
            (Class::Events, include_str!("../../../nats/nats-server.conf")),
            (Class::Money, include_str!("../../../nats/nats-money.conf")),
        ] {
            let limit = limit(conf);
            let reserved: i64 = streams
                .iter()
                .filter(|d| d.class().unwrap() == class)
                .map(|d| d.config().unwrap().max_bytes.max(0))
                .sum();
            assert!(
                reserved <= limit / 4 * 3,
                "{class} streams reserve {reserved} bytes; keep a quarter of its server's max_file_store ({limit}) for KV buckets and growth"
            );
        }
    }

    #[test]
    fn the_registry_routes_without_conflicts_and_generates_help_and_menu() {
        let products = all_products();
        let routes = Routes::new(&products).unwrap();
        let help = routes.help();
        for c in routes.menu() {
            assert!(help.contains(&format!("/{} — ", c.command)), "/help lists /{}", c.command);
            assert!(
                (1..=32).contains(&c.command.len()) && c.command.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "Telegram's command rules: {}",
                c.command
            );
            // doc comments on a variant would join its description (teloxide reads them)
            assert!(
                !c.description.is_empty() && c.description.len() <= 64 && !c.description.contains('\n'),
                "a short one-line description: {:?}",
                c.description
            );
        }
        assert!(help.contains("/filters") && help.contains("/deposit") && help.contains("/start"));
        // a second product claiming /filters is refused
        let twice: Vec<Arc<dyn Product>> = products.iter().chain(products.iter()).cloned().collect();
        assert!(Routes::new(&twice).is_err());
    }
}
