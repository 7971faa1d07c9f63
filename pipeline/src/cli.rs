//! The `pipeline` command line.

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use herald_pipeline::app::compose::{self, CoreArgs};
use herald_runtime::config::ServersArgs;

/// What the command line asked for: a core command, or a product's operator command.
pub enum Invocation {
    Core(Box<Cli>),
    Operator(herald_pipeline::core::product::Operator, clap::ArgMatches),
}

impl Invocation {
    /// Runs it.
    pub async fn run(self) -> anyhow::Result<()> {
        match self {
            Invocation::Core(cli) => cli.run().await,
            Invocation::Operator(op, matches) => (op.run)(matches, compose::classes()).await,
        }
    }
}

/// Herald's stream-processing pipeline: sources, dedup, filter + fan-out, commands.
#[derive(Parser, Debug)]
#[command(version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Cmd,
    /// The parsed command line, for the products' own `run` flags.
    #[arg(skip)]
    matches: clap::ArgMatches,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Create the JetStream streams (nats/streams/*.json) and KV buckets of the core and
    /// every registered product; idempotent.
    Setup {
        #[command(flatten)]
        nats: ServersArgs,
        /// Edit streams whose configuration differs instead of failing.
        #[arg(long)]
        update: bool,
        /// Copies of every stream and bucket on a JetStream cluster (1, 3 or 5; R3
        /// survives the loss of one server, see docs/operations.md). Without it,
        /// existing streams keep theirs and new ones get 1.
        #[arg(long, env = "HERALD_REPLICAS", value_parser = clap::value_parser!(u8).range(1..=5))]
        replicas: Option<u8>,
        /// Create the money class even on a server that does not fsync every write
        /// (development only).
        #[arg(long, env = "HERALD_ALLOW_UNSYNCED_MONEY")]
        allow_unsynced_money: bool,
        /// First move the money streams and buckets made before the durability classes
        /// from the events server to the money server (copied, checked, then deleted
        /// from the events server). Run it once, with nothing else running.
        #[arg(long)]
        move_money: bool,
    },
    /// Run the router and the products' stages and sources until SIGTERM (each product
    /// adds its own flags below).
    Run(Box<CoreArgs>),
    /// Re-deliver a stream's messages (by sequence or time range, and subject) to their
    /// own subject, into a stage, or to another subject. Users are not notified again:
    /// the idempotency keys hold.
    Replay(ReplayArgs),
    /// Status of every stream and consumer: messages, bytes, pending, unacked,
    /// redeliveries, oldest unacked age.
    Streams {
        #[command(flatten)]
        nats: ServersArgs,
    },
    /// Dead-lettered messages: list them with their errors, re-drive them after a fix.
    Dlq {
        #[command(subcommand)]
        command: DlqCmd,
    },
}

#[derive(clap::Args, Debug)]
struct ReplayArgs {
    #[command(flatten)]
    nats: ServersArgs,
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
    /// Replay into this stage (router, dedup, fanout, track, multiplier, signals_inbox,
    /// credit, payments_inbox): the stream must be the one the stage consumes; messages
    /// keep their subjects.
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
        nats: ServersArgs,
        /// Only this stage's dead letters (router, dedup, fanout, signals_inbox, credit,
        /// payments_inbox, feed, solana, bot, bot_inbound, ...).
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
        nats: ServersArgs,
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

/// The stream a stage consumes, from the registry's consumers.
fn stage_stream(stage: &str) -> anyhow::Result<String> {
    let consumers = compose::all_consumers();
    consumers
        .iter()
        .find(|c| c.durable == stage)
        .map(|c| c.stream.clone())
        .ok_or_else(|| {
            let known: Vec<&str> = consumers.iter().map(|c| c.durable.as_str()).collect();
            anyhow::anyhow!("unknown stage {stage:?}: {}", known.join(", "))
        })
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
    let js = compose::connect(&args.nats).await?;
    let opts = replay::Options {
        rate: args.rate,
        dry_run: args.dry_run,
        progress: true,
    };
    let summary = replay::replay(&js, &sel, &target, &opts).await?;
    println!("{}{summary}", if args.dry_run { "dry run: " } else { "" });
    Ok(())
}

impl Cli {
    /// Parses the command line, with every registered product's flags on `run` and its
    /// operator commands under `pipeline <product>` (see [`compose::with_operators`]).
    pub fn parse_with_products() -> Invocation {
        let cmd = compose::with_operators(Cli::command().mut_subcommand("run", compose::with_product_args));
        let matches = cmd.get_matches();
        if let Some((name, sub)) = matches.subcommand() {
            if let Some(op) = compose::registration(name).ok().and_then(|r| r.operator) {
                return Invocation::Operator(op, sub.clone());
            }
        }
        let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
        cli.matches = matches;
        Invocation::Core(Box::new(cli))
    }

    pub async fn run(self) -> anyhow::Result<()> {
        match self.command {
            Cmd::Setup {
                nats,
                update,
                replicas,
                allow_unsynced_money,
                move_money,
            } => {
                let js = compose::connect(&nats).await?;
                herald_runtime::durability::require_synced_money(&js, &nats.money_monitors(), allow_unsynced_money).await?;
                if move_money {
                    let names = js.classes().money_stream_names();
                    for moved in herald_runtime::relocate::move_money(&js, &names).await? {
                        println!("moved {} ({} messages) to the money server", moved.stream, moved.messages);
                    }
                }
                let replicas = match replicas {
                    Some(n) => herald_runtime::setup::Replicas::Exactly(n as usize),
                    None => herald_runtime::setup::Replicas::Existing,
                };
                for applied in compose::setup_all(&js, update, replicas).await? {
                    println!("{applied:?}");
                }
                // a stage updates its consumer when it starts; show what it will change
                for drift in compose::consumer_drift(&js).await? {
                    println!("{drift} (updated when the stage starts)");
                }
                Ok(())
            }
            Cmd::Run(core) => {
                let run = self.matches.subcommand_matches("run").expect("the run subcommand was parsed");
                compose::run(*core, run).await
            }
            Cmd::Replay(args) => replay(args).await,
            Cmd::Streams { nats } => {
                let js = compose::connect(&nats).await?;
                print!(
                    "{}",
                    herald_pipeline::ops::streams::render(
                        &herald_pipeline::ops::streams::status(&js, &compose::definitions_of_all().0).await?
                    )
                );
                Ok(())
            }
            Cmd::Dlq {
                command: DlqCmd::List { nats, stage, limit },
            } => {
                let js = compose::connect(&nats).await?;
                print!(
                    "{}",
                    herald_pipeline::ops::dlq::render(&herald_pipeline::ops::dlq::list(&js, stage.as_deref(), limit).await?)
                );
                Ok(())
            }
            Cmd::Dlq {
                command: DlqCmd::Redrive { nats, seqs, to, keep },
            } => {
                let js = compose::connect(&nats).await?;
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
