//! The router: one stage reads UPDATES and hands each update to exactly one product,
//! after the checks every product shares (locked users, admin ids, inbound limits).
//!
//! `herald.updates.>` -> `herald.cmd.<product>.<user>` (a [`RoutedUpdate`]), or a reply
//! of the core's own (`/start`, `/help`, a refusal) on `herald.out.reply.<chat>`.
//!
//! Routing, in order: the update kind a product takes whole (`channel_post`), then a
//! private command by name (each product's `BotCommands` enum), then a button's
//! callback-data prefix, then the user's session (a plain message or an edit goes to
//! the product whose chat or game the user is in, see `herald_core::sessions`).
//! Anything else is dropped with a reason, and an update kind Telegram does not have is
//! dead-lettered.

use std::collections::HashMap;
use std::sync::Arc;

use async_nats::jetstream::kv;
use herald_core::users;
use herald_runtime::{Decision, MsgMeta, Output, Stage, StageError};
use herald_schemas::telegram::{update_kind, KNOWN_KINDS};
use herald_schemas::{escape_html, subjects, Access, RoutedUpdate, User};
use serde_json::Value;

use super::commands::{CoreCommand, ADMIN_USAGE};
use super::limits::{InboundLimits, Verdict};
use super::product::Product;
use super::reply::Reply;

/// Which product takes what, built once from the running products.
pub struct Routes {
    commands: HashMap<String, &'static str>,
    /// Commands that also work in groups.
    group: HashMap<&'static str, &'static str>,
    prefixes: Vec<(&'static str, &'static str)>,
    kinds: HashMap<&'static str, &'static str>,
    admin: HashMap<&'static str, &'static str>,
    products: Vec<Arc<dyn Product>>,
}

impl Routes {
    /// The routes of `products`.
    ///
    /// Errors: two products (or a product and the core) claim the same command,
    /// callback prefix, update kind or admin subcommand: an update must go to exactly
    /// one product.
    pub fn new(products: &[Arc<dyn Product>]) -> anyhow::Result<Self> {
        let mut r = Routes {
            commands: HashMap::new(),
            group: HashMap::new(),
            prefixes: Vec::new(),
            kinds: HashMap::new(),
            admin: HashMap::new(),
            products: products.to_vec(),
        };
        let core = CoreCommand::names();
        for p in products {
            let name = p.name();
            for c in p.commands() {
                anyhow::ensure!(!core.contains(&c.command.as_str()), "{name}: /{} is a core command", c.command);
                if let Some(other) = r.commands.insert(c.command.clone(), name) {
                    anyhow::bail!("/{} is claimed by {other} and {name}", c.command);
                }
            }
            for command in p.group_commands() {
                anyhow::ensure!(
                    r.commands.get(*command) == Some(&name),
                    "{name}: group command /{command} is not one of its commands"
                );
                r.group.insert(command, name);
            }
            for prefix in p.callback_prefixes() {
                anyhow::ensure!(
                    !super::broadcast::CALLBACK_PREFIX.starts_with(prefix) && !prefix.starts_with(super::broadcast::CALLBACK_PREFIX),
                    "{name}: callback prefix {prefix:?} overlaps the desk's"
                );
                if let Some((_, other)) = r.prefixes.iter().find(|(q, _)| q.starts_with(prefix) || prefix.starts_with(q)) {
                    anyhow::bail!("callback prefix {prefix:?} of {name} overlaps one of {other}");
                }
                r.prefixes.push((prefix, name));
            }
            for kind in p.update_kinds() {
                if let Some(other) = r.kinds.insert(kind, name) {
                    anyhow::bail!("update kind {kind} is claimed by {other} and {name}");
                }
            }
            for sub in p.admin_commands() {
                anyhow::ensure!(
                    !["lock", "unlock"].contains(sub) && !super::desk::SUBCOMMANDS.contains(sub),
                    "{name}: /admin {sub} is a core command"
                );
                if let Some(other) = r.admin.insert(sub, name) {
                    anyhow::bail!("/admin {sub} is claimed by {other} and {name}");
                }
            }
        }
        Ok(r)
    }

