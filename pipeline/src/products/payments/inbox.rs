//! The payments inbox stage: what the router hands to payments (`herald.cmd.payments.>`):
//! `/deposit`, `/balance`, `/subscribe` and its tier buttons, `/withdraw` and its
//! buttons ([`withdraw`]), and the payments `/admin` subcommands (the router has checked
//! the admin ids).
//!
//! A purchase's ledger debit and coupon use, an address's assignment and an admin's
//! change are the stage's apply step, each idempotent per update (a purchase is keyed
//! `sub:<update id>`), so a redelivered purchase charges and reserves once; the
//! subscription's end (the user's [`Access`]) is stored in `commit`.

use std::sync::Arc;

use async_nats::jetstream::kv;
use herald_core::users;
use herald_runtime::{records, Applied, Decision, MsgMeta, Stage, StageError};
use herald_schemas::{Access, RoutedUpdate};

use super::commands::{self, PaymentsCommand};
use super::withdraw::{Action, Asker};
use super::{admin, Payments};
use crate::core::reply::send_start_first;

/// Access to store once the reply is out (`revision` `None`: the first).
pub struct AccessWrite {
    access: Access,
    revision: Option<u64>,
}

/// The stage.
pub struct PaymentsInbox {
    pub payments: Arc<Payments>,
    /// The core user records (for admin commands, and a command needs a user).
    pub users: kv::Store,
    /// Paid access (`herald_access`), which subscriptions extend.
    pub access: kv::Store,
}

/// A change a command makes: the apply step's effect.
#[derive(Debug)]
pub enum PaymentsChange {
    /// `/deposit` (an address assigned once per user) or `/subscribe TIER` (a debit
    /// under `sub:<update id>`), for a user with this access.
    Command {
        cmd: PaymentsCommand,
        access: Access,
        revision: Option<u64>,
        chat_id: i64,
        update_id: i64,
        message_id: Option<i32>,
    },
    /// An admin subcommand that [`admin::changes`] state.
    Admin { args: String, chat_id: i64, update_id: i64 },
    /// A withdrawal's step ([`Action::changes`]): a request stored, confirmed (the
    /// caps counted, the amount held), cancelled, approved or rejected.
    Withdraw { action: Action, who: Asker, message_id: Option<i32> },
    /// A NOWPayments invoice (`np:<usd>` or `np:sub:<tier>`), made once per press.
    Invoice { data: String, who: Asker },
}

impl Stage for PaymentsInbox {
    const NAME: &'static str = "payments_inbox";
    type Input = RoutedUpdate;
    type Commit = Option<AccessWrite>;
    type Effect = PaymentsChange;

    fn decode(&self, payload: &[u8]) -> Result<RoutedUpdate, String> {
        herald_schemas::decode(payload).map_err(|e| e.to_string())
    }

    async fn decide(&self, routed: RoutedUpdate, _meta: &MsgMeta) -> Result<Decision<Self::Commit, PaymentsChange>, StageError> {
        let (Some(user_id), Some(chat_id)) = (routed.user_id, routed.chat_id) else {
            return Err(StageError::Permanent("routed update without a user or chat".into()));
        };
        let update_id = routed.update_id;
        let text = routed.command.as_deref().unwrap_or_default();
        let who = Asker { user_id, chat_id, update_id };
        if let Some(action) = self.withdraw_action(&routed, text) {
            return self.withdraw(action, who, routed.message_id).await;
        }
        if let Some(data) = routed.callback_data.as_deref().and_then(|d| d.strip_prefix("np:")) {
            return Ok(Decision::Apply(PaymentsChange::Invoice { data: data.to_string(), who }));
        }
        if let (true, Some(args)) = (routed.admin, text.strip_prefix("/admin")) {
            let args = args.trim();
            if admin::changes(args) {
                return Ok(Decision::Apply(PaymentsChange::Admin {
                    args: args.to_string(),
                    chat_id,
                    update_id,
                }));
            }
            let (reply, mut outputs, _) = admin::answer(&self.payments, &self.users, &self.access, args, update_id).await?;
            outputs.insert(0, reply.output(update_id, chat_id, None));
            return Ok(Decision::Forward { outputs, commit: None });
        }
        let cmd = match &routed.callback_data {
            Some(data) => commands::parse_callback(data),
            None => PaymentsCommand::from_text(text),
        };
        if let Some(PaymentsCommand::Withdraw(_)) = cmd {
            let reply = crate::core::reply::Reply::plain("Withdrawals are not offered here.");
            return Ok(Decision::Forward {
                outputs: vec![reply.output(update_id, chat_id, None)],
                commit: None,
            });
        }
        let Some(cmd) = cmd else {
            return Ok(Decision::Drop {
                reason: "not_a_payments_command",
            });
        };
        if users::load(&self.users, user_id).await?.is_none() {
            return Ok(send_start_first(update_id, chat_id));
        }
        let (access, revision) = match records::load::<Access>(&self.access, user_id).await? {
            Some((a, r)) => (a, Some(r)),
            None => (Access::none(user_id), None),
        };
        let reads = matches!(&cmd, PaymentsCommand::Balance) || matches!(&cmd, PaymentsCommand::Subscribe(args) if args.trim().is_empty());
        if !reads {
            return Ok(Decision::Apply(PaymentsChange::Command {
                cmd,
                access,
                revision,
                chat_id,
                update_id,
                message_id: routed.message_id,
            }));
        }
        let (reply, _, _) = commands::answer(&self.payments, cmd, &access, update_id).await?;
        Ok(Decision::Forward {
            outputs: vec![reply.output(update_id, chat_id, routed.message_id)],
            commit: None,
        })
    }

