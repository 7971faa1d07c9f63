//! The polls stage: the bot's delivery reports of trivia's quiz polls
//! (`herald.trivia.poll.<game>`) -> poll id -> `<game>:<question>` in the polls
//! bucket, which is how a `poll_answer` (it names only the poll) finds its game.

use std::sync::Arc;

use herald_runtime::{Decision, MsgMeta, Stage, StageError};
use herald_schemas::{DeliveryReport, Outcome};

use super::service::Trivia;

/// The stage.
pub struct TriviaPolls {
    pub trivia: Arc<Trivia>,
}

/// `trivia:<game>:q<index>` -> (game, index).
///
/// ```
/// use herald_pipeline::products::trivia::polls::question_of;
/// assert_eq!(question_of("trivia:p17:q3"), Some(("p17".to_string(), 3)));
/// assert_eq!(question_of("trivia:p17:end"), None);
/// ```
pub fn question_of(key: &str) -> Option<(String, u32)> {
    let rest = key.strip_prefix("trivia:")?;
    let (game, q) = rest.rsplit_once(':')?;
    Some((game.to_string(), q.strip_prefix('q')?.parse().ok()?))
}

impl Stage for TriviaPolls {
    const NAME: &'static str = "trivia_polls";
    type Input = DeliveryReport;
    /// (poll id, game, question) to record.
    type Commit = (String, String, u32);
    type Effect = std::convert::Infallible;

    fn decode(&self, payload: &[u8]) -> Result<DeliveryReport, String> {
        herald_schemas::decode(payload).map_err(|e| e.to_string())
    }

    async fn decide(&self, report: DeliveryReport, _meta: &MsgMeta) -> Result<Decision<Self::Commit>, StageError> {
        let Some((game, question)) = question_of(&report.idempotency_key) else {
            return Err(StageError::Permanent(format!("not a trivia question's report: {}", report.idempotency_key)));
        };
        match (&report.outcome, report.poll_id) {
            (Outcome::Sent { .. }, Some(poll)) => Ok(Decision::Forward {
                outputs: Vec::new(),
                commit: (poll, game, question),
            }),
            (Outcome::Sent { .. }, None) => Err(StageError::Permanent("a sent poll's report without its poll id".into())),
            // blocked or refused: the question times out and the game moves on
            _ => Ok(Decision::Drop { reason: "poll_not_sent" }),
        }
    }

    async fn commit(&self, (poll, game, question): Self::Commit) -> Result<(), StageError> {
        self.trivia.polls.put(&poll, &game, question).await?;
        Ok(())
    }
}
