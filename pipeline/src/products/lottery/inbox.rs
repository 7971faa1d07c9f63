//! The lottery inbox stage: what the router hands to the lottery
//! (`herald.cmd.lottery.>`): `/lottery`, `/buy`, `/tickets`, `/draws`, `/verify`,
//! `/ref` and `/admin lottery` (the router has checked the admin ids).
//!
//! `/buy`'s debit and append happen in `decide`, idempotent per update (see
//! [`super::purchase`]), so a redelivery answers with the same receipt and charges once.

use std::sync::Arc;

use async_nats::jetstream::kv;
use herald_runtime::{users, Decision, MsgMeta, Stage, StageError};
use herald_schemas::RoutedUpdate;

use super::commands::{ticket_count, LotteryCommand};
use super::service::Lottery;
use super::{purchase, views};
use crate::core::reply::{send_start_first, Reply};

/// The stage.
pub struct LotteryInbox {
    pub lottery: Arc<Lottery>,
    /// The core user records: a command needs a user.
    pub users: kv::Store,
}

impl Stage for LotteryInbox {
    const NAME: &'static str = "lottery_inbox";
    type Input = RoutedUpdate;
    type Commit = Option<()>;

    fn decode(&self, payload: &[u8]) -> Result<RoutedUpdate, String> {
        herald_schemas::decode(payload).map_err(|e| e.to_string())
    }

    async fn decide(&self, routed: RoutedUpdate, _meta: &MsgMeta) -> Result<Decision<Option<()>>, StageError> {
        let (Some(user_id), Some(chat_id)) = (routed.user_id, routed.chat_id) else {
            return Err(StageError::Permanent("routed update without a user or chat".into()));
        };
        let text = routed.command.as_deref().unwrap_or_default();
        let l = &self.lottery;
        let answer = if let (true, Some(args)) = (routed.admin, text.strip_prefix("/admin")) {
            views::admin(l, args).await?
        } else {
            let Some(cmd) = LotteryCommand::from_text(text) else {
                return Ok(Decision::Drop { reason: "not_a_lottery_command" });
            };
            if users::load(&self.users, user_id).await?.is_none() {
                return Ok(send_start_first(routed.update_id, chat_id));
            }
            match cmd {
                LotteryCommand::Lottery => views::lottery(l, user_id).await?,
                LotteryCommand::Buy(arg) => match ticket_count(&arg, l.max_tickets) {
                    Err(usage) => usage,
                    Ok(n) => {
                        let bought = purchase::buy(l, user_id, chat_id, routed.update_id, n).await?;
                        views::bought(&bought, l)
                    }
                },
                LotteryCommand::Tickets => views::tickets(l, user_id).await?,
                LotteryCommand::Draws => views::draws(l).await?,
                LotteryCommand::Verify(arg) => views::verify(l, &arg).await?,
                LotteryCommand::Ref => views::referral(l, user_id),
            }
        };
        Ok(Decision::Forward {
            outputs: vec![Reply::plain(answer).output(routed.update_id, chat_id, None)],
            commit: None,
        })
    }

    async fn commit(&self, _: Option<()>) -> Result<(), StageError> {
        Ok(())
    }
}
