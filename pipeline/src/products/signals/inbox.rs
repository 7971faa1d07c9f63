//! The signals inbox stage: what the router hands to signals (`herald.cmd.signals.>`).
//!
//! - a `channel_post` with a contract address -> a call on `herald.calls.<chain>.<source>`
//! - `/filters`, `/pause`, `/resume` and the filter buttons -> a reply, and the user's
//!   new preferences ([`SignalsPrefs`] in `herald_signals_users`) stored after it is out
//!   (compare-and-set)
//! - `/calls` and its Prev/Next buttons -> a page of tracked calls (with the tracker)
//! - a preset button -> the user follows it (their filters become its filters)
//! - `/admin preset add|edit|remove|list` -> the preset stored, its followers' filters
//!   rewritten (the apply step), removed followers told (see [`super::presets`])

use std::sync::Arc;

use async_nats::jetstream::kv;
use herald_core::users;
use herald_runtime::{records, Applied, Decision, Effect, MsgMeta, Output, Stage, StageError};
use herald_schemas::{escape_html, Content, RoutedUpdate, SignalsPrefs};

use herald_schemas::checks::ChainList;

use crate::core::reply::Reply;

use super::calls;
use super::commands::{self, SignalsCommand};
use super::presets::{self, Preset, PresetCommand, Presets};
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
    /// A preset button: follow it.
    Follow(String),
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
    /// The filter presets (`herald_signals_presets`).
    pub presets: Presets,
}

/// An admin's preset command, run as the inbox's apply step.
pub struct PresetChange {
    command: PresetCommand,
    chat_id: i64,
    update_id: i64,
}

