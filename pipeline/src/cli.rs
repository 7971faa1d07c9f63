//! The `pipeline` command line.

use std::sync::Arc;

use clap::{Parser, Subcommand};
use herald_pipeline::config::{DedupArgs, MetricsArgs, NatsArgs, RedisArgs, TrackerArgs};
use herald_pipeline::replica::Replica;
use herald_pipeline::runtime::{run_stage, StageConfig};
use herald_pipeline::sources::websocket::{Protocol, WebsocketSource};
use herald_pipeline::stages::{dedup::DedupStage, fanout::*, token_state::TokenState, updates::UpdatesStage};
use herald_pipeline::{setup, telemetry};
use herald_schemas::subjects;

/// Herald's stream-processing pipeline: sources, dedup, filter + fan-out, commands.
#[derive(Parser, Debug)]
#[command(version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Create the JetStream streams (nats/streams/*.json) and KV buckets; idempotent.
    Setup {
        #[command(flatten)]
        nats: NatsArgs,
        /// Edit streams whose configuration differs instead of failing.
        #[arg(long)]
        update: bool,
    },
    /// Run sources and stages until SIGTERM.
    Run(Box<RunArgs>),
    /// Re-deliver a stream's messages (by sequence or time range, and subject) to their
    /// own subject, into a stage, or to another subject. Users are not notified again:
    /// the idempotency keys hold.
    Replay(ReplayArgs),
    /// Status of every stream and consumer: messages, bytes, pending, unacked,
    /// redeliveries, oldest unacked age.
    Streams {
        #[command(flatten)]
        nats: NatsArgs,
    },
    /// Dead-lettered messages: list them with their errors, re-drive them after a fix.
    Dlq {
        #[command(subcommand)]
        command: DlqCmd,
    },
    /// The deposit wallet: make the account xpub from the mnemonic, list the addresses an
    /// xpub derives, sweep deposits to the treasury (xpub, gas-address and sweep are the
    /// only commands that read the mnemonic).
    Wallet {
        #[command(subcommand)]
        command: WalletCmd,
    },
}

