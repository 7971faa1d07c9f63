//! Telegram's sending limits, enforced before each send with governor's GCRA limiters,
//! plus per-chat holds after a 429.
//!
//! - global: `global_rate` messages/s, evenly spaced (burst 1), shared by every chat
//! - per private chat: `chat_rate`/s; per group or channel (negative chat id): also
//!   `group_rate_per_min`/min
//! - a 429 with `retry_after` holds back only that chat until it passes
//! - interactive messages (replies, relays) take the global permit before any bulk
//!   message, within their own budget (`interactive_rate`/s), so bulk is never starved
//! - a retried message (after a 5xx or a 429) keeps its place: once its backoff has
//!   passed it takes the next permit before fresh messages of its priority, instead of
//!   waiting behind a whole broadcast queued meanwhile

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use herald_schemas::Priority;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::config::LimitArgs;

/// The shared limiter of one bot process.
///
/// ```no_run
/// # async fn demo(args: herald_bot::config::LimitArgs) {
/// use herald_bot::outbound::limits::Limits;
/// use herald_schemas::Priority;
/// let limits = Limits::new(&args);
/// limits.acquire(42, Priority::Reply).await; // now a message to chat 42 may go out
/// limits.hold(42, std::time::Duration::from_secs(3)); // Telegram said 429, retry_after 3
/// # }
/// ```
pub struct Limits {
    interactive: DefaultDirectRateLimiter,
    chat: DefaultKeyedRateLimiter<i64>,
    group: DefaultKeyedRateLimiter<i64>,
    holds: Mutex<HashMap<i64, Instant>>,
    /// Waiting requesters, one queue per lane in the order permits go out.
    lanes: [mpsc::UnboundedSender<oneshot::Sender<()>>; 4],
}

/// The global permit's queues, first served first: retried replies, replies, retried
/// broadcasts, broadcasts.
fn lane(priority: Priority, retry: bool) -> usize {
    match (priority, retry) {
        (Priority::Reply, true) => 0,
        (Priority::Reply, false) => 1,
        (Priority::Broadcast, true) => 2,
        (Priority::Broadcast, false) => 3,
    }
}

fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n.max(1)).expect("max(1) is non-zero")
}

/// Hands out global permits one at a time, lane by lane (see [`lane`]): at every permit
/// a waiting reply wins over any waiting broadcast, however long the broadcast queue is,
/// and a retry over a fresh message of its priority.
async fn dispatch_global(global: Arc<DefaultDirectRateLimiter>, lanes: [mpsc::UnboundedReceiver<oneshot::Sender<()>>; 4]) {
    let [mut retried_replies, mut replies, mut retried_broadcasts, mut broadcasts] = lanes;
    loop {
        global.until_ready().await;
        // hand this permit to the first requester still waiting
        loop {
            let waiter = tokio::select! {
                biased;
                Some(w) = retried_replies.recv() => w,
                Some(w) = replies.recv() => w,
                Some(w) = retried_broadcasts.recv() => w,
                Some(w) = broadcasts.recv() => w,
                else => return,
            };
            if waiter.send(()).is_ok() {
                break;
            }
        }
    }
}

/// The burst a global budget of `rate`/s allows: one message per 100 per second, at
/// least 1 and at most 5 (what Telegram tolerates overall, as the emulator models it).
/// Without it, a budget near 1,000/s lost permits to the timer's 1 ms resolution: one
/// permit per wake-up held 1,000/s to about 780/s.
fn burst(rate: u32) -> u32 {
    (rate / 100).clamp(1, 5)
}

impl Limits {
    /// Creates the limits and starts their global dispatcher (needs a Tokio runtime).
    pub fn new(args: &LimitArgs) -> Self {
        let rate = args.effective_global_rate();
        let global = Arc::new(RateLimiter::direct(Quota::per_second(nz(rate)).allow_burst(nz(burst(rate)))));
        let channels: [_; 4] = std::array::from_fn(|_| mpsc::unbounded_channel());
        let (senders, receivers): (Vec<_>, Vec<_>) = channels.into_iter().unzip();
        let receivers: [_; 4] = receivers.try_into().expect("four lanes");
        tokio::spawn(dispatch_global(global, receivers));
        Limits {
            interactive: RateLimiter::direct(Quota::per_second(nz(args.interactive_rate)).allow_burst(nz(burst(args.interactive_rate)))),
            chat: RateLimiter::keyed(Quota::per_second(nz(args.chat_rate)).allow_burst(nz(1))),
            group: RateLimiter::keyed(Quota::per_minute(nz(args.group_rate_per_min)).allow_burst(nz(1))),
            holds: Mutex::new(HashMap::new()),
            lanes: senders.try_into().expect("four lanes"),
        }
    }

