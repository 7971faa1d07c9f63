//! `pipeline trivia …`: the question bank's operator commands.

use clap::{FromArgMatches, Subcommand};
use futures::future::BoxFuture;
use herald_runtime::classes::Classes;
use herald_runtime::config::ServersArgs;

use crate::core::product::Operator;

/// The hook the registry puts under `pipeline trivia`.
pub const OPERATOR: Operator = Operator {
    about: "Trivia's question bank",
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
}

fn run(matches: clap::ArgMatches, classes: Classes) -> BoxFuture<'static, anyhow::Result<()>> {
    Box::pin(async move {
        let TriviaCmd::Import { nats, file } = TriviaCmd::from_arg_matches(&matches)?;
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
