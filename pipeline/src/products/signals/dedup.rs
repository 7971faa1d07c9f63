//! Dedup: passes a call on only if its caller is new for the token.
//!
//! State per token in Redis ([`TokenState`]): the callers seen, each claimed atomically
//! by the call that introduced it, so two concurrent calls of one caller cannot both
//! pass. A redelivery of the claiming call passes again (a crash between claim and
//! publish loses nothing; the signal's message id drops the copy). The token's status
//! and TTL are recorded only after the signal is acknowledged by the SIGNALS stream.

use herald_schemas::{subjects, CallEvent, Signal};

use super::token_state::TokenState;
use herald_runtime::{Decision, MsgMeta, Output, Stage, StageError};

/// What dedup does with a call, given the result of its claim.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// The caller was seen for this token before: nothing new.
    Duplicate,
    /// A new caller; `all_caller_ids` lists every caller including this one, sorted.
    NewCaller { all_caller_ids: Vec<String> },
}

/// The dedup decision from a claim's answer (every caller id if the claim succeeded,
/// nothing if another call of the caller holds it).
///
/// ```
/// use herald_pipeline::products::signals::dedup::{verdict, Verdict};
/// assert_eq!(verdict(vec![]), Verdict::Duplicate);
/// assert_eq!(verdict(vec!["b".into(), "a".into()]), Verdict::NewCaller { all_caller_ids: vec!["a".into(), "b".into()] });
/// ```
pub fn verdict(mut claimed: Vec<String>) -> Verdict {
    if claimed.is_empty() {
        return Verdict::Duplicate;
    }
    claimed.sort();
    Verdict::NewCaller { all_caller_ids: claimed }
}

/// Message id of the signal for one call: `<chain>:<token>|<call msg id>`. A redelivered
/// call republishes the same id and the SIGNALS stream's duplicate window drops it; a
/// later call by the same caller (after its token expired) is a new message.
pub fn signal_msg_id(call: &CallEvent) -> String {
    format!("{}|{}", call.token_key(), call.msg_id())
}

/// The dedup stage (consumes `herald.calls.>`).
pub struct DedupStage {
    pub state: TokenState,
}

impl Stage for DedupStage {
    const NAME: &'static str = "dedup";
    type Input = CallEvent;
    type Commit = String;
    type Effect = std::convert::Infallible;

    fn decode(&self, payload: &[u8]) -> Result<CallEvent, String> {
        herald_schemas::decode(payload).map_err(|e| e.to_string())
    }

    async fn decide(&self, call: CallEvent, _meta: &MsgMeta) -> Result<Decision<String>, StageError> {
        let token_key = call.token_key();
        let claimed = self.state.claim(&token_key, &call.caller.id, &call.msg_id()).await?;
        match verdict(claimed) {
            Verdict::Duplicate => Ok(Decision::Drop { reason: "no_new_caller" }),
            Verdict::NewCaller { all_caller_ids } => {
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
                    commit: token_key,
                })
            }
        }
    }

    async fn commit(&self, token_key: String) -> Result<(), StageError> {
        Ok(self.state.record_seen(&token_key).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_with_callers_is_new_and_sorted() {
        assert_eq!(
            verdict(vec!["c1".into()]),
            Verdict::NewCaller {
                all_caller_ids: vec!["c1".into()]
            }
        );
        assert_eq!(
            verdict(vec!["z".into(), "b".into(), "m".into()]),
            Verdict::NewCaller {
                all_caller_ids: vec!["b".into(), "m".into(), "z".into()]
            }
        );
        assert_eq!(verdict(Vec::new()), Verdict::Duplicate);
    }
}
