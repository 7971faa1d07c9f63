//! Telegram's sending limits, enforced before each send with governor's GCRA limiters,
//! plus per-chat holds after a 429.
//!
//! - global: `global_rate` messages/s, evenly spaced (burst 1), shared by every chat
//! - per private chat: `chat_rate`/s; per group or channel (negative chat id): also
//!   `group_rate_per_min`/min
//! - a 429 with `retry_after` holds back only that chat until it passes
//! - replies to a user's own command take the global permit before any broadcast

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use herald_schemas::Priority;
use tokio::time::Instant;

use crate::config::LimitArgs;

/// The shared limiter of one bot process.
pub struct Limits {
    global: DefaultDirectRateLimiter,
    chat: DefaultKeyedRateLimiter<i64>,
    group: DefaultKeyedRateLimiter<i64>,
    holds: Mutex<HashMap<i64, Instant>>,
    replies_waiting: AtomicUsize,
    replies_done: tokio::sync::Notify,
}

fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n.max(1)).expect("max(1) is non-zero")
}

impl Limits {
    pub fn new(args: &LimitArgs) -> Self {
        Limits {
            global: RateLimiter::direct(Quota::per_second(nz(args.effective_global_rate())).allow_burst(nz(1))),
            chat: RateLimiter::keyed(Quota::per_second(nz(args.chat_rate)).allow_burst(nz(1))),
            group: RateLimiter::keyed(Quota::per_minute(nz(args.group_rate_per_min)).allow_burst(nz(1))),
            holds: Mutex::new(HashMap::new()),
            replies_waiting: AtomicUsize::new(0),
            replies_done: tokio::sync::Notify::new(),
        }
    }

    /// Waits until a message to `chat_id` may be sent now.
    pub async fn acquire(&self, chat_id: i64, priority: Priority) {
        let _reply = (priority == Priority::Reply).then(|| ReplyGuard::new(self));
        while let Some(until) = self.hold_of(chat_id) {
            tokio::time::sleep_until(until).await;
        }
        self.chat.until_key_ready(&chat_id).await;
        if chat_id < 0 {
            self.group.until_key_ready(&chat_id).await;
        }
        if priority == Priority::Broadcast {
            while self.replies_waiting.load(Ordering::SeqCst) > 0 {
                let _ = tokio::time::timeout(Duration::from_millis(20), self.replies_done.notified()).await;
            }
        }
        self.global.until_ready().await;
    }

    /// Holds back `chat_id` for `retry_after` (Telegram's 429 answer).
    pub fn hold(&self, chat_id: i64, retry_after: Duration) {
        let until = Instant::now() + retry_after;
        let mut holds = self.holds.lock().expect("holds lock");
        let entry = holds.entry(chat_id).or_insert(until);
        *entry = (*entry).max(until);
    }

    fn hold_of(&self, chat_id: i64) -> Option<Instant> {
        let mut holds = self.holds.lock().expect("holds lock");
        match holds.get(&chat_id) {
            Some(until) if *until > Instant::now() => Some(*until),
            Some(_) => {
                holds.remove(&chat_id);
                None
            }
            None => None,
        }
    }
}

/// Counts a reply as waiting while it acquires its permit.
struct ReplyGuard<'a>(&'a Limits);

impl<'a> ReplyGuard<'a> {
    fn new(l: &'a Limits) -> Self {
        l.replies_waiting.fetch_add(1, Ordering::SeqCst);
        ReplyGuard(l)
    }
}

impl Drop for ReplyGuard<'_> {
    fn drop(&mut self) {
        if self.0.replies_waiting.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.replies_done.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(global: u32) -> LimitArgs {
        LimitArgs {
            global_rate: global,
            paid_broadcast: false,
            chat_rate: 1,
            group_rate_per_min: 20,
            max_in_flight: 8,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_hold_delays_only_its_chat() {
        let limits = Limits::new(&args(30));
        limits.hold(1, Duration::from_secs(5));
        let start = Instant::now();
        limits.acquire(2, Priority::Broadcast).await;
        assert!(start.elapsed() < Duration::from_secs(1), "chat 2 must not wait for chat 1's hold");
        limits.acquire(1, Priority::Broadcast).await;
        assert!(start.elapsed() >= Duration::from_secs(5), "chat 1 waits out its retry_after");
    }

    #[test]
    fn paid_broadcast_raises_the_ceiling() {
        assert_eq!(args(500).effective_global_rate(), 30);
        assert_eq!(
            LimitArgs {
                paid_broadcast: true,
                ..args(500)
            }
            .effective_global_rate(),
            500
        );
        assert_eq!(
            LimitArgs {
                paid_broadcast: true,
                ..args(5000)
            }
            .effective_global_rate(),
            1000
        );
    }
}