    /// `/help`: the core's commands, then each product's, generated from their
    /// command enums, then each product's own notes.
    pub fn help(&self) -> String {
        let mut text = String::from("<b>Herald</b>\n");
        let line = |text: &mut String, c: &str, d: &str| text.push_str(&format!("\n/{c} — {}", escape_html(d)));
        for c in CoreCommand::menu() {
            line(&mut text, &c.command, &c.description);
        }
        for p in &self.products {
            let commands = p.commands();
            if commands.is_empty() {
                continue;
            }
            text.push('\n');
            for c in commands {
                line(&mut text, &c.command, &c.description);
            }
            if let Some(more) = p.help() {
                text.push_str(&format!("\n{more}"));
            }
        }
        text
    }

    /// Telegram's command menu (`setMyCommands`): the core's and every product's.
    pub fn menu(&self) -> Vec<herald_schemas::MenuCommand> {
        CoreCommand::menu()
            .into_iter()
            .chain(self.products.iter().flat_map(|p| p.commands()))
            .collect()
    }

    /// The `/admin` usage line: the core's subcommands and every product's.
    fn admin_usage(&self) -> String {
        let mut subs: Vec<&str> = self.admin.keys().copied().collect();
        subs.sort();
        format!("{ADMIN_USAGE} · {}", subs.join(" · "))
    }

    fn by_prefix(&self, data: &str) -> Option<&'static str> {
        self.prefixes.iter().find(|(p, _)| data.starts_with(p)).map(|(_, name)| *name)
    }
}

/// A change to the core user record, made after the reply is out.
#[derive(Debug)]
pub enum UserChange {
    /// Store `user` if its revision is still `revision` (`None`: must not exist), with
    /// paid access to grant a new user (a trial) unless it has some.
    Save {
        user: User,
        revision: Option<u64>,
        access: Option<Access>,
    },
    /// Lock or unlock a user (`/admin lock ID`), idempotent.
    Locked { user_id: i64, locked: bool },
    /// Telegram says the user blocked (false) or unblocked (true) the bot.
    Active { user_id: i64, active: bool },
}

/// The router stage.
pub struct Router {
    /// The core user records (`herald_users`).
    pub users: kv::Store,
    /// Paid access (`herald_access`), for new users' trials.
    pub access: kv::Store,
    /// Sessions (`herald_sessions`): whose plain messages go to which product.
    pub sessions: kv::Store,
    /// Telegram user ids allowed `/admin` (a core setting, `--admin-ids`).
    pub admins: Vec<i64>,
    pub routes: Routes,
    /// Per-user inbound limits, per product, in Redis.
    pub limits: Option<InboundLimits>,
}

/// Who sent an update and where to answer.
struct From {
    update_id: i64,
    user_id: i64,
    chat_id: i64,
    message_id: Option<i32>,
    /// Telegram's `language_code` of the sender.
    language: Option<String>,
}

impl From {
    /// `user_id` in `chat_id`, answered with a new message.
    fn plain(update: &Value, user_id: i64, chat_id: i64) -> Self {
        From {
            update_id: update["update_id"].as_i64().unwrap_or_default(),
            user_id,
            chat_id,
            message_id: None,
            language: None,
        }
    }
}

/// The referrer in a `/start` deep-link payload: `ref_<user id>` (or the older
/// `ref<user id>`). Telegram allows `A-Z a-z 0-9 _ -` in a start payload.
///
/// ```
/// use herald_pipeline::core::router::referrer;
/// assert_eq!(referrer("ref_42"), Some(42));
/// assert_eq!(referrer("ref42"), Some(42));
/// assert_eq!(referrer("hello"), None);
/// assert_eq!(referrer("ref_-5"), None);
/// ```
pub fn referrer(payload: &str) -> Option<i64> {
    let p = payload.trim().strip_prefix("ref")?;
    p.strip_prefix('_').unwrap_or(p).parse().ok().filter(|id| *id > 0)
}

