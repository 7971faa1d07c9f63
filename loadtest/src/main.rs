//! `loadtest`: Herald's load-test harness. See `loadtest --help`.

use clap::{Parser, Subcommand};
use herald_loadtest::emulator::{Emulator, EmulatorLimits};
use herald_loadtest::feed::{parse_frames, FeedServer};
use herald_loadtest::{bench, demo, run};

/// Load-test harness: Bot API emulator, token feed server, load runs, the demo.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// The main job: real recorded inputs through a whole local stack, printed.
    Demo {
        /// Keep every log here, the processes' and this one's (default: a new temporary
        /// directory, printed at the end).
        #[arg(long)]
        log_dir: Option<std::path::PathBuf>,
        /// Products to play: signals, payments, chat, lottery, trivia (default: all).
        products: Vec<String>,
    },
    /// The random chat through a whole local stack: pairing, every message kind, an
    /// album, a reply, an edit, /next, /report and a ban, printed as a transcript.
    DemoChat {
        /// Keep process logs here (default: a temporary directory).
        #[arg(long)]
        log_dir: Option<std::path::PathBuf>,
    },
    /// A full lottery round through a whole local stack: deposits on anvil, /buy, the
    /// close, a beacon from the drand relay stand-in, the winners paid, everyone told, and
    /// the draw checked by `herald-verify`.
    DemoLottery {
        /// Keep process logs here (default: a temporary directory).
        #[arg(long)]
        log_dir: Option<std::path::PathBuf>,
        /// SIGKILL the pipeline between the close and the draw, and restart it.
        #[arg(long)]
        kill9_after_close: bool,
        /// SIGKILL the money server during the purchases, then the events and the money
        /// server between the close and the draw; each restarts on its store.
        #[arg(long)]
        kill9_servers: bool,
    },
    /// Serve the Telegram Bot API emulator until Ctrl-C.
    Emulator {
        #[arg(long, default_value = "127.0.0.1:8081")]
        listen: std::net::SocketAddr,
        #[command(flatten)]
        limits: EmulatorLimits,
    },
    /// Serve a websocket feed: replay a recorded file at a rate, then stay open.
    Feed {
        #[arg(long, default_value = "127.0.0.1:9700")]
        listen: std::net::SocketAddr,
        /// JSONL, JSON array, or comma-separated frames file.
        #[arg(long)]
        replay: std::path::PathBuf,
        /// Frames per second.
        #[arg(long, default_value_t = 100)]
        rate: u64,
    },
    /// Drive the signals scenario against a running pipeline and report.
    Run(run::RunArgs),
    /// The signal path with stages that decide nothing, until SIGTERM: the ceiling
    /// `bench --scenario throughput` compares Herald with.
    NullPipeline(herald_loadtest::null_pipeline::NullArgs),
    /// Measure the README's figures, each on a fresh local stack.
    Bench {
        #[arg(long, value_enum, default_value = "all")]
        scenario: bench::Bench,
        /// Write the JSON reports here.
        #[arg(long)]
        json: Option<std::path::PathBuf>,
        /// Write one SVG chart per run into this directory.
        #[arg(long)]
        charts: Option<std::path::PathBuf>,
        /// The chat scenario: users (paired two by two).
        #[arg(long, default_value_t = 10_000)]
        chat_users: usize,
        /// The chat scenario: relayed messages per second.
        #[arg(long, default_value_t = 1_000)]
        chat_rate: u64,
        /// The chat scenario: seconds of relaying.
        #[arg(long, default_value_t = 20)]
        chat_secs: u64,
        #[command(flatten)]
        lottery: herald_loadtest::lottery_bench::LotteryBenchArgs,
        #[command(flatten)]
        trivia: herald_loadtest::trivia_bench::TriviaBenchArgs,
        /// The withdrawals scenario: withdrawals, one per user.
        #[arg(long, default_value_t = 100)]
        withdrawals: u64,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Cmd::Demo { log_dir, products } = cli.command {
        // the transcript alone on the terminal; library lines go to the log folder
        let log_dir = match log_dir {
            Some(dir) => dir,
            None => tempfile::Builder::new().prefix("herald-demo-").tempdir()?.keep(),
        };
        std::fs::create_dir_all(&log_dir)?;
        herald_runtime::telemetry::init_logging_to(&log_dir.join("loadtest.log"))?;
        return demo::play(&products, log_dir).await;
    }
    herald_runtime::telemetry::init_logging();
    match cli.command {
        Cmd::Demo { .. } => unreachable!("played above"),
        Cmd::DemoChat { log_dir } => {
            let summary = demo::chat::run(log_dir).await?;
            print!("{}", demo::chat::transcript(&summary));
            println!(
                "\n{} kinds relayed, {} refusals told, an album of {} as one copyMessages, a reply and an edit; clean shutdown: {}",
                summary.kinds.len(),
                summary.refused.len(),
                summary.album.len(),
                summary.clean_shutdown
            );
        }
        Cmd::DemoLottery {
            log_dir,
            kill9_after_close,
            kill9_servers,
        } => {
            let s = demo::lottery::run(demo::lottery::Options {
                log_dir,
                kill9_after_close,
                kill9_servers,
            })
            .await?;
            println!(
                "\nround {}: drawn {} time(s), {} payouts (each paid {:?} time(s)), inclusion proof: {}, verifier: {}",
                s.round,
                s.steps.get("drawn").copied().unwrap_or(0),
                s.payouts.len(),
                s.payouts.values().collect::<std::collections::BTreeSet<_>>(),
                if s.proof_verified { "verified" } else { "NOT verified" },
                if s.verified { "verified" } else { "NOT verified" }
            );
            anyhow::ensure!(s.verified && s.proof_verified, "the verifier refused the draw or the proof");
        }
        Cmd::Emulator { listen, limits } => {
            let e = Emulator::start(listen, limits).await?;
            println!("Bot API emulator on {} (TELOXIDE_API_URL={})", e.addr, e.url());
            tokio::signal::ctrl_c().await?;
        }
        Cmd::Feed { listen, replay, rate } => {
            let frames = parse_frames(&std::fs::read_to_string(&replay)?)?;
            let feed = FeedServer::start(listen).await?;
            println!("feed on {}; waiting for a client", feed.url());
            feed.wait_for_clients(1, std::time::Duration::from_secs(3600)).await?;
            let mut tick = tokio::time::interval(std::time::Duration::from_secs_f64(1.0 / rate.max(1) as f64));
            for f in &frames {
                tick.tick().await;
                feed.publish(f.clone());
            }
            println!("replayed {} frames", frames.len());
            tokio::signal::ctrl_c().await?;
        }
        Cmd::Bench {
            scenario: bench::Bench::Chat,
            json,
            chat_users,
            chat_rate,
            chat_secs,
            ..
        } => {
            let report = herald_loadtest::chat_bench::run(chat_users, chat_rate, chat_secs).await?;
            println!("{report}");
            if let Some(path) = json {
                std::fs::write(path, serde_json::to_string_pretty(&report)?)?;
            }
        }
        Cmd::Bench {
            scenario: bench::Bench::Lottery,
            json,
            lottery,
            ..
        } => {
            let report = herald_loadtest::lottery_bench::run(&lottery).await?;
            println!("{report}");
            if let Some(path) = json {
                std::fs::write(path, serde_json::to_string_pretty(&report)?)?;
            }
        }
        Cmd::Bench {
            scenario: bench::Bench::Durability,
            json,
            ..
        } => {
            let report = herald_loadtest::durability_bench::run().await?;
            println!("{report}");
            if let Some(path) = json {
                std::fs::write(path, serde_json::to_string_pretty(&report)?)?;
            }
        }
        Cmd::Bench {
            scenario: bench::Bench::Withdrawals,
            json,
            withdrawals,
            ..
        } => {
            let report = herald_loadtest::withdrawals_bench::run(withdrawals).await?;
            println!("{report}");
            if let Some(path) = json {
                std::fs::write(path, serde_json::to_string_pretty(&report)?)?;
            }
        }
        Cmd::Bench {
            scenario: bench::Bench::Trivia,
            json,
            trivia,
            ..
        } => {
            let report = herald_loadtest::trivia_bench::run(&trivia).await?;
            println!("{report}");
            if let Some(path) = json {
                std::fs::write(path, serde_json::to_string_pretty(&report)?)?;
            }
        }
        Cmd::Bench {
            scenario, json, charts, ..
        } => {
            if let Some(dir) = &charts {
                std::fs::create_dir_all(dir)?;
            }
            let reports = bench::bench(scenario, charts.as_deref()).await?;
            for r in &reports {
                println!("{r}");
            }
            println!("{}", bench::table(&reports));
            if let Some(path) = json {
                std::fs::write(path, serde_json::to_string_pretty(&reports)?)?;
            }
        }
        Cmd::NullPipeline(args) => herald_loadtest::null_pipeline::run(args).await?,
        Cmd::Run(args) => {
            let json = args.json.clone();
            let report = run::run(args).await?;
            println!("{report}");
            let text = serde_json::to_string_pretty(&report)?;
            match json {
                Some(path) => std::fs::write(path, text)?,
                None => println!("{text}"),
            }
        }
    }
    Ok(())
}
