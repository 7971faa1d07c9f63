//! Subscription expiry reminders: once per subscription end, a day before it.

use std::time::Duration;

use herald_schemas::{subjects, Access, OutboundMessage, Priority, User};

use herald_runtime::Output;

/// How long before the end a user is reminded.
pub const AHEAD: Duration = Duration::from_secs(24 * 3600);

/// The reminders due at `now_ms`: users (active, not locked) whose paid access ends
/// within [`AHEAD`]. The idempotency key names the end (`remind.<user>.<paid until>`), so
/// each end is reminded once however often this runs, and a renewal makes a new one.
///
/// ```
/// use herald_pipeline::products::payments::reminders::due;
/// use herald_schemas::{Access, User};
/// let users = [User::new(1, 1, 0), User::new(2, 2, 0)];
/// let soon = Access { paid_until_ms: Some(10_000 + 3_600_000), ..Access::none(1) };
/// let later = Access { paid_until_ms: Some(10_000 + 90_000_000), ..Access::none(2) };
/// assert_eq!(due(&users, &[soon, later], 10_000).len(), 1);
/// ```
pub fn due(users: &[User], access: &[Access], now_ms: u64) -> Vec<Output> {
    let horizon = now_ms + AHEAD.as_millis() as u64;
    let ends: std::collections::HashMap<i64, u64> = access
        .iter()
        .filter_map(|a| Some((a.user_id, a.paid_until_ms.filter(|end| *end > now_ms && *end <= horizon)?)))
        .collect();
    users
        .iter()
        .filter(|u| u.reachable())
        .filter_map(|u| {
            let end = *ends.get(&u.user_id)?;
            let key = format!("remind.{}.{end}", u.user_id);
            let hours = (end - now_ms).div_ceil(3_600_000);
            let msg = OutboundMessage::html(key.clone(), u.chat_id, format!("⏰ Your subscription ends in about {hours} h. /subscribe to extend it (time left is kept)."), Priority::Broadcast, now_ms);
            Some(Output {
                subject: subjects::notify(u.chat_id),
                msg_id: key,
                payload: herald_schemas::encode(&msg),
            })
        })
        .collect()
}

/// Publishes the reminders due now (message ids dedup repeats within OUTBOUND's
/// window; the bot's delivered keys beyond it). `pipeline run` calls it hourly.
///
/// Errors: reading the users or publishing failed (the next round retries).
pub async fn publish_due(
    js: &herald_runtime::Js,
    users: &async_nats::jetstream::kv::Store,
    access: &async_nats::jetstream::kv::Store,
) -> anyhow::Result<()> {
    let all = herald_core::users::all(users).await?;
    let paid = herald_runtime::records::all::<Access>(access).await?;
    let outputs = due(&all, &paid, herald_schemas::now_ms());
    let n = outputs.len();
    herald_runtime::publish_all(js, outputs).await?;
    metrics::counter!(super::metrics::REMINDERS.name).increment(n as u64);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_active_unlocked_users_ending_within_a_day_are_reminded_once_per_end() {
        let now = 1_000_000;
        let ends = [
            (1, Some(now + 3_600_000)),                    // due
            (2, Some(now - 1)),                            // already over
            (3, Some(now + 2 * AHEAD.as_millis() as u64)), // not yet
            (4, None),                                     // never subscribed
            (5, Some(now + 1)),                            // locked
            (6, Some(now + 1)),                            // blocked the bot
            (7, Some(u64::MAX)),                           // lifetime
        ];
        let access: Vec<Access> = ends
            .iter()
            .map(|&(id, end)| Access {
                paid_until_ms: end,
                ..Access::none(id)
            })
            .collect();
        let users: Vec<User> = (1..=7)
            .map(|id| User {
                locked: id == 5,
                active: id != 6,
                ..User::new(id, id, 0)
            })
            .collect();
        let due = due(&users, &access, now);
        assert_eq!(
            due.iter().map(|o| o.msg_id.as_str()).collect::<Vec<_>>(),
            [format!("remind.1.{}", now + 3_600_000)]
        );
        let msg: OutboundMessage = herald_schemas::decode(&due[0].payload).unwrap();
        assert!(msg.text().unwrap().contains("about 1 h"), "{:?}", msg.text());
    }
}