impl Router {
    fn reply(&self, from: &From, reply: Reply, commit: Option<UserChange>) -> Decision<Option<UserChange>> {
        Decision::Forward {
            outputs: vec![reply.output(from.update_id, from.chat_id, from.message_id)],
            commit,
        }
    }

    /// Hands the update to `product`, unless the user is over its inbound limit.
    async fn route(
        &self,
        product: &'static str,
        update: &Inbound,
        kind: &str,
        from: Option<&From>,
        command: Option<String>,
        admin: bool,
    ) -> Result<Decision<Option<UserChange>>, StageError> {
        let update_id = update["update_id"].as_i64().unwrap_or_default();
        if let (Some(limits), Some(from)) = (&self.limits, from) {
            let date = update.pointer(&format!("/{kind}/date")).and_then(Value::as_u64);
            match limits.check(product, from.user_id, update_id, date).await? {
                Verdict::Allowed => {}
                Verdict::SlowDown => return Ok(self.reply(from, Reply::plain(super::commands::SLOW_DOWN), None)),
                Verdict::Silent => {
                    return Ok(Decision::Drop {
                        reason: "over_inbound_limit",
                    })
                }
            }
        }
        let body = &update[kind];
        let routed = RoutedUpdate {
            v: 1,
            update_id,
            kind: kind.to_string(),
            // an update a product takes whole has no `From`; a poll answer names its voter
            user_id: from.map(|f| f.user_id).or_else(|| body.pointer("/user/id").and_then(Value::as_i64)),
            chat_id: from.map(|f| f.chat_id).or_else(|| body.pointer("/chat/id").and_then(Value::as_i64)),
            command,
            callback_data: body.get("data").and_then(Value::as_str).map(str::to_string),
            message_id: from.and_then(|f| f.message_id),
            admin,
            update: update.value.clone(),
            received_ms: update.received_ms,
        };
        let id = routed.user_id.or(routed.chat_id).unwrap_or_default();
        Ok(Decision::Forward {
            outputs: vec![Output {
                subject: subjects::routed(product, id),
                msg_id: format!("route:{update_id}"),
                payload: herald_schemas::encode(&routed),
            }],
            commit: None,
        })
    }

    async fn message(&self, update: &Inbound, body: &Value) -> Result<Decision<Option<UserChange>>, StageError> {
        let private = body.pointer("/chat/type").and_then(Value::as_str) == Some("private");
        let text = body.get("text").and_then(Value::as_str).unwrap_or_default();
        let (Some(user_id), Some(chat_id)) = (
            body.pointer("/from/id").and_then(Value::as_i64),
            body.pointer("/chat/id").and_then(Value::as_i64),
        ) else {
            return Ok(Decision::Drop { reason: "no_sender" });
        };
        if !private {
            return self.group_message(update, user_id, chat_id, text).await;
        }
        let Some((name, args)) = split_command(text) else {
            return self.in_session(update, user_id, chat_id).await;
        };
        let from = From {
            update_id: update["update_id"].as_i64().unwrap_or_default(),
            user_id,
            chat_id,
            message_id: None,
            language: body.pointer("/from/language_code").and_then(Value::as_str).map(str::to_string),
        };
        let current = users::load(&self.users, user_id).await?;
        if let Some(core) = CoreCommand::parse(&name, &args) {
            // a product's admin subcommand goes to that product, the desk's to the desk,
            // from an admin only
            let sub = args.split_whitespace().next().unwrap_or_default();
            if let (CoreCommand::Admin(_), true, true) = (&core, super::desk::SUBCOMMANDS.contains(&sub), self.admins.contains(&user_id)) {
                let command = format!("/admin {args}");
                return self
                    .route(super::desk::ROUTE, update, "message", Some(&from), Some(command), true)
                    .await;
            }
            if let (CoreCommand::Admin(_), Some(product), true) = (&core, self.routes.admin.get(sub), self.admins.contains(&user_id)) {
                let command = format!("/admin {args}");
                return self.route(product, update, "message", Some(&from), Some(command), true).await;
            }
            // a referrer must be a user already: referrers are bound once, at creation,
            // to someone older, so the referral graph has no cycles
            let referrer = match (&core, &current) {
                (CoreCommand::Start(payload), None) => match referrer(payload).filter(|r| *r != user_id) {
                    Some(r) if users::load(&self.users, r).await?.is_some() => Some(r),
                    _ => None,
                },
                _ => None,
            };
            return Ok(self.core(&from, core, current, referrer));
        }
        let Some((user, _)) = &current else {
            return Ok(match self.routes.commands.contains_key(&name) {
                true => self.reply(&from, Reply::plain("Send /start first."), None),
                false => self.reply(&from, unknown(&name), None),
            });
        };
        if user.locked {
            return Ok(self.reply(&from, Reply::plain(super::commands::LOCKED), None));
        }
        match self.routes.commands.get(&name) {
            Some(product) => {
                let command = format!("/{name} {args}").trim_end().to_string();
                self.route(product, update, "message", Some(&from), Some(command), false).await
            }
            None => Ok(self.reply(&from, unknown(&name), None)),
        }
    }

