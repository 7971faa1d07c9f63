//! Dedup: passes a call on only if its caller is new for the token.
//!
//! State per token in Redis ([`TokenState`]): the callers seen. It is recorded only after
//! the signal is acknowledged by the SIGNALS stream, so a crash in between republishes
//! (the signal's message id drops the copy) instead of losing the call.

use herald_schemas::{subjects, CallEvent, Signal};

use super::token_state::TokenState;
use crate::runtime::{Decision, MsgMeta, Output, Stage, StageError};

/// What dedup does with a call, given the callers already seen for its token.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// The caller was seen for this token before: nothing new.
    Duplicate,
    /// A new caller; `all_caller_ids` lists every caller including this one, sorted.
    NewCaller { all_caller_ids: Vec<String> },
}

/// The dedup decision, free of I/O.
///
/// ```
/// use herald_pipeline::stages::dedup::{verdict, Verdict};
/// assert_eq!(verdict(&["a".into()], "a"), Verdict::Duplicate);
/// assert_eq!(verdict(&["a".into()], "b"), Verdict::NewCaller { all_caller_ids: vec!["a".into(), "b".into()] });
/// ```
pub fn verdict(seen: &[String], caller_id: &str) -> Verdict {
    if seen.iter().any(|c| c == caller_id) {
        return Verdict::Duplicate;
    }
    let mut all: Vec<String> = seen.to_vec();
    all.push(caller_id.to_string());
    all.sort();
    Verdict::NewCaller {
        all_caller_ids: all,
    }
}

/// Message id of the signal for one (token, caller): a redelivered call republishes the
/// same id and the SIGNALS stream's duplicate window drops it.
pub fn signal_msg_id(call: &CallEvent) -> String {
    format!("{}:{}", call.token_key(), call.caller.id)
}

/// The dedup stage (consumes `herald.calls.>`).
pub struct DedupStage {
    pub state: TokenState,
}

impl Stage for DedupStage {
    const NAME: &'static str = "dedup";
    type Input = CallEvent;
    type Commit = (String, String);

    fn decode(&self, payload: &[u8]) -> Result<CallEvent, String> {
        herald_schemas::decode(payload).map_err(|e| e.to_string())
    }

    async fn decide(
        &self,
        call: CallEvent,
        _meta: &MsgMeta,
    ) -> Result<Decision<(String, String)>, StageError> {
        let token_key = call.token_key();
        let seen = self.state.callers(&token_key).await?;
        match verdict(&seen, &call.caller.id) {
            Verdict::Duplicate => Ok(Decision::Drop {
                reason: "no_new_caller",
            }),
            Verdict::NewCaller { all_caller_ids } => {
                let caller_id = call.caller.id.clone();
                let signal = Signal {
                    v: 1,
                    new_callers: vec![call.caller.clone()],
                    all_caller_ids,
                    call,
                };
                let output = Output {
                    subject: subjects::signal(signal.call.chain.as_str()),
                    msg_id: signal_msg_id(&signal.call),
                    payload: herald_schemas::encode(&signal),
                };
                Ok(Decision::Forward {
                    outputs: vec![output],
                    commit: (token_key, caller_id),
                })
            }
        }
    }

    async fn commit(&self, (token_key, caller_id): (String, String)) -> Result<(), StageError> {
        Ok(self.state.record_caller(&token_key, &caller_id).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_sighting_passes_with_its_caller() {
        assert_eq!(
            verdict(&[], "c1"),
            Verdict::NewCaller {
                all_caller_ids: vec!["c1".into()]
            }
        );
    }

    #[test]
    fn only_new_callers_pass() {
        let seen = vec!["b".to_string(), "a".to_string()];
        assert_eq!(verdict(&seen, "b"), Verdict::Duplicate);
        assert_eq!(
            verdict(&seen, "c"),
            Verdict::NewCaller {
                all_caller_ids: vec!["a".into(), "b".into(), "c".into()]
            }
        );
    }
}
