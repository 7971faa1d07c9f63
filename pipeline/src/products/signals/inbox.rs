//! The signals inbox stage: what the router hands to signals (`herald.cmd.signals.>`).
//!
//! - a `channel_post` with a contract address -> a call on `herald.calls.<chain>.<source>`
//! - `/filters`, `/pause`, `/resume` and the filter buttons -> a reply, and the user's
//!   new preferences ([`SignalsPrefs`] in `herald_signals_users`) stored after it is out
//!   (compare-and-set)
//! - `/calls` and its Prev/Next buttons -> a page of tracked calls (with the tracker)

use std::sync::Arc;

use async_nats::jetstream::kv;
use herald_core::users;
use herald_runtime::{records, Decision, MsgMeta, Stage, StageError};
use herald_schemas::{RoutedUpdate, SignalsPrefs};

use herald_schemas::checks::ChainList;

use crate::core::reply::Reply;

use super::calls;
use super::commands::{self, SignalsCommand};
use super::posts::channel_post_call;
use super::sources::websocket::call_output;
use super::tracking::store::CallStore;
use super::tracking::tracker::Tracker;

/// What a routed update asks of signals.
enum Ask {
    Command(SignalsCommand),
    /// A filter button.
    Edit(commands::FilterEdit),
    /// A filter button with data no menu offers: the reason and the menu again.
    BadButton(String),
    /// A command whose arguments do not parse: the reason.
    Invalid(String),
    /// A Prev/Next button of `/calls` (0-based page).
    Page(usize),
}

/// The menu with why the last press changed nothing above it.
fn with_reason(why: &str, menu: Reply) -> Reply {
    Reply {
        text: format!("⚠️ {why}\n\n{}", menu.text),
        ..menu
    }
}

/// Preferences to store once the reply is out (`revision` `None`: the first).
pub struct PrefsWrite {
    prefs: SignalsPrefs,
    revision: Option<u64>,
}

/// The stage.
pub struct SignalsInbox<S> {
    /// The core user records (a command needs a user who sent /start).
    pub users: kv::Store,
    /// Signals' preferences (`herald_signals_users`).
    pub prefs: kv::Store,
    /// The tracker, for `/calls` (when it runs in this process).
    pub calls: Option<Arc<Tracker<S>>>,
    /// Chains accepted from channel posts and in `/filters chains`.
    pub chains: ChainList,
}

impl<S: CallStore> SignalsInbox<S> {
    async fn calls_page(&self, routed: &RoutedUpdate, chat_id: i64, page: usize) -> Result<Decision<Option<PrefsWrite>>, StageError> {
        let reply = match &self.calls {
            Some(tracker) => {
                let user = routed.user_id.unwrap_or_default();
                let (list, total) = tracker.for_user(user, page * calls::PER_PAGE, calls::PER_PAGE).await?;
                calls::page(&list, total, page)
            }
            None => Reply::plain("Tracked calls are not available right now."),
        };
        Ok(Decision::Forward {
            outputs: vec![reply.output(routed.update_id, chat_id, routed.message_id)],
            commit: None,
        })
    }
}

impl<S: CallStore> Stage for SignalsInbox<S> {
    const NAME: &'static str = "signals_inbox";
    type Input = RoutedUpdate;
    type Commit = Option<PrefsWrite>;
    type Effect = std::convert::Infallible;

    fn decode(&self, payload: &[u8]) -> Result<RoutedUpdate, String> {
        herald_schemas::decode(payload).map_err(|e| e.to_string())
    }

    async fn decide(&self, routed: RoutedUpdate, _meta: &MsgMeta) -> Result<Decision<Self::Commit>, StageError> {
        if routed.kind == "channel_post" {
            return match channel_post_call(&routed.update["channel_post"], herald_schemas::now_ms(), &self.chains) {
                Ok(Some(call)) => Ok(Decision::Forward {
                    outputs: vec![call_output(&call)],
                    commit: None,
                }),
                Ok(None) => Ok(Decision::Drop { reason: "no_call_in_post" }),
                Err(reason) => Err(StageError::Permanent(reason)),
            };
        }
        let (Some(user_id), Some(chat_id)) = (routed.user_id, routed.chat_id) else {
            return Err(StageError::Permanent("routed update without a user or chat".into()));
        };
        // a command, or a button: a filter edit or a page of calls (parsed once)
        let ask = match (&routed.command, &routed.callback_data) {
            (Some(text), _) => Some(match SignalsCommand::parse_for_user(text) {
                Ok(cmd) => Ask::Command(cmd),
                Err(why) => Ask::Invalid(why),
            }),
            (None, Some(data)) => calls::parse_callback(data)
                .map(Ask::Page)
                .or_else(|| {
                    commands::parse_callback(data, &self.chains).map(|edit| match edit {
                        Ok(edit) => Ask::Edit(edit),
                        Err(why) => Ask::BadButton(why),
                    })
                }),
            (None, None) => None,
        };
        let ask = match ask {
            None => return Ok(Decision::Drop { reason: "not_a_signals_command" }),
            Some(Ask::Page(page)) => return self.calls_page(&routed, chat_id, page).await,
            Some(Ask::Invalid(why)) => {
                return Ok(Decision::Forward {
                    outputs: vec![Reply::plain(why).output(routed.update_id, chat_id, None)],
                    commit: None,
                })
            }
            Some(Ask::Command(SignalsCommand::Calls(page))) => {
                let page = page.trim().parse::<usize>().map(|p| p.saturating_sub(1)).unwrap_or(0);
                return self.calls_page(&routed, chat_id, page).await;
            }
            Some(ask) => ask,
        };
        if users::load(&self.users, user_id).await?.is_none() {
            return Ok(crate::core::reply::send_start_first(routed.update_id, chat_id));
        }
        let (prefs, revision) = match records::load::<SignalsPrefs>(&self.prefs, user_id).await? {
            Some((p, r)) => (p, Some(r)),
            None => (SignalsPrefs::new(user_id), None),
        };
        let now = herald_schemas::now_ms();
        let (new, reply) = match ask {
            Ask::Edit(edit) => match commands::edited(&prefs.filters, edit) {
                Ok(filters) => {
                    let reply = commands::menu(&filters);
                    let changed = SignalsPrefs {
                        filters,
                        updated_at_ms: now,
                        ..prefs.clone()
                    };
                    (Some(changed), reply)
                }
                Err(why) => (None, with_reason(&why, commands::menu(&prefs.filters))),
            },
            Ask::BadButton(why) => (None, with_reason(&why, commands::menu(&prefs.filters))),
            Ask::Command(cmd) => commands::run(&prefs, cmd, now, &self.chains),
            Ask::Page(_) | Ask::Invalid(_) => unreachable!("answered above"),
        };
        Ok(Decision::Forward {
            outputs: vec![reply.output(routed.update_id, chat_id, routed.message_id)],
            commit: new.map(|prefs| PrefsWrite { prefs, revision }),
        })
    }

    async fn commit(&self, write: Self::Commit) -> Result<(), StageError> {
        if let Some(w) = write {
            match records::save(&self.prefs, w.prefs.user_id, &w.prefs, w.revision).await {
                Ok(_) => {}
                // a redelivery whose first preferences were stored already: decide again
                // on them (the edits are absolute, so nothing changes twice)
                Err(e) => return Err(StageError::Transient(e.context("preferences changed meanwhile"))),
            }
        }
        Ok(())
    }
}
