//! The payments inbox stage: what the router hands to payments (`herald.cmd.payments.>`):
//! `/deposit`, `/balance`, `/subscribe` and its tier buttons, and the payments `/admin`
//! subcommands (the router has checked the admin ids).
//!
//! A purchase's ledger debit and coupon use are written in `decide`, each idempotent per
//! purchase (keyed `sub:<update id>`), so a redelivered purchase charges and reserves
//! once; the subscription's end is stored in `commit`.

use std::sync::Arc;

use async_nats::jetstream::kv;
use herald_runtime::{users, Decision, MsgMeta, Stage, StageError};
use herald_schemas::{RoutedUpdate, UserSettings};

use super::commands::{self, PaymentsCommand};
use super::{admin, Payments};
use crate::core::reply::Reply;

/// A record to store once the reply is out.
pub struct UserWrite {
    user: UserSettings,
    revision: u64,
}

/// The stage.
pub struct PaymentsInbox {
    pub payments: Arc<Payments>,
    pub users: kv::Store,
}

impl Stage for PaymentsInbox {
    const NAME: &'static str = "payments_inbox";
    type Input = RoutedUpdate;
    type Commit = Option<UserWrite>;

    fn decode(&self, payload: &[u8]) -> Result<RoutedUpdate, String> {
        herald_schemas::decode(payload).map_err(|e| e.to_string())
    }

    async fn decide(&self, routed: RoutedUpdate, _meta: &MsgMeta) -> Result<Decision<Self::Commit>, StageError> {
        let (Some(user_id), Some(chat_id)) = (routed.user_id, routed.chat_id) else {
            return Err(StageError::Permanent("routed update without a user or chat".into()));
        };
        let text = routed.command.as_deref().unwrap_or_default();
        if let (true, Some(args)) = (routed.admin, text.strip_prefix("/admin")) {
            let (reply, mut outputs) = admin::answer(&self.payments, &self.users, args.trim(), routed.update_id).await?;
            outputs.insert(0, reply.output(routed.update_id, chat_id, None));
            return Ok(Decision::Forward { outputs, commit: None });
        }
        let cmd = match &routed.callback_data {
            Some(data) => commands::parse_callback(data),
            None => PaymentsCommand::from_text(text),
        };
        let Some(cmd) = cmd else {
            return Ok(Decision::Drop {
                reason: "not_a_payments_command",
            });
        };
        let Some((user, revision)) = users::load(&self.users, user_id).await? else {
            let reply = Reply::plain("Send /start first.");
            return Ok(Decision::Forward {
                outputs: vec![reply.output(routed.update_id, chat_id, None)],
                commit: None,
            });
        };
        let (reply, changed) = commands::answer(&self.payments, cmd, &user, routed.update_id).await?;
        Ok(Decision::Forward {
            outputs: vec![reply.output(routed.update_id, chat_id, routed.message_id)],
            commit: changed.map(|user| UserWrite { user, revision }),
        })
    }

    async fn commit(&self, write: Self::Commit) -> Result<(), StageError> {
        if let Some(w) = write {
            users::save(&self.users, &w.user, Some(w.revision)).await?;
        }
        Ok(())
    }
}
