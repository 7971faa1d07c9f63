//! The payments inbox stage: what the router hands to payments (`herald.cmd.payments.>`):
//! `/deposit`, `/balance`, `/subscribe` and its tier buttons, and the payments `/admin`
//! subcommands (the router has checked the admin ids).
//!
//! A purchase's ledger debit and coupon use are written in `decide`, each idempotent per
//! purchase (keyed `sub:<update id>`), so a redelivered purchase charges and reserves
//! once; the subscription's end (the user's [`Access`]) is stored in `commit`.

use std::sync::Arc;

use async_nats::jetstream::kv;
use herald_runtime::{records, users, Decision, MsgMeta, Stage, StageError};
use herald_schemas::{Access, RoutedUpdate};

use super::commands::{self, PaymentsCommand};
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

impl Stage for PaymentsInbox {
    const NAME: &'static str = "payments_inbox";
    type Input = RoutedUpdate;
    type Commit = Option<AccessWrite>;

    fn decode(&self, payload: &[u8]) -> Result<RoutedUpdate, String> {
        herald_schemas::decode(payload).map_err(|e| e.to_string())
    }

    async fn decide(&self, routed: RoutedUpdate, _meta: &MsgMeta) -> Result<Decision<Self::Commit>, StageError> {
        let (Some(user_id), Some(chat_id)) = (routed.user_id, routed.chat_id) else {
            return Err(StageError::Permanent("routed update without a user or chat".into()));
        };
        let text = routed.command.as_deref().unwrap_or_default();
        if let (true, Some(args)) = (routed.admin, text.strip_prefix("/admin")) {
            let (reply, mut outputs) = admin::answer(&self.payments, &self.users, &self.access, args.trim(), routed.update_id).await?;
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
        if users::load(&self.users, user_id).await?.is_none() {
            return Ok(send_start_first(routed.update_id, chat_id));
        }
        let (access, revision) = match records::load::<Access>(&self.access, user_id).await? {
            Some((a, r)) => (a, Some(r)),
            None => (Access::none(user_id), None),
        };
        let (reply, changed) = commands::answer(&self.payments, cmd, &access, routed.update_id).await?;
        Ok(Decision::Forward {
            outputs: vec![reply.output(routed.update_id, chat_id, routed.message_id)],
            commit: changed.map(|access| AccessWrite { access, revision }),
        })
    }

    async fn commit(&self, write: Self::Commit) -> Result<(), StageError> {
        if let Some(w) = write {
            records::save(&self.access, w.access.user_id, &w.access, w.revision).await?;
        }
        Ok(())
    }
}