#[derive(Subcommand, Debug)]
enum WalletCmd {
    /// Print the extended public key of m/44'/60'/0'/0 for the mnemonic in
    /// `--mnemonic-file` or `$HERALD_MNEMONIC` (never printed or logged).
    Xpub {
        /// File holding the BIP-39 mnemonic (else `$HERALD_MNEMONIC`).
        #[arg(long, env = "HERALD_MNEMONIC_FILE")]
        mnemonic_file: Option<std::path::PathBuf>,
    },
    /// Print the gas wallet's address (m/44'/60'/1'/0/0 of the mnemonic): fund it with
    /// BNB for `sweep`'s gas top-ups.
    GasAddress {
        /// File holding the BIP-39 mnemonic (else `$HERALD_MNEMONIC`).
        #[arg(long, env = "HERALD_MNEMONIC_FILE")]
        mnemonic_file: Option<std::path::PathBuf>,
    },
    /// Move every assigned deposit address's accepted tokens to the treasury, topping up
    /// gas from the gas wallet (`--dry-run` lists them).
    Sweep {
        /// File holding the BIP-39 mnemonic (else `$HERALD_MNEMONIC`).
        #[arg(long, env = "HERALD_MNEMONIC_FILE")]
        mnemonic_file: Option<std::path::PathBuf>,
        #[command(flatten)]
        nats: NatsArgs,
        /// JSON-RPC endpoint of the chain (http or https).
        #[arg(long, env = "HERALD_BSC_RPC_URL")]
        rpc_url: String,
        /// The treasury address.
        #[arg(long)]
        to: alloy::primitives::Address,
        /// Tokens to sweep, `SYMBOL:contract:decimals`, comma-separated.
        #[arg(long, env = "HERALD_DEPOSIT_TOKENS", value_delimiter = ',', default_value = herald_pipeline::config::DEFAULT_DEPOSIT_TOKENS)]
        deposit_tokens: Vec<String>,
        /// List what would move; send nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Print the deposit addresses at indexes `from..from+count` of an xpub.
    Addresses {
        #[arg(long, env = "HERALD_DEPOSIT_XPUB")]
        xpub: String,
        #[arg(long, default_value_t = 0)]
        from: u32,
        #[arg(long, default_value_t = 10)]
        count: u32,
    },
}

#[derive(clap::Args, Debug)]
struct ReplayArgs {
    #[command(flatten)]
    nats: NatsArgs,
    /// Stream to read: CALLS, SIGNALS, OUTBOUND, UPDATES or DLQ.
    #[arg(long)]
    stream: String,
    /// First stream sequence to replay (inclusive).
    #[arg(long)]
    from_seq: Option<u64>,
    /// Last stream sequence to replay (inclusive).
    #[arg(long)]
    to_seq: Option<u64>,
    /// Replay messages stored at or after this time: RFC 3339 or an age (15m, 2h, 7d).
    #[arg(long)]
    since: Option<String>,
    /// Replay messages stored at or before this time: RFC 3339 or an age.
    #[arg(long)]
    until: Option<String>,
    /// Only messages on subjects matching this filter (wildcards allowed).
    #[arg(long)]
    subject: Option<String>,
    /// Publish every message to this subject instead of its own.
    #[arg(long, conflicts_with = "to_stage")]
    to: Option<String>,
    /// Replay into this stage (dedup, fanout, updates, track, multiplier, credit): the
    /// stream must be the one the stage consumes; messages keep their subjects.
    #[arg(long)]
    to_stage: Option<String>,
    /// Messages per second (default: as fast as acknowledgements allow).
    #[arg(long)]
    rate: Option<u32>,
    /// Count what would be replayed, publish nothing.
    #[arg(long)]
    dry_run: bool,
}

#[derive(Subcommand, Debug)]
enum DlqCmd {
    /// List dead letters, oldest first.
    List {
        #[command(flatten)]
        nats: NatsArgs,
        /// Only this stage's dead letters (dedup, fanout, updates, feed, solana, bot, bot_inbound).
        #[arg(long)]
        stage: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Re-publish dead letters (by DLQ sequence, as `list` shows) to their original
    /// subject, then delete them from the DLQ.
    Redrive {
        #[command(flatten)]
        nats: NatsArgs,
        /// DLQ sequences, comma-separated.
        #[arg(required = true, value_delimiter = ',')]
        seqs: Vec<u64>,
        /// Publish to this subject instead of the original one.
        #[arg(long)]
        to: Option<String>,
        /// Keep them in the DLQ after re-driving.
        #[arg(long)]
        keep: bool,
    },
}

/// The stream a stage consumes.
fn stage_stream(stage: &str) -> anyhow::Result<&'static str> {
    Ok(match stage {
        "dedup" => subjects::CALLS_STREAM,
        "fanout" => subjects::SIGNALS_STREAM,
        "updates" => subjects::UPDATES_STREAM,
        "track" => subjects::TRACKED_STREAM,
        "multiplier" => subjects::PRICES_STREAM,
        "credit" => subjects::DEPOSITS_STREAM,
        other => anyhow::bail!("unknown stage {other:?}: dedup, fanout, updates, track, multiplier or credit"),
    })
}

/// The mnemonic from `--mnemonic-file` or `$HERALD_MNEMONIC` (never printed or logged).
fn read_mnemonic(file: Option<std::path::PathBuf>) -> anyhow::Result<String> {
    match file {
        Some(path) => std::fs::read_to_string(&path).map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display())),
        None => std::env::var("HERALD_MNEMONIC").map_err(|_| anyhow::anyhow!("give --mnemonic-file or set HERALD_MNEMONIC")),
    }
}