    /// Assigns the address, makes the purchase's debit and coupon use (each keyed by
    /// the update), or runs the admin's change.
    async fn apply(&self, change: PaymentsChange, _meta: &MsgMeta) -> Result<Applied<Self::Commit>, StageError> {
        match change {
            PaymentsChange::Command {
                cmd,
                access,
                revision,
                chat_id,
                update_id,
                message_id,
            } => {
                let (reply, changed, effect) = commands::answer(&self.payments, cmd, &access, update_id).await?;
                Ok(Applied {
                    decision: Decision::Forward {
                        outputs: vec![reply.output(update_id, chat_id, message_id)],
                        commit: changed.map(|access| AccessWrite { access, revision }),
                    },
                    effect,
                })
            }
            PaymentsChange::Withdraw { action, who, message_id } => {
                let w = self.payments.withdraw.as_ref().expect("a withdraw action only when withdrawals are on");
                let answer = w.act(&self.payments, action, who).await?;
                let mut outputs = answer.outputs;
                outputs.insert(0, answer.reply.output(who.update_id, who.chat_id, message_id));
                Ok(Applied {
                    decision: Decision::Forward { outputs, commit: None },
                    effect: answer.effect,
                })
            }
            PaymentsChange::Invoice { data, who } => {
                let (reply, effect) = commands::invoice(&self.payments, &data, who).await?;
                Ok(Applied {
                    // a new message: the page's link must stay where the user can find it
                    decision: Decision::Forward {
                        outputs: vec![reply.output(who.update_id, who.chat_id, None)],
                        commit: None,
                    },
                    effect,
                })
            }
            PaymentsChange::Admin { args, chat_id, update_id } => {
                let (reply, mut outputs, effect) = admin::answer(&self.payments, &self.users, &self.access, &args, update_id).await?;
                outputs.insert(0, reply.output(update_id, chat_id, None));
                Ok(Applied {
                    decision: Decision::Forward { outputs, commit: None },
                    effect,
                })
            }
        }
    }

    async fn commit(&self, write: Self::Commit) -> Result<(), StageError> {
        if let Some(w) = write {
            records::save(&self.access, w.access.user_id, &w.access, w.revision).await?;
        }
        Ok(())
    }
}

impl PaymentsInbox {
    /// The withdrawal action in an update, when withdrawals are on: a `wd:` button,
    /// `/withdraw`, or an admin's withdrawal subcommand.
    fn withdraw_action(&self, routed: &RoutedUpdate, text: &str) -> Option<Action> {
        self.payments.withdraw.as_ref()?;
        if let Some(data) = &routed.callback_data {
            return Action::from_callback(data, routed.admin);
        }
        if let Some(args) = text.strip_prefix("/admin").filter(|_| routed.admin) {
            return Action::from_admin(args);
        }
        match PaymentsCommand::from_text(text)? {
            PaymentsCommand::Withdraw(args) => Some(Action::Start(args.trim().to_string())),
            _ => None,
        }
    }

    /// A withdrawal action: its change goes to the apply step, a read is answered now.
    async fn withdraw(&self, action: Action, who: Asker, message_id: Option<i32>) -> Result<Decision<Option<AccessWrite>, PaymentsChange>, StageError> {
        if action.changes() {
            return Ok(Decision::Apply(PaymentsChange::Withdraw { action, who, message_id }));
        }
        let w = self.payments.withdraw.as_ref().expect("withdraw_action checked");
        let answer = w.act(&self.payments, action, who).await?;
        let mut outputs = answer.outputs;
        outputs.insert(0, answer.reply.output(who.update_id, who.chat_id, message_id));
        Ok(Decision::Forward { outputs, commit: None })
    }
}
