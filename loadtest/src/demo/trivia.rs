//! Trivia, end to end (`loadtest demo trivia`): Tess /starts the bot and plays a
//! private game of three quiz polls from the sample bank, answering right, wrong, right
//! by voting in the emulator as a Telegram client would; the exactly-once scorer scores
//! each vote; then she asks for /stats. Everything passes through the emulator, the bot
//! and the pipeline.

use std::path::PathBuf;
use std::time::Duration;

use herald_pipeline::products::trivia::bank::Bank;

use crate::emulator::Delivery;
use crate::stack::{private_text, Stack, StackOptions};

/// The player.
pub const TESS: i64 = 6001;
const QUESTIONS: usize = 3;

/// What happened, for the transcript and the tests.
pub struct TriviaSummary {
    pub deliveries: Vec<Delivery>,
    /// Answers she got right, of [`QUESTIONS`].
    pub right: usize,
    /// The game's end message.
    pub end: String,
    /// The scorer's own count of answers scored (`herald_trivia_scored_total`).
    pub scored: f64,
    /// `/stats`' answer.
    pub stats: String,
}

async fn until(stack: &Stack, what: &str, pred: impl Fn(&Delivery) -> bool) -> anyhow::Result<Delivery> {
    let d = stack
        .wait_for_deliveries(Duration::from_secs(60), |d| d.iter().any(&pred))
        .await
        .map_err(|e| anyhow::anyhow!("{what}: {e}; logs in {}", stack.log_dir.display()))?;
    Ok(d.into_iter().find(|x| pred(x)).expect("found above"))
}

/// Plays the game on a fresh stack (trivia only, 10 s per question).
///
/// Errors: the stack did not start, or a step did not happen within 60 s.
pub async fn run(log_dir: Option<PathBuf>) -> anyhow::Result<TriviaSummary> {
    let args = ["--products", "trivia", "--trivia-question-time", "10s", "--trivia-questions", "3"];
    let opts = StackOptions {
        pipeline_args: args.iter().map(|s| s.to_string()).collect(),
        log_dir,
        ..Default::default()
    };
    println!("Starting nats-server, redis-server, the Bot API emulator, pipeline and bot (trivia)...");
    let mut stack = Stack::start(opts).await?;
    println!("Logs: {}", stack.log_dir.display());
    let bank = Bank::sample();
    stack.emulator.push_update(private_text(TESS, "/start"));
    stack.emulator.push_update(private_text(TESS, "/trivia any"));
    let mut right = 0;
    for i in 0..QUESTIONS {
        let prefix = format!("{}/{QUESTIONS} · ", i + 1);
        let poll = until(&stack, &format!("question {}", i + 1), |d| {
            d.method == "sendPoll" && d.chat_id == TESS && d.text.starts_with(&prefix)
        })
        .await?;
        let q = bank
            .questions
            .iter()
            .find(|q| poll.text.ends_with(&q.text))
            .ok_or_else(|| anyhow::anyhow!("no bank question in {:?}", poll.text))?;
        // right, wrong, right
        let option = match i {
            1 => (q.correct as usize + 1) % q.options.len(),
            _ => q.correct as usize,
        };
        right += usize::from(option == q.correct as usize);
        let poll_id = poll.poll_id.as_deref().ok_or_else(|| anyhow::anyhow!("a poll without an id"))?;
        stack.emulator.vote(poll_id, TESS, option).map_err(anyhow::Error::msg)?;
        println!("Tess answers question {}: {:?}", i + 1, q.options[option]);
    }
    let end = until(&stack, "the game's end", |d| d.chat_id == TESS && d.text.contains("Game over")).await?;
    stack.emulator.push_update(private_text(TESS, "/stats"));
    let stats = until(&stack, "/stats", |d| d.chat_id == TESS && d.text.contains("Your trivia")).await?;
    let metrics = stack.pipeline.metrics().await?;
    let scored = herald_runtime::metric::sum_in(&metrics, "herald_trivia_scored_total", &[]);
    let deliveries = stack.emulator.deliveries();
    stack.pipeline.terminate();
    stack.bot.terminate();
    Ok(TriviaSummary {
        deliveries,
        right,
        end: end.text,
        scored,
        stats: stats.text,
    })
}

/// The transcript `loadtest demo trivia` prints: what Tess was sent, then a summary.
pub fn transcript(s: &TriviaSummary) -> String {
    let mut out = String::from("\n=== What Tess was sent ===\n");
    for d in s.deliveries.iter().filter(|d| d.chat_id == TESS) {
        out.push_str(&format!("--- {}:\n{}\n", d.method, super::strip_tags(&d.text)));
    }
    out.push_str(&format!(
        "\ntrivia: {}/{QUESTIONS} right, {} answers scored by the scorer (each once)\n",
        s.right, s.scored
    ));
    out
}