    /// A group message: a command some product takes in groups goes to it, with the
    /// group as the chat; anything else is dropped.
    async fn group_message(
        &self,
        update: &Inbound,
        user_id: i64,
        chat_id: i64,
        text: &str,
    ) -> Result<Decision<Option<UserChange>>, StageError> {
        let Some((name, args)) = split_command(text) else {
            return Ok(Decision::Drop {
                reason: "not_a_private_message",
            });
        };
        let Some(product) = self.routes.group.get(name.as_str()) else {
            return Ok(Decision::Drop {
                reason: "not_a_group_command",
            });
        };
        if users::load(&self.users, user_id).await?.is_some_and(|(u, _)| u.locked) {
            return Ok(Decision::Drop { reason: "locked_user" });
        }
        let from = From::plain(update, user_id, chat_id);
        let command = format!("/{name} {args}").trim_end().to_string();
        self.route(product, update, "message", Some(&from), Some(command), false).await
    }

    /// A plain message (or an edit): to the product whose session the user is in.
    async fn in_session(&self, update: &Inbound, user_id: i64, chat_id: i64) -> Result<Decision<Option<UserChange>>, StageError> {
        let Some(product) = herald_core::sessions::current(&self.sessions, user_id).await? else {
            // an admin's album part: the desk remembers it, to broadcast the album whole
            if self.admins.contains(&user_id) && update.pointer("/message/media_group_id").is_some() {
                let from = From::plain(update, user_id, chat_id);
                return self.route(super::desk::ROUTE, update, "message", Some(&from), None, true).await;
            }
            return Ok(Decision::Drop { reason: "no_session" });
        };
        let Some(product) = self.routes.products.iter().map(|p| p.name()).find(|p| *p == product) else {
            return Ok(Decision::Drop {
                reason: "session_of_a_product_not_running",
            });
        };
        let kind = update_kind(update).map_err(StageError::Permanent)?.to_string();
        let from = From::plain(update, user_id, chat_id);
        if let Some((user, _)) = users::load(&self.users, user_id).await? {
            if user.locked {
                return Ok(self.reply(&from, Reply::plain(super::commands::LOCKED), None));
            }
        }
        self.route(product, update, &kind, Some(&from), None, false).await
    }