    /// Waits until a message to `chat_id` may be sent now: the chat's hold, its own
    /// rate, then a global permit in priority order.
    pub async fn acquire(&self, chat_id: i64, priority: Priority) {
        self.acquire_for(chat_id, priority, false).await
    }

    /// [`Limits::acquire`] for a message's first attempt (`retry` false) or a later one
    /// (true), which takes the global permit before fresh messages of its priority.
    pub async fn acquire_for(&self, chat_id: i64, priority: Priority, retry: bool) {
        while let Some(until) = self.hold_of(chat_id) {
            tokio::time::sleep_until(until).await;
        }
        self.chat.until_key_ready(&chat_id).await;
        if chat_id < 0 {
            self.group.until_key_ready(&chat_id).await;
        }
        if priority == Priority::Reply {
            self.interactive.until_ready().await;
        }
        let (tx, rx) = oneshot::channel();
        if self.lanes[lane(priority, retry)].send(tx).is_ok() {
            let _ = rx.await;
        }
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
            interactive_rate: 30,
            interactive_in_flight: 8,
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

    /// Where chat 99, asking (`priority`, `retry`) after six fresh broadcasts queued,
    /// gets its permit among the seven.
    async fn place_among_queued_broadcasts(priority: Priority, retry: bool) -> usize {
        let limits = Arc::new(Limits::new(&args(10)));
        limits.acquire(1, Priority::Broadcast).await; // use up the burst
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for chat in 10..16 {
            let (l, o) = (limits.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                l.acquire(chat, Priority::Broadcast).await;
                o.lock().unwrap().push(chat);
            }));
        }
        tokio::time::sleep(Duration::from_millis(30)).await; // broadcasts are queued
        let (l, o) = (limits.clone(), order.clone());
        tasks.push(tokio::spawn(async move {
            l.acquire_for(99, priority, retry).await;
            o.lock().unwrap().push(99);
        }));
        for t in tasks {
            t.await.unwrap();
        }
        let order = order.lock().unwrap();
        order.iter().position(|c| *c == 99).unwrap()
    }

    #[tokio::test]
    async fn a_reply_overtakes_waiting_broadcasts() {
        let at = place_among_queued_broadcasts(Priority::Reply, false).await;
        assert!(at <= 1, "the reply takes the next permit, not the seventh: {at}");
    }

    #[tokio::test]
    async fn a_retried_broadcast_goes_before_fresh_broadcasts() {
        let at = place_among_queued_broadcasts(Priority::Broadcast, true).await;
        assert!(at <= 1, "the retry keeps its place, not the back of the queue: {at}");
    }

    #[tokio::test]
    async fn interactive_traffic_keeps_within_its_budget_and_bulk_goes_on() {
        let limits = Arc::new(Limits::new(&LimitArgs {
            interactive_rate: 2,
            ..args(20)
        }));
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for (chat, priority) in [
            (1, Priority::Reply),
            (2, Priority::Reply),
            (3, Priority::Reply),
            (4, Priority::Reply),
        ]
        .into_iter()
        .chain((10..14).map(|c| (c, Priority::Broadcast)))
        {
            let (l, o) = (limits.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                l.acquire(chat, priority).await;
                o.lock().unwrap().push(chat);
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let order = order.lock().unwrap();
        let replies: Vec<usize> = order.iter().enumerate().filter(|(_, c)| **c < 10).map(|(i, _)| i).collect();
        let third_reply = replies[2];
        let last_bulk = order.iter().rposition(|c| *c >= 10).unwrap();
        assert!(last_bulk < third_reply, "2 replies/s leave the other permits to bulk: {order:?}");
    }
}
