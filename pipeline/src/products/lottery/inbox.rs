//! The lottery inbox stage: what the router hands to the lottery
//! (`herald.cmd.lottery.>`): `/lottery`, `/buy`, `/tickets`, `/draws`, `/verify`,
//! `/ref` and `/admin lottery` (the router has checked the admin ids).
//!
//! `/buy`'s debit and append, and an admin's pause or resume, are the stage's apply
//! step, idempotent per update (see [`super::purchase`]): a redelivery answers with the
//! same receipt and charges once.

use std::sync::Arc;

use async_nats::jetstream::kv;
use herald_core::users;
use herald_runtime::{Applied, Decision, Effect, MsgMeta, Stage, StageError};
use herald_schemas::RoutedUpdate;

use super::commands::{ticket_count, LotteryCommand};
use super::service::Lottery;
use super::{orders, purchase, views};
use crate::core::reply::{send_start_first, Reply};

/// The stage.
pub struct LotteryInbox {
    pub lottery: Arc<Lottery>,
    /// The core user records: a command needs a user.
    pub users: kv::Store,
}

/// A change a command makes: the apply step's effect.
#[derive(Debug)]
pub enum Change {
    /// `/buy N`.
    Buy { user_id: i64, chat_id: i64, update_id: i64, count: u64 },
    /// `/admin lottery pause` (true) or `resume` (false).
    Pause { paused: bool, chat_id: i64, update_id: i64 },
}

fn answer<E>(text: String, update_id: i64, chat_id: i64) -> Decision<(), E> {
    Decision::Forward {
        outputs: vec![Reply::plain(text).output(update_id, chat_id, None)],
        commit: (),
    }
}

impl Stage for LotteryInbox {
    const NAME: &'static str = "lottery_inbox";
    type Input = RoutedUpdate;
    type Commit = ();
    type Effect = Change;

    fn decode(&self, payload: &[u8]) -> Result<RoutedUpdate, String> {
        herald_schemas::decode(payload).map_err(|e| e.to_string())
    }

    async fn decide(&self, routed: RoutedUpdate, _meta: &MsgMeta) -> Result<Decision<(), Change>, StageError> {
        let (Some(user_id), Some(chat_id)) = (routed.user_id, routed.chat_id) else {
            return Err(StageError::Permanent("routed update without a user or chat".into()));
        };
        let update_id = routed.update_id;
        let text = routed.command.as_deref().unwrap_or_default();
        let l = &self.lottery;
        let text = if let (true, Some(args)) = (routed.admin, text.strip_prefix("/admin")) {
            match views::admin_pause(args) {
                Some(paused) => return Ok(Decision::Apply(Change::Pause { paused, chat_id, update_id })),
                None => views::admin(l, args).await?,
            }
        } else {
            let Some(cmd) = LotteryCommand::from_text(text) else {
                return Ok(Decision::Drop { reason: "not_a_lottery_command" });
            };
            if users::load(&self.users, user_id).await?.is_none() {
                return Ok(send_start_first(update_id, chat_id));
            }
            match cmd {
                LotteryCommand::Lottery => views::lottery(l, user_id).await?,
                LotteryCommand::Buy(arg) => match ticket_count(&arg, l.max_tickets) {
                    Err(usage) => usage,
                    Ok(count) => {
                        return Ok(Decision::Apply(Change::Buy {
                            user_id,
                            chat_id,
                            update_id,
                            count,
                        }))
                    }
                },
                LotteryCommand::Tickets => views::tickets(l, user_id).await?,
                LotteryCommand::Draws => views::draws(l).await?,
                LotteryCommand::Verify(arg) => views::verify(l, &arg).await?,
                LotteryCommand::Ref => views::referral(l, user_id),
            }
        };
        Ok(answer(text, update_id, chat_id))
    }

    /// Buys (debit and journal append, once per update) or pauses/resumes sales.
    async fn apply(&self, change: Change, _meta: &MsgMeta) -> Result<Applied<()>, StageError> {
        let l = &self.lottery;
        let (text, update_id, chat_id, effect) = match change {
            Change::Buy {
                user_id,
                chat_id,
                update_id,
                count,
            } => {
                let (bought, effect) = purchase::buy(l, user_id, chat_id, update_id, count).await?;
                if let (purchase::Bought::Insufficient { balance, cost }, Some(round)) = (&bought, l.current().await?) {
                    // kept as a standing order: the next deposit buys it (orders.rs)
                    let order = orders::Order {
                        user_id,
                        chat_id,
                        update_id,
                        count,
                        round,
                        expires_ms: herald_schemas::now_ms() + orders::ORDER_TTL_MS,
                    };
                    orders::place(l, &order).await?;
                    let text = views::standing(&order, *balance, *cost);
                    let Decision::Forward { mut outputs, .. } = answer::<()>(text, update_id, chat_id) else {
                        unreachable!("answer forwards")
                    };
                    outputs.push(orders::ask_for_address(&order));
                    return Ok(Applied {
                        decision: Decision::Forward { outputs, commit: () },
                        effect,
                    });
                }
                (views::bought(&bought, l), update_id, chat_id, effect)
            }
            Change::Pause { paused, chat_id, update_id } => {
                // setting the flag again changes nothing
                let effect = if l.paused().await? == paused { Effect::AlreadyMade } else { Effect::Made };
                l.set_paused(paused).await?;
                (views::paused(paused), update_id, chat_id, effect)
            }
        };
        Ok(Applied {
            decision: answer(text, update_id, chat_id),
            effect,
        })
    }

    async fn commit(&self, _: ()) -> Result<(), StageError> {
        Ok(())
    }
}