async fn replay(args: ReplayArgs) -> anyhow::Result<()> {
    use herald_pipeline::ops::{parse_time, replay};
    let stream = args.stream.to_ascii_uppercase();
    let target = match (&args.to, &args.to_stage) {
        (Some(subject), _) => replay::Target::Subject(subject.clone()),
        (None, Some(stage)) => {
            let consumed = stage_stream(stage)?;
            anyhow::ensure!(consumed == stream, "stage {stage} consumes {consumed}, not {stream}");
            replay::Target::Original
        }
        (None, None) => replay::Target::Original,
    };
    let sel = replay::Selection {
        stream,
        from_seq: args.from_seq,
        to_seq: args.to_seq,
        since: args.since.as_deref().map(parse_time).transpose()?,
        until: args.until.as_deref().map(parse_time).transpose()?,
        subject: args.subject,
    };
    let (_, js) = args.nats.connect().await?;
    let opts = replay::Options {
        rate: args.rate,
        dry_run: args.dry_run,
        progress: true,
    };
    let summary = replay::replay(&js, &sel, &target, &opts).await?;
    println!("{}{summary}", if args.dry_run { "dry run: " } else { "" });
    Ok(())
}

#[derive(clap::Args, Debug)]
struct RunArgs {
    #[command(flatten)]
    nats: NatsArgs,
    #[command(flatten)]
    redis: RedisArgs,
    #[command(flatten)]
    dedup: DedupArgs,
    #[command(flatten)]
    metrics: MetricsArgs,
    #[command(flatten)]
    tracker: TrackerArgs,
    #[command(flatten)]
    payments: herald_pipeline::config::PaymentsArgs,
    /// Stages to run in this process (several processes may run the same stage; they
    /// share its durable consumer and split the work). `credit` and `watcher` run only
    /// when deposits are configured (`--deposit-xpub`; the watcher also `--rpc-url`).
    #[arg(long, value_delimiter = ',', default_value = "dedup,fanout,updates,tracker,credit,watcher")]
    stages: Vec<String>,
    /// Herald JSON token feeds to read (websocket URLs), repeatable.
    #[arg(long = "feed-url", env = "HERALD_FEED_URLS", value_delimiter = ',')]
    feed_urls: Vec<String>,
    /// Solana transactionSubscribe websocket (Raydium pool creations).
    #[arg(long, env = "HERALD_SOLANA_WS_URL")]
    solana_ws_url: Option<String>,
    /// Messages each stage processes at once (and publishes a source keeps unacked).
    #[arg(long, env = "HERALD_MAX_IN_FLIGHT", default_value_t = 256)]
    max_in_flight: usize,
}