impl<S: CallStore> SignalsInbox<S> {
    async fn calls_page(&self, routed: &RoutedUpdate, chat_id: i64, page: usize) -> Result<Decision<Option<PrefsWrite>, PresetChange>, StageError> {
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

impl<S: CallStore> SignalsInbox<S> {
    /// Runs an admin's preset command: the preset written, its followers rewritten (a
    /// redelivery finds both done and changes nothing); the answer and the followers'
    /// notices.
    async fn preset(&self, c: PresetChange) -> anyhow::Result<(String, Vec<Output>, Effect)> {
        let now = herald_schemas::now_ms();
        let notice = |user: i64, what: &str, text: String| {
            let m = crate::core::reply::notice(format!("preset:{}:{what}:{user}", c.update_id), user, Content::text(text));
            Output {
                subject: herald_schemas::subjects::reply(user),
                msg_id: m.idempotency_key.clone(),
                payload: herald_schemas::encode(&m),
            }
        };
        Ok(match c.command {
            PresetCommand::List => {
                let all = self.presets.all().await?;
                let prefs = records::all::<SignalsPrefs>(&self.prefs).await?;
                let text = presets::list(&all, |name| prefs.iter().filter(|p| p.preset.as_deref() == Some(name)).count());
                (text, Vec::new(), Effect::NotMade)
            }
            PresetCommand::Add { name, filters, description } => {
                let p = Preset { v: 1, name: name.clone(), description, filters, updated_at_ms: now };
                match self.presets.create(&p).await {
                    Ok(made) => (
                        format!("Preset <b>{}</b> added: {}.", escape_html(&name), presets::summary(&p.filters)),
                        Vec::new(),
                        if made { Effect::Made } else { Effect::AlreadyMade },
                    ),
                    Err(e) => (escape_html(&format!("{e:#}")), Vec::new(), Effect::NotMade),
                }
            }
            PresetCommand::Edit { name, settings, description } => {
                // compare-and-set on the preset: two edits at once both apply, in turn
                let preset = loop {
                    let Some((mut p, revision)) = self.presets.get(&name).await? else {
                        return Ok((format!("No preset {}.", escape_html(&name)), Vec::new(), Effect::NotMade));
                    };
                    let Ok(filters) = settings.iter().try_fold(p.filters.clone(), |f, s| {
                        commands::parse_filter_args(s, &self.chains).and_then(|e| commands::edited(&f, e))
                    }) else {
                        return Ok(("Those settings do not fit this preset's filters.".into(), Vec::new(), Effect::NotMade));
                    };
                    let desc = description.clone().unwrap_or_else(|| p.description.clone());
                    if filters == p.filters && desc == p.description {
                        break p; // a redelivery: the preset has it already; followers below
                    }
                    (p.filters, p.description, p.updated_at_ms) = (filters, desc, now);
                    if self.presets.update(&p, revision).await.is_ok() {
                        break p;
                    }
                };
                let filters = preset.filters.clone();
                let moved = presets::rewrite_followers(&self.prefs, &name, |prefs| prefs.filters = filters.clone()).await?;
                let told = moved
                    .iter()
                    .map(|u| notice(*u, "edit", format!("📌 Preset {} was updated; your filters follow it: {}.", name, presets::summary(&preset.filters))))
                    .collect();
                (
                    format!("Preset <b>{}</b> is now {}; {} followers updated.", escape_html(&name), presets::summary(&preset.filters), moved.len()),
                    told,
                    if moved.is_empty() { Effect::AlreadyMade } else { Effect::Made },
                )
            }
            PresetCommand::Remove { name } => {
                let removed = self.presets.remove(&name).await?;
                // followers keep their last filters, as their own
                let left = presets::rewrite_followers(&self.prefs, &name, |prefs| prefs.preset = None).await?;
                let told = left
                    .iter()
                    .map(|u| notice(*u, "removed", format!("📌 Preset {name} was removed. You keep its filters as your own: /filters to change them.")))
                    .collect();
                let text = match removed || !left.is_empty() {
                    true => format!("Preset <b>{}</b> removed; {} followers keep its filters.", escape_html(&name), left.len()),
                    false => format!("No preset {}.", escape_html(&name)),
                };
                (text, told, if removed || !left.is_empty() { Effect::Made } else { Effect::AlreadyMade })
            }
        })
    }

    /// The menu answer with the presets, for `prefs` (after the change, if any).
    async fn menu_of(&self, menu: Reply, prefs: &SignalsPrefs) -> Result<Reply, StageError> {
        let all = self.presets.all().await?;
        Ok(commands::with_presets(menu, &all, prefs.preset.as_deref()))
    }
}

impl<S: CallStore> Stage for SignalsInbox<S> {
    const NAME: &'static str = "signals_inbox";
    type Input = RoutedUpdate;
    type Commit = Option<PrefsWrite>;
    type Effect = PresetChange;

    fn decode(&self, payload: &[u8]) -> Result<RoutedUpdate, String> {
        herald_schemas::decode(payload).map_err(|e| e.to_string())
    }

    async fn decide(&self, routed: RoutedUpdate, _meta: &MsgMeta) -> Result<Decision<Self::Commit, PresetChange>, StageError> {
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
        if let (true, Some(args)) = (routed.admin, routed.command.as_deref().and_then(|c| c.strip_prefix("/admin preset"))) {
            return Ok(match presets::parse(args, &self.chains) {
                Ok(command) => Decision::Apply(PresetChange {
                    command,
                    chat_id,
                    update_id: routed.update_id,
                }),
                Err(why) => Decision::Forward {
                    outputs: vec![Reply::plain(why).output(routed.update_id, chat_id, None)],
                    commit: None,
                },
            });
        }
        // a command, or a button: a filter edit or a page of calls (parsed once)
        let ask = match (&routed.command, &routed.callback_data) {
            (Some(text), _) => Some(match SignalsCommand::parse_for_user(text) {
                Ok(cmd) => Ask::Command(cmd),
                Err(why) => Ask::Invalid(why),
            }),
            (None, Some(data)) => calls::parse_callback(data)
                .map(Ask::Page)
                .or_else(|| commands::preset_callback(data).map(|name| Ask::Follow(name.to_string())))
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
        let filters_view = !matches!(ask, Ask::Command(SignalsCommand::Pause | SignalsCommand::Resume));
        let (new, reply) = match ask {
            Ask::Edit(edit) => match commands::edited(&prefs.filters, edit) {
                Ok(filters) => {
                    let reply = commands::menu(&filters);
                    // one's own change: the filters are a copy now, not a preset's
                    let changed = SignalsPrefs {
                        filters,
                        updated_at_ms: now,
                        preset: None,
                        ..prefs.clone()
                    };
                    (Some(changed), reply)
                }
                Err(why) => (None, with_reason(&why, commands::menu(&prefs.filters))),
            },
            Ask::Follow(name) => match presets::name(&name) {
                Some(name) => match self.presets.get(&name).await? {
                    Some((p, _)) => {
                        let changed = SignalsPrefs {
                            filters: p.filters.clone(),
                            preset: Some(p.name.clone()),
                            updated_at_ms: now,
                            ..prefs.clone()
                        };
                        (Some(changed), commands::menu(&p.filters))
                    }
                    None => (None, with_reason("That preset no longer exists: here are your filters.", commands::menu(&prefs.filters))),
                },
                None => (None, with_reason("That button is no longer valid: here are your filters.", commands::menu(&prefs.filters))),
            },
            Ask::BadButton(why) => (None, with_reason(&why, commands::menu(&prefs.filters))),
            Ask::Command(cmd) => commands::run(&prefs, cmd, now, &self.chains),
            Ask::Page(_) | Ask::Invalid(_) => unreachable!("answered above"),
        };
        let reply = match filters_view {
            true => self.menu_of(reply, new.as_ref().unwrap_or(&prefs)).await?,
            false => reply,
        };
        Ok(Decision::Forward {
            outputs: vec![reply.output(routed.update_id, chat_id, routed.message_id)],
            commit: new.map(|prefs| PrefsWrite { prefs, revision }),
        })
    }

    async fn apply(&self, change: PresetChange, _meta: &MsgMeta) -> Result<Applied<Self::Commit>, StageError> {
        let (chat_id, update_id) = (change.chat_id, change.update_id);
        let (text, mut outputs, effect) = self.preset(change).await?;
        outputs.insert(0, Reply::plain(text).output(update_id, chat_id, None));
        Ok(Applied {
            decision: Decision::Forward { outputs, commit: None },
            effect,
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
