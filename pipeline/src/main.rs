//! `pipeline`: Herald's stream-processing binary. See `pipeline --help`.

mod cli;

// mimalloc: the stages allocate per message; glibc malloc was a quarter of the CPU profile.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    herald_runtime::telemetry::init_logging();
    cli::Cli::parse_with_products().run().await
}