    /// `/start`, `/help` and `/admin`, which every user (or admin) has whatever runs.
    fn core(
        &self,
        from: &From,
        cmd: CoreCommand,
        current: Option<users::Versioned>,
        referrer: Option<i64>,
    ) -> Decision<Option<UserChange>> {
        let help = self.routes.help();
        match (cmd, current) {
            (CoreCommand::Help, _) => self.reply(from, Reply::plain(help), None),
            (CoreCommand::Start(_), None) => {
                let now = herald_schemas::now_ms();
                let user = User {
                    language: from.language.clone(),
                    referrer,
                    ..User::new(from.user_id, from.chat_id, now)
                };
                let mut text = String::from("Welcome!");
                let mut paid_until_ms = None;
                for p in &self.routes.products {
                    let w = p.welcome(&user, now);
                    if let Some(line) = w.line {
                        text.push_str(&format!(" {line}"));
                    }
                    paid_until_ms = paid_until_ms.max(w.paid_until_ms);
                }
                let access = paid_until_ms.map(|until| Access {
                    paid_until_ms: Some(until),
                    updated_at_ms: now,
                    ..Access::none(from.user_id)
                });
                let commit = UserChange::Save {
                    user,
                    revision: None,
                    access,
                };
                self.reply(from, Reply::plain(format!("{text}\n\n{help}")), Some(commit))
            }
            (CoreCommand::Start(_), Some((user, revision))) => {
                let mut back = user.clone();
                back.active = true;
                back.chat_id = from.chat_id;
                let commit = (back != user).then(|| UserChange::Save {
                    user: User {
                        updated_at_ms: herald_schemas::now_ms(),
                        ..back
                    },
                    revision: Some(revision),
                    access: None,
                });
                self.reply(from, Reply::plain(format!("Welcome back!\n\n{help}")), commit)
            }
            (CoreCommand::Admin(_), _) if !self.admins.contains(&from.user_id) => self.reply(from, unknown("admin"), None),
            (CoreCommand::Admin(args), _) => self.admin(from, &args),
        }
    }

    fn admin(&self, from: &From, args: &str) -> Decision<Option<UserChange>> {
        let mut words = args.split_whitespace();
        let sub = words.next().unwrap_or_default();
        let target = words.next().and_then(|w| w.parse::<i64>().ok());
        match (sub, target) {
            ("lock" | "unlock", Some(user_id)) => {
                let locked = sub == "lock";
                let change = UserChange::Locked { user_id, locked };
                self.reply(from, Reply::plain(format!("User {user_id} {sub}ed.")), Some(change))
            }
            _ => self.reply(from, Reply::plain(self.routes.admin_usage()), None),
        }
    }

    async fn callback(&self, update: &Inbound, body: &Value) -> Result<Decision<Option<UserChange>>, StageError> {
        let data = body.get("data").and_then(Value::as_str).unwrap_or_default();
        // the desk's buttons (a broadcast's Send/Cancel), for admins only
        let desk = data.starts_with(super::broadcast::CALLBACK_PREFIX).then_some(super::desk::ROUTE);
        let (Some(product), Some(user_id), Some(chat_id)) = (
            desk.or_else(|| self.routes.by_prefix(data)),
            body.pointer("/from/id").and_then(Value::as_i64),
            body.pointer("/message/chat/id").and_then(Value::as_i64),
        ) else {
            return Ok(Decision::Drop {
                reason: "unknown_callback",
            });
        };
        let from = From {
            update_id: update["update_id"].as_i64().unwrap_or_default(),
            user_id,
            chat_id,
            message_id: body.pointer("/message/message_id").and_then(Value::as_i64).map(|m| m as i32),
            language: None,
        };
        match users::load(&self.users, user_id).await? {
            Some((user, _)) if user.locked => Ok(self.reply(&from, Reply::plain(super::commands::LOCKED), None)),
            // `admin`: the product may offer admins buttons (approve, reject)
            _ => {
                let admin = self.admins.contains(&user_id);
                self.route(product, update, "callback_query", Some(&from), None, admin).await
            }
        }
    }
}

/// An update and when the server had it (the UPDATES stream's timestamp).
struct Inbound {
    value: Value,
    received_ms: u64,
}

impl std::ops::Deref for Inbound {
    type Target = Value;
    fn deref(&self) -> &Value {
        &self.value
    }
}

