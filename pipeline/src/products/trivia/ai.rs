//! The optional AI explainer: a short explanation per question from an
//! OpenAI-compatible chat-completions endpoint (DeepSeek's API is one), generated once
//! and cached.
//!
//! Nothing waits for it: a question is asked with the explanation cached by then, or
//! the bank's (none for opentdb), and a question without one asks the
//! `trivia_explainer` stage for one (`herald.trivia.explain.<question>`). A timeout or
//! an error leaves the question without one; a later asking tries again.

use std::sync::Arc;
use std::time::Duration;

use herald_runtime::{Decision, MsgMeta, Stage, StageError};
use herald_schemas::ExplainRequest;
use redis::AsyncCommands;
use serde_json::{json, Value};

use super::bank::Question;
use super::service::{Trivia, EXPLANATIONS};

/// Telegram takes a quiz explanation of at most 200 characters and 2 line feeds
/// (core.telegram.org/bots/api#sendpoll); kept under, with room for escaping.
pub const MAX_EXPLANATION: usize = 180;

/// An OpenAI-compatible chat-completions client.
#[derive(Clone)]
pub struct AiClient {
    http: reqwest::Client,
    /// `…/chat/completions`.
    url: String,
    key: String,
    model: String,
}

/// Why no explanation came.
#[derive(Debug, thiserror::Error)]
pub enum AiError {
    #[error("the AI endpoint timed out")]
    Timeout,
    #[error("the AI endpoint answered {status}: {message}")]
    Status { status: u16, message: String },
    #[error("the AI endpoint failed: {0}")]
    Other(String),
}

impl AiClient {
    /// A client of `base` (`https://api.deepseek.com`, `https://api.openai.com/v1`):
    /// requests go to `<base>/chat/completions` with `key` as the bearer token and give
    /// up after `timeout`.
    ///
    /// Errors: the HTTP client cannot be built.
    pub fn new(base: &str, key: &str, model: &str, timeout: Duration) -> anyhow::Result<Self> {
        Ok(AiClient {
            http: reqwest::Client::builder().timeout(timeout).build()?,
            url: format!("{}/chat/completions", base.trim_end_matches('/')),
            key: key.into(),
            model: model.into(),
        })
    }

    /// One explanation of why `q`'s answer is right, cleaned to one line of at most
    /// [`MAX_EXPLANATION`] characters.
    ///
    /// Errors: [`AiError`]: a timeout, a non-2xx answer (with the endpoint's
    /// `error.message`), or a body without `choices[0].message.content`.
    pub async fn explain(&self, q: &Question) -> Result<String, AiError> {
        let answer = &q.options[q.correct as usize];
        let body = json!({
            "model": self.model,
            "messages": [
                {"role": "system", "content": "You explain trivia answers in one or two short sentences, under 180 characters, plain text."},
                {"role": "user", "content": format!("Question: {}\nCorrect answer: {answer}\nWhy is it correct?", q.text)},
            ],
            "max_tokens": 80,
            "temperature": 0.2,
            "stream": false,
        });
        let response = self.http.post(&self.url).bearer_auth(&self.key).json(&body).send().await.map_err(|e| match e.is_timeout() {
            true => AiError::Timeout,
            false => AiError::Other(e.to_string()),
        })?;
        let status = response.status();
        let value: Value = response.json().await.map_err(|e| match e.is_timeout() {
            true => AiError::Timeout,
            false => AiError::Other(format!("unreadable body: {e}")),
        })?;
        if !status.is_success() {
            let message = value.pointer("/error/message").and_then(Value::as_str).unwrap_or("no message").to_string();
            return Err(AiError::Status {
                status: status.as_u16(),
                message,
            });
        }
        let text = value
            .pointer("/choices/0/message/content")
            .and_then(Value::as_str)
            .ok_or_else(|| AiError::Other("no choices[0].message.content".into()))?;
        Ok(clean(text))
    }
}

/// One line, at most [`MAX_EXPLANATION`] characters (cut at a word).
///
/// ```
/// use herald_pipeline::products::trivia::ai::clean;
/// assert_eq!(clean("  Paris is\nthe capital.  "), "Paris is the capital.");
/// assert!(clean(&"word ".repeat(100)).chars().count() <= 180);
/// ```
pub fn clean(text: &str) -> String {
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= MAX_EXPLANATION {
        return one_line;
    }
    let cut: String = one_line.chars().take(MAX_EXPLANATION - 1).collect();
    let cut = cut.rsplit_once(' ').map(|(a, _)| a.to_string()).unwrap_or(cut);
    format!("{cut}…")
}

/// The explainer stage: `herald.trivia.explain.<question>` -> an explanation in the
/// cache (`herald:trivia:explanations`), once per question.
pub struct TriviaExplainer {
    pub trivia: Arc<Trivia>,
    pub ai: AiClient,
}

impl Stage for TriviaExplainer {
    const NAME: &'static str = "trivia_explainer";
    type Input = ExplainRequest;
    /// (question id, explanation) to cache.
    type Commit = (String, String);
    type Effect = std::convert::Infallible;

    fn decode(&self, payload: &[u8]) -> Result<ExplainRequest, String> {
        herald_schemas::decode(payload).map_err(|e| e.to_string())
    }

    /// Asks the endpoint (a read: nothing changes until the commit caches the answer).
    async fn decide(&self, req: ExplainRequest, _meta: &MsgMeta) -> Result<Decision<Self::Commit>, StageError> {
        let Some(q) = self.trivia.bank.get(&req.question_id) else {
            return Err(StageError::Permanent(format!("no question {} in the bank", req.question_id)));
        };
        let cached: bool = self.trivia.redis.redis.clone().hexists(EXPLANATIONS, &req.question_id).await?;
        if cached {
            return Ok(Decision::Drop { reason: "explained_already" });
        }
        match self.ai.explain(q).await {
            Ok(text) if !text.is_empty() => Ok(Decision::Forward {
                outputs: Vec::new(),
                commit: (req.question_id, text),
            }),
            Ok(_) => Ok(Decision::Drop { reason: "ai_empty" }),
            Err(e) => {
                // the question goes without; a later asking tries again
                tracing::warn!(question = %req.question_id, error = %e, "no AI explanation");
                metrics::counter!(super::metrics::AI_FAILURES.name).increment(1);
                Ok(Decision::Drop { reason: "ai_failed" })
            }
        }
    }

    async fn commit(&self, (id, text): Self::Commit) -> Result<(), StageError> {
        let _: () = self.trivia.redis.redis.clone().hset_nx(EXPLANATIONS, id, text).await?;
        metrics::counter!(super::metrics::AI_EXPLANATIONS.name).increment(1);
        Ok(())
    }
}
