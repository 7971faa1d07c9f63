//! The `pipeline` command line.

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use herald_pipeline::core::compose::{self, CoreArgs};
use herald_runtime::config::ServersArgs;
use herald_schemas::subjects;

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
    /// The deposit wallet: make the account xpub from the mnemonic, list the addresses an
    /// xpub derives, sweep deposits to the treasury (xpub, gas-address and sweep are the
    /// only commands that read the mnemonic).
    Wallet {
        #[command(subcommand)]
        command: WalletCmd,
    },
    /// Trivia's question bank.
    Trivia {
        #[command(subcommand)]
        command: TriviaCmd,
    },
}

#[derive(Subcommand, Debug)]
enum TriviaCmd {
    /// Load an Open Trivia DB dump (`{"results": [...]}`, opentdb's api.php shape) as
    /// the question bank every pipeline plays from its next start; entities are decoded
    /// and questions a quiz poll cannot carry are skipped (and listed).
    Import {
        #[command(flatten)]
        nats: ServersArgs,
        /// The dump (JSON).
        file: std::path::PathBuf,
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
        nats: ServersArgs,
        /// JSON-RPC endpoint of the chain (http or https).
        #[arg(long, env = "HERALD_BSC_RPC_URL")]
        rpc_url: String,
        /// The treasury address.
        #[arg(long)]
        to: alloy::primitives::Address,
        /// Tokens to sweep, `SYMBOL:contract:decimals`, comma-separated.
        #[arg(long, env = "HERALD_DEPOSIT_TOKENS", value_delimiter = ',', default_value = herald_pipeline::products::payments::config::DEFAULT_DEPOSIT_TOKENS)]
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

/// The stream a stage consumes.
fn stage_stream(stage: &str) -> anyhow::Result<&'static str> {
    Ok(match stage {
        "router" => subjects::UPDATES_STREAM,
        "dedup" => subjects::CALLS_STREAM,
        "fanout" => subjects::SIGNALS_STREAM,
        "track" => subjects::TRACKED_STREAM,
        "multiplier" => subjects::PRICES_STREAM,
        "credit" => subjects::DEPOSITS_STREAM,
        "signals_inbox" | "payments_inbox" => subjects::COMMANDS_STREAM,
        other => {
            anyhow::bail!("unknown stage {other:?}: router, dedup, fanout, track, multiplier, signals_inbox, credit or payments_inbox")
        }
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
    /// Parses the command line, with every registered product's flags on `run`.
    pub fn parse_with_products() -> Self {
        let cmd = Cli::command().mut_subcommand("run", compose::with_product_args);
        let matches = cmd.get_matches();
        let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
        cli.matches = matches;
        cli
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
            Cmd::Trivia {
                command: TriviaCmd::Import { nats, file },
            } => {
                let json = std::fs::read_to_string(&file).map_err(|e| anyhow::anyhow!("reading {}: {e}", file.display()))?;
                let js = compose::connect(&nats).await?;
                let bank = herald_pipeline::products::trivia::import_bank(&js, &json).await?;
                for why in &bank.skipped {
                    println!("skipped {why}");
                }
                println!(
                    "imported {} questions in {} categories ({} skipped); pipelines load it when they start",
                    bank.questions.len(),
                    bank.categories.len(),
                    bank.skipped.len()
                );
                Ok(())
            }
            Cmd::Streams { nats } => {
                let js = compose::connect(&nats).await?;
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
                println!("{}", herald_pipeline::products::payments::wallet::account_xpub(&mnemonic)?);
                Ok(())
            }
            Cmd::Wallet {
                command: WalletCmd::GasAddress { mnemonic_file },
            } => {
                let mnemonic = read_mnemonic(mnemonic_file)?;
                println!("{}", herald_pipeline::products::payments::sweep::gas_address(&mnemonic)?);
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
                use herald_pipeline::products::payments::sweep::{sweep_assigned, SweepConfig};
                let mnemonic = read_mnemonic(mnemonic_file)?;
                let tokens = herald_pipeline::products::payments::config::parse_deposit_tokens(&deposit_tokens)?;
                let js = compose::connect(&nats).await?;
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
                        format!(
                            "{} {}",
                            herald_pipeline::products::payments::credit::units(s.amount, i.decimals),
                            i.symbol
                        )
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
                let wallet = herald_pipeline::products::payments::wallet::DepositWallet::from_xpub(&xpub)?;
                for i in from..from.saturating_add(count) {
                    println!("{i}\t{}", wallet.address(i)?);
                }
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