/// `/name args` -> (`name` lower case without any `@bot` suffix, `args` trimmed).
///
/// ```
/// use herald_pipeline::core::router::split_command;
/// assert_eq!(split_command("/Start@HeraldBot  go "), Some(("start".into(), "go".into())));
/// assert_eq!(split_command("hello"), None);
/// ```
pub fn split_command(text: &str) -> Option<(String, String)> {
    let rest = text.trim().strip_prefix('/')?;
    let (head, args) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    let name = head.split('@').next().unwrap_or_default().to_ascii_lowercase();
    (!name.is_empty()).then(|| (name, args.trim().to_string()))
}

fn unknown(name: &str) -> Reply {
    Reply::plain(format!("Unknown command /{}. /help lists what I understand.", escape_html(name)))
}

impl Stage for Router {
    const NAME: &'static str = "router";
    type Input = Value;
    type Commit = Option<UserChange>;
    type Effect = std::convert::Infallible;

    fn decode(&self, payload: &[u8]) -> Result<Value, String> {
        serde_json::from_slice(payload).map_err(|e| format!("malformed update: {e}"))
    }

    async fn decide(&self, update: Value, meta: &MsgMeta) -> Result<Decision<Self::Commit>, StageError> {
        let update = Inbound {
            value: update,
            received_ms: meta.published_ms,
        };
        let kind = update_kind(&update).map_err(StageError::Permanent)?.to_string();
        let body = &update[kind.as_str()];
        if let Some(product) = self.routes.kinds.get(kind.as_str()) {
            return self.route(product, &update, &kind, None, None, false).await;
        }
        match kind.as_str() {
            "message" => self.message(&update, body).await,
            "edited_message" => {
                let private = body.pointer("/chat/type").and_then(Value::as_str) == Some("private");
                match (
                    private,
                    body.pointer("/from/id").and_then(Value::as_i64),
                    body.pointer("/chat/id").and_then(Value::as_i64),
                ) {
                    (true, Some(user), Some(chat)) => self.in_session(&update, user, chat).await,
                    _ => Ok(Decision::Drop { reason: "ignored_edit" }),
                }
            }
            "callback_query" => self.callback(&update, body).await,
            "my_chat_member" => {
                let private = body.pointer("/chat/type").and_then(Value::as_str) == Some("private");
                let status = body.pointer("/new_chat_member/status").and_then(Value::as_str);
                let user = body.pointer("/from/id").and_then(Value::as_i64);
                Ok(match (private, status, user) {
                    (true, Some(s @ ("kicked" | "member")), Some(user_id)) => Decision::Forward {
                        outputs: Vec::new(),
                        commit: Some(UserChange::Active {
                            user_id,
                            active: s == "member",
                        }),
                    },
                    _ => Decision::Drop {
                        reason: "ignored_membership",
                    },
                })
            }
            k if KNOWN_KINDS.contains(&k) => Ok(Decision::Drop { reason: "ignored_kind" }),
            k => Err(StageError::Permanent(format!("unknown update kind '{k}'"))),
        }
    }

    async fn commit(&self, change: Self::Commit) -> Result<(), StageError> {
        match change {
            None => {}
            Some(UserChange::Save { user, revision, access }) => {
                if let Some(access) = access {
                    // the trial first: a new user is never left without it
                    herald_runtime::records::upsert(&self.access, user.user_id, || access.clone(), |_| {}).await?;
                }
                match users::save(&self.users, &user, revision).await {
                    Ok(_) => {}
                    // a redelivered /start whose record was stored already: nothing to do
                    Err(_) if revision.is_none() && users::load(&self.users, user.user_id).await?.is_some() => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Some(UserChange::Locked { user_id, locked }) => {
                users::update(&self.users, user_id, |u| u.locked = locked).await?;
            }
            Some(UserChange::Active { user_id, active }) => users::set_active(&self.users, user_id, active).await?,
        }
        Ok(())
    }
}
