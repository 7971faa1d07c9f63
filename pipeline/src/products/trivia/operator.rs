//! `pipeline trivia …`: the question bank's operator commands, and rebuilding the
//! boards and stats after Redis lost them.

use clap::{FromArgMatches, Subcommand};
use futures::future::BoxFuture;
use herald_runtime::classes::Classes;
use herald_runtime::config::ServersArgs;

use crate::core::product::Operator;

/// The hook the registry puts under `pipeline trivia`.
pub const OPERATOR: Operator = Operator {
    about: "Trivia's question bank; rebuilding boards and stats",
    command: TriviaCmd::augment_subcommands,
    run,
};

/// `pipeline trivia` subcommands.
#[derive(Subcommand, Debug)]
pub enum TriviaCmd {
    /// Load an Open Trivia DB dump (`{"results": [...]}`, opentdb's api.php shape) as
    /// the question bank every pipeline plays from its next start; entities are decoded
    /// and questions a quiz poll cannot carry are skipped (and listed).
    Import {
        #[command(flatten)]
        nats: ServersArgs,
        /// The dump (JSON).
        file: std::path::PathBuf,
    },
    /// Rebuild every player's stats, the leaderboards and the names in Redis from the
    /// TRIVIA_RESULTS stream (scored results and game ends, kept for good), after Redis
    /// lost them. Clears trivia's scoring keys first: run it with the scorer stopped.
    Rebuild {
        #[command(flatten)]
        nats: ServersArgs,
        #[command(flatten)]
        redis: herald_runtime::config::RedisArgs,
    },
}

fn run(matches: clap::ArgMatches, classes: Classes) -> BoxFuture<'static, anyhow::Result<()>> {
    Box::pin(async move {
        let (nats, file) = match TriviaCmd::from_arg_matches(&matches)? {
            TriviaCmd::Import { nats, file } => (nats, file),
            TriviaCmd::Rebuild { nats, redis } => {
                let js = nats.connect(classes).await?;
                let trivia = super::store::TriviaRedis::new(redis.connect().await?);
                let done = trivia.rebuild(&js).await?;
                println!(
                    "rebuilt from TRIVIA_RESULTS: {} scored answers, {} finished games ({} unreadable messages skipped)",
                    done.results, done.games, done.unreadable
                );
                return Ok(());
            }
        };
        let json = std::fs::read_to_string(&file).map_err(|e| anyhow::anyhow!("reading {}: {e}", file.display()))?;
        let js = nats.connect(classes).await?;
        let bank = super::import_bank(&js, &json).await?;
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
    })
}