impl Cli {
    pub async fn run(self) -> anyhow::Result<()> {
        match self.command {
            Cmd::Setup { nats, update } => {
                let (_, js) = nats.connect().await?;
                for applied in setup::apply(&js, update).await? {
                    println!("{applied:?}");
                }
                Ok(())
            }
            Cmd::Run(args) => run(*args).await,
            Cmd::Replay(args) => replay(args).await,
            Cmd::Streams { nats } => {
                let (_, js) = nats.connect().await?;
                print!(
                    "{}",
                    herald_pipeline::ops::streams::render(&herald_pipeline::ops::streams::status(&js).await?)
                );
                Ok(())
            }
            Cmd::Wallet {
                command: WalletCmd::Xpub { mnemonic_file },
            } => {
                let mnemonic = read_mnemonic(mnemonic_file)?;
                println!("{}", herald_pipeline::payments::wallet::account_xpub(&mnemonic)?);
                Ok(())
            }
            Cmd::Wallet {
                command: WalletCmd::GasAddress { mnemonic_file },
            } => {
                let mnemonic = read_mnemonic(mnemonic_file)?;
                println!("{}", herald_pipeline::payments::sweep::gas_address(&mnemonic)?);
                Ok(())
            }
            Cmd::Wallet {
                command:
                    WalletCmd::Sweep {
                        mnemonic_file,
                        nats,
                        rpc_url,
                        to,
                        deposit_tokens,
                        dry_run,
                    },
            } => {
                use herald_pipeline::payments::sweep::{sweep_assigned, SweepConfig};
                let mnemonic = read_mnemonic(mnemonic_file)?;
                let tokens = herald_pipeline::config::parse_deposit_tokens(&deposit_tokens)?;
                let (_, js) = nats.connect().await?;
                let cfg = SweepConfig {
                    rpc_url,
                    treasury: to,
                    tokens: tokens.clone(),
                    dry_run,
                };
                let (looked_at, swept) = sweep_assigned(&js.get_key_value(subjects::WALLET_BUCKET).await?, &mnemonic, &cfg).await?;
                for s in &swept {
                    let info = tokens.iter().find(|(t, _)| *t == s.token).map(|(_, i)| i);
                    let shown = info.map_or(s.amount.to_string(), |i| {
                        format!("{} {}", herald_pipeline::payments::credit::units(s.amount, i.decimals), i.symbol)
                    });
                    let tx = s.tx.map_or("(dry run)".to_string(), |h| h.to_string());
                    println!("{}\t{}\t{shown}\t{tx}", s.index, s.address);
                }
                println!("{} transfers from {looked_at} addresses", swept.len());
                Ok(())
            }
            Cmd::Wallet {
                command: WalletCmd::Addresses { xpub, from, count },
            } => {
                let wallet = herald_pipeline::payments::wallet::DepositWallet::from_xpub(&xpub)?;
                for i in from..from.saturating_add(count) {
                    println!("{i}\t{}", wallet.address(i)?);
                }
                Ok(())
            }
            Cmd::Dlq {
                command: DlqCmd::List { nats, stage, limit },
            } => {
                let (_, js) = nats.connect().await?;
                print!(
                    "{}",
                    herald_pipeline::ops::dlq::render(&herald_pipeline::ops::dlq::list(&js, stage.as_deref(), limit).await?)
                );
                Ok(())
            }
            Cmd::Dlq {
                command: DlqCmd::Redrive { nats, seqs, to, keep },
            } => {
                let (_, js) = nats.connect().await?;
                let mut failed = 0;
                for seq in seqs {
                    match herald_pipeline::ops::dlq::redrive(&js, seq, to.as_deref(), keep).await {
                        Ok(subject) => println!("#{seq} -> {subject}"),
                        Err(e) => {
                            failed += 1;
                            eprintln!("#{seq}: {e:#}");
                        }
                    }
                }
                anyhow::ensure!(failed == 0, "{failed} dead letter(s) not re-driven");
                Ok(())
            }
        }
    }
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    telemetry::install_metrics();
    let shutdown = telemetry::shutdown_on_signal();
    let ready = telemetry::Readiness::default();
    tokio::spawn(telemetry::serve(args.metrics.metrics_addr, ready.clone(), shutdown.clone()));

    let (client, js) = args.nats.connect().await?;
    setup::apply(&js, false).await?;
    // One NATS and one Redis connection per stage and source: each client multiplexes
    // through a single connection task, which would otherwise serialise every stage on
    // one core.
    let mut clients = vec![client];
    let mut connect = async || -> anyhow::Result<async_nats::jetstream::Context> {
        let (c, js) = args.nats.connect().await?;
        clients.push(c);
        Ok(js)
    };
    let mut tasks = tokio::task::JoinSet::new();
    let stage_cfg = |stream: &str, name: &str, filter: &str| StageConfig {
        max_in_flight: args.max_in_flight,
        ..StageConfig::new(stream, name, vec![filter.to_string()])
    };
    let wants = |s: &str| args.stages.iter().any(|x| x == s);

