//! `pipeline`: Herald's stream-processing binary. See `pipeline --help`.

use clap::Parser;

mod cli;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    herald_pipeline::telemetry::init_logging();
    cli::Cli::parse().run().await
}