    let token_state = async || -> anyhow::Result<TokenState> {
        Ok(TokenState::new(
            args.redis.connect().await?,
            args.dedup.accepted_ttl(),
            args.dedup.rejected_ttl(),
        ))
    };
    if wants("dedup") {
        let stage = Arc::new(DedupStage {
            state: token_state().await?,
        });
        tasks.spawn(run_stage(
            connect().await?,
            stage,
            stage_cfg(subjects::CALLS_STREAM, "dedup", "herald.calls.>"),
            shutdown.clone(),
        ));
    }
    if wants("fanout") {
        let users = Replica::start(&js, subjects::USERS_BUCKET, UserIndex::default(), shutdown.clone()).await?;
        let channels = Replica::start(&js, subjects::CHANNELS_BUCKET, ChannelIndex::default(), shutdown.clone()).await?;
        tracing::info!(users = users.read(|u| u.len()), "user replica loaded");
        let stage = Arc::new(FanoutStage {
            users,
            channels,
            state: token_state().await?,
            require_subscription: args.payments.signals_need_subscription(),
        });
        tasks.spawn(run_stage(
            connect().await?,
            stage,
            stage_cfg(subjects::SIGNALS_STREAM, "fanout", "herald.signals.>"),
            shutdown.clone(),
        ));
    }
    let accepted = args.payments.accepted_tokens()?;
    let payments = match args.payments.xpub() {
        Some(xpub) => Some(Arc::new(deposits(&js, &args.payments, &accepted, xpub).await?)),
        None => None,
    };
    if let (true, Some(_)) = (wants("credit"), &payments) {
        // expiry reminders ride with the credit stage (several processes may: message ids
        // and the bot's delivered keys keep each reminder single)
        tasks.spawn(herald_pipeline::payments::reminders::run(
            connect().await?,
            std::time::Duration::from_secs(3600),
            shutdown.clone(),
        ));
    }
    if let (true, Some(p)) = (wants("credit"), &payments) {
        let stage = herald_pipeline::payments::credit::CreditStage {
            ledger: p.ledger.clone(),
            tokens: accepted.iter().cloned().collect(),
            min_deposit: herald_pipeline::config::parse_usd(&args.payments.min_deposit_usd)?,
        };
        tasks.spawn(run_stage(
            connect().await?,
            Arc::new(stage),
            stage_cfg(subjects::DEPOSITS_STREAM, "credit", "herald.deposits.>"),
            shutdown.clone(),
        ));
    }
    if let (true, Some(p), Some(rpc_url)) = (wants("watcher"), &payments, args.payments.rpc()) {
        use herald_pipeline::payments::watcher;
        let a = &args.payments;
        let cfg = watcher::WatcherConfig {
            rpc_url: rpc_url.to_string(),
            tokens: p.tokens.iter().map(|(_, t)| *t).collect(),
            finalized_tag: a.finalized_tag,
            confirmations: a.confirmations,
            max_range: a.max_block_range,
        };
        let from = match watcher::stored_resume_point(&js, &a.deposit_chain).await? {
            Some(block) => block,
            None => {
                // first start: from the current head (nobody has an address yet)
                let probe = watcher::Watcher::new(cfg.clone(), 0)?;
                probe.head().await?
            }
        };
        tasks.spawn(watcher::run(
            watcher::Watcher::new(cfg, from)?,
            p.wallet.clone(),
            a.deposit_chain.clone(),
            connect().await?,
            std::time::Duration::from_millis(a.watch_poll_ms),
            shutdown.clone(),
        ));
    }
    // the tracker, also read by /calls in this process
    let mut tracker_handle = None;
    if wants("tracker") {
        use herald_pipeline::tracking::{backend::Backend, store::CallStore, tracker};
        let store = Backend::open(&args.tracker).await?;
        let retention = args.tracker.retention();
        let since = herald_schemas::now_ms().saturating_sub(retention.as_millis() as u64);
        let win_window = args.tracker.win_window_hours * 3_600_000;
        let tracker = tracker::Tracker::load(store, args.tracker.thresholds.clone(), since, win_window).await?;
        tracker_handle = Some(tracker.clone());
        tasks.spawn(tracker::run_checkpoints(
            tracker.clone(),
            std::time::Duration::from_secs(1),
            shutdown.clone(),
        ));
        // channel statistics: changed callers go to the herald_channels bucket every 5 s
        let kv = js.get_key_value(subjects::CHANNELS_BUCKET).await?;
        tasks.spawn(tracker::publish_channel_stats(
            tracker.clone(),
            kv,
            std::time::Duration::from_secs(5),
            shutdown.clone(),
        ));
        tasks.spawn(run_stage(
            connect().await?,
            Arc::new(tracker::TrackStage(tracker.clone())),
            stage_cfg(subjects::TRACKED_STREAM, "track", "herald.tracked.>"),
            shutdown.clone(),
        ));
        if let Some(base_url) = args.tracker.dexscreener_url.clone() {
            use herald_pipeline::sources::dexscreener;
            let cfg = dexscreener::PollerConfig {
                base_url,
                per_minute: args.tracker.dexscreener_per_minute,
                interval: std::time::Duration::from_secs(args.tracker.dexscreener_interval_secs),
            };
            let (t, js, s) = (tracker.clone(), connect().await?, shutdown.clone());
            tasks.spawn(async move {
                dexscreener::run(cfg, js, move || t.tracked_tokens(), s).await;
                Ok(())
            });
        }
        tasks.spawn(run_stage(
            connect().await?,
            Arc::new(tracker::MultiplierStage(tracker.clone())),
            stage_cfg(subjects::PRICES_STREAM, "multiplier", "herald.prices.>"),
            shutdown.clone(),
        ));
        // retention: calls older than the window leave the store hourly (the index
        // drops them at the next start)
        let (s, expiring) = (shutdown.clone(), tracker);
        tasks.spawn(async move {
            let mut every = tokio::time::interval(std::time::Duration::from_secs(3600));
            loop {
                tokio::select! {
                    _ = s.cancelled() => return Ok(()),
                    _ = every.tick() => {}
                }
                let before = herald_schemas::now_ms().saturating_sub(retention.as_millis() as u64);
                match expiring.store.expire(before).await {
                    Ok(n) if n > 0 => tracing::info!(expired = n, "tracked calls expired"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %format!("{e:#}"), "expiring tracked calls failed"),
                }
            }
        });
    }
    if wants("updates") {
        let users = js.get_key_value(subjects::USERS_BUCKET).await?;
        let stage = Arc::new(UpdatesStage {
            users,
            calls: tracker_handle.clone(),
            payments: payments.clone(),
        });
        tasks.spawn(run_stage(
            connect().await?,
            stage,
            stage_cfg(subjects::UPDATES_STREAM, "updates", "herald.updates.>"),
            shutdown.clone(),
        ));
    }
    let sources = args
        .feed_urls
        .iter()
        .map(|u| (u.clone(), Protocol::HeraldFeed))
        .chain(args.solana_ws_url.iter().map(|u| (u.clone(), Protocol::SolanaTransactions)));
    for (url, protocol) in sources {
        let source = WebsocketSource {
            url,
            protocol,
            js: connect().await?,
            max_in_flight: args.max_in_flight,
        };
        let s = shutdown.clone();
        tasks.spawn(async move {
            source.run(s).await;
            Ok(())
        });
    }
    ready.set_ready();
    tracing::info!(stages = ?args.stages, "pipeline running");
    let mut result = Ok(());
    while let Some(done) = tasks.join_next().await {
        if let Ok(Err(e)) = done {
            tracing::error!(error = %format!("{e:#}"), "task failed; shutting down");
            shutdown.cancel();
            result = Err(e);
        }
    }
    for c in clients {
        c.flush().await?;
    }
    tracing::info!("pipeline stopped");
    result
}

/// The deposit wallet, address book, ledger and tokens for `/deposit`, `/balance` and
/// the credit stage.
async fn deposits(
    js: &async_nats::jetstream::Context,
    args: &herald_pipeline::config::PaymentsArgs,
    accepted: &[(alloy::primitives::Address, herald_pipeline::payments::credit::DepositToken)],
    xpub: &str,
) -> anyhow::Result<herald_pipeline::payments::Payments> {
    use herald_pipeline::payments::{ledger::Ledger, wallet::DepositWallet, Payments};
    let tokens = accepted.iter().map(|(address, t)| (t.symbol.clone(), *address)).collect();
    Ok(Payments {
        wallet: DepositWallet::from_xpub(xpub)?,
        addresses: js.get_key_value(subjects::WALLET_BUCKET).await?,
        ledger: Ledger::open(js.clone()).await?,
        tokens,
        tiers: herald_pipeline::payments::subscriptions::parse_tiers(&args.tiers)?,
        trial: std::time::Duration::from_secs(args.trial_days * 86_400),
        coupons: js.get_key_value(subjects::COUPONS_BUCKET).await?,
        admins: args.admin_ids.clone(),
    })
}
