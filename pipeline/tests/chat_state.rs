//! The random chat's states under concurrency, on a real redis-server: pairing is
//! atomic with two "instances" (two connections, each running its share of the joins
//! at once), `/next` storms leave no one in two chats, and nobody is paired again with
//! a partner they reported or skipped.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use herald_pipeline::products::chat::state::{Change, ChatState, Peer};
use herald_testkit::LocalRedis;

async fn instance(redis: &LocalRedis) -> ChatState {
    let client = redis::Client::open(redis.url()).unwrap();
    ChatState::new(redis::aio::ConnectionManager::new(client).await.unwrap(), Duration::from_secs(600))
}

/// Everyone's state, checked for consistency: partners point at each other with one
/// chat number, no chat has three members, queued users are in the queue. Returns the
/// pairs and the queued users.
async fn consistent(state: &ChatState, redis: &LocalRedis, users: impl Iterator<Item = i64>) -> (HashMap<u64, Vec<i64>>, HashSet<i64>) {
    let mut chats: HashMap<u64, Vec<i64>> = HashMap::new();
    let mut queued = HashSet::new();
    let mut peers = HashMap::new();
    for u in users {
        let peer = state.partner(u).await.unwrap();
        peers.insert(u, peer);
        match peer {
            Peer::Chatting { chat, .. } => chats.entry(chat).or_default().push(u),
            Peer::Queued => {
                queued.insert(u);
            }
            Peer::Idle => {}
        }
    }
    for (u, peer) in &peers {
        if let Peer::Chatting { partner, chat } = peer {
            assert_eq!(
                peers.get(partner),
                Some(&Peer::Chatting { partner: *u, chat: *chat }),
                "{u}'s partner {partner} is not in chat {chat} with {u}"
            );
        }
    }
    for (chat, members) in &chats {
        assert_eq!(members.len(), 2, "chat {chat} has {members:?}");
    }
    let mut conn = redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let in_queue: HashSet<i64> = redis::cmd("ZRANGE")
        .arg("herald:chat:queue")
        .arg(0)
        .arg(-1)
        .query_async::<Vec<i64>>(&mut conn)
        .await
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(in_queue, queued, "the queue holds exactly the users in state IN_QUEUE");
    (chats, queued)
}

#[tokio::test(flavor = "current_thread")]
async fn a_thousand_concurrent_joins_from_two_instances_pair_everyone_once() {
    let redis = LocalRedis::start().unwrap();
    let (one, two) = (instance(&redis).await, instance(&redis).await);
    let joins = (1..=1000i64).map(|u| {
        let s = if u % 2 == 0 { one.clone() } else { two.clone() };
        async move { (u, s.join(u, &format!("upd:{u}")).await.unwrap()) }
    });
    let results = futures::future::join_all(joins).await;
    let paired = results.iter().filter(|(_, c)| matches!(c, Change::Paired { .. })).count();
    let (chats, queued) = consistent(&one, &redis, 1..=1000).await;
    assert_eq!(chats.len(), paired, "each pairing made one chat");
    assert_eq!(chats.len() * 2 + queued.len(), 1000, "everyone is in one chat or still queued");
    assert!(
        queued.len() <= 1,
        "with nobody to avoid, at most one is left waiting: {}",
        queued.len()
    );

    // a redelivered join gets the same answer and changes nothing
    let again = futures::future::join_all((1..=1000i64).map(|u| {
        let s = one.clone();
        async move { (u, s.join(u, &format!("upd:{u}")).await.unwrap()) }
    }))
    .await;
    assert_eq!(again, results, "the op key replays each join's answer");
    assert_eq!(consistent(&one, &redis, 1..=1000).await.0, chats);
}

#[tokio::test(flavor = "current_thread")]
async fn next_storms_leave_no_one_in_two_chats() {
    let redis = LocalRedis::start().unwrap();
    let (one, two) = (instance(&redis).await, instance(&redis).await);
    for u in 1..=200i64 {
        one.join(u, &format!("j{u}")).await.unwrap();
    }
    // every user presses /next 10 times, all at once, through both instances
    let storm = (1..=200i64).flat_map(|u| (0..10).map(move |i| (u, i))).map(|(u, i)| {
        let s = if (u + i) % 2 == 0 { one.clone() } else { two.clone() };
        async move { s.next(u, &format!("n{u}:{i}")).await.unwrap() }
    });
    let nexts = futures::future::join_all(storm).await;
    let paired = nexts.iter().filter(|n| matches!(n.joined, Change::Paired { .. })).count();
    assert!(paired > 0, "the storm paired users again: {paired}");
    // (a user whose partner pressed /next last is idle: told, not re-queued; so how
    // many chats remain depends on the order the presses ran in)
    let (chats, _queued) = consistent(&one, &redis, 1..=200).await;
    for members in chats.values() {
        let (a, b) = (members[0], members[1]);
        for (u, other) in [(a, b), (b, a)] {
            let skipped = recent_skips(&redis, u).await;
            assert!(!skipped.contains(&other), "{u} was paired again with {other}, whom they skipped");
        }
    }
}

async fn recent_skips(redis: &LocalRedis, user: i64) -> Vec<i64> {
    let mut conn = redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let hist: Vec<String> = redis::cmd("LRANGE")
        .arg(format!("herald:chat:hist:{user}"))
        .arg(0)
        .arg(9)
        .query_async(&mut conn)
        .await
        .unwrap();
    hist.iter().filter_map(|h| h.strip_suffix(":skip")?.parse().ok()).collect()
}

#[tokio::test(flavor = "current_thread")]
async fn never_paired_again_with_a_reported_or_skipped_partner() {
    let redis = LocalRedis::start().unwrap();
    let s = instance(&redis).await;
    assert!(matches!(s.join(1, "a").await.unwrap(), Change::Queued { .. }));
    assert_eq!(
        s.join(2, "b").await.unwrap(),
        Change::Paired {
            partner: 1,
            chat: 1,
            online: 2
        }
    );
    // 2 skips 1: both wait, and are not paired
    let next = s.next(2, "c").await.unwrap();
    assert_eq!(next.ended, Some((1, 1)));
    assert!(matches!(next.joined, Change::Queued { .. }));
    assert!(
        matches!(s.join(1, "d").await.unwrap(), Change::Queued { .. }),
        "1 is not paired with 2, who skipped them"
    );
    assert_eq!(s.leave(1, "d2").await.unwrap(), Change::LeftQueue);
    // 3 arrives: paired with 2, the one waiting; 3 reports 2
    assert_eq!(
        s.join(3, "e").await.unwrap(),
        Change::Paired {
            partner: 2,
            chat: 2,
            online: 2
        }
    );
    let report = s.report(3, "f").await.unwrap().unwrap();
    assert_eq!((report.reported, report.chat, report.ended_chat), (2, 2, true));
    // 1 waits, 3 pairs with 1, 2 waits
    assert!(matches!(s.join(1, "g").await.unwrap(), Change::Queued { .. }));
    assert_eq!(
        s.join(3, "h").await.unwrap(),
        Change::Paired {
            partner: 1,
            chat: 3,
            online: 2
        }
    );
    assert!(matches!(s.join(2, "i").await.unwrap(), Change::Queued { .. }));
    // 3 /stops (not a skip) and joins again: only 2 waits, whom 3 reported
    assert!(matches!(s.leave(3, "j").await.unwrap(), Change::Ended { partner: 1, chat: 3 }));
    assert!(
        matches!(s.join(3, "k").await.unwrap(), Change::Queued { .. }),
        "3 is never paired with 2, whom they reported"
    );
    // 1 joins: 2 skipped 1 in their last 10 chats; 3 only stopped
    assert_eq!(
        s.join(1, "l").await.unwrap(),
        Change::Paired {
            partner: 3,
            chat: 4,
            online: 3
        }
    );
}

/// Makes `user` avoid each of `skipped` (as if they had skipped them), so they queue
/// side by side instead of pairing.
async fn skipped(redis: &LocalRedis, user: i64, skipped: &[i64]) {
    let mut conn = redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    for s in skipped {
        let _: () = redis::cmd("LPUSH")
            .arg(format!("herald:chat:hist:{user}"))
            .arg(format!("{s}:skip"))
            .query_async(&mut conn)
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_full_queue_refuses_a_search_until_someone_leaves() {
    let redis = LocalRedis::start().unwrap();
    let s = instance(&redis).await.with_limits(2, Duration::ZERO);
    skipped(&redis, 2, &[1]).await;
    skipped(&redis, 3, &[1, 2]).await;
    assert!(matches!(s.join(1, "a").await.unwrap(), Change::Queued { .. }));
    assert!(matches!(s.join(2, "b").await.unwrap(), Change::Queued { .. }));
    assert_eq!(s.counts().await.unwrap().queued, 2);
    assert_eq!(s.search(3, "c").await.unwrap(), Change::QueueFull, "two wait: the cap");
    assert_eq!(s.partner(3).await.unwrap(), Peer::Idle, "a refused search is not queued");
    // /next from nobody's chat joins too, and is refused the same way
    assert_eq!(s.next(3, "c2").await.unwrap().joined, Change::QueueFull);
    assert_eq!(s.leave(1, "d").await.unwrap(), Change::LeftQueue);
    assert!(matches!(s.search(3, "e").await.unwrap(), Change::Queued { .. }), "room again");
    assert_eq!(
        s.counts().await.unwrap(),
        herald_pipeline::products::chat::state::Counts { queued: 2, pairs: 0 }
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_user_searches_once_per_cooldown_and_a_redelivery_is_not_a_second_search() {
    let redis = LocalRedis::start().unwrap();
    let s = instance(&redis).await.with_limits(500, Duration::from_secs(60));
    assert!(matches!(s.search(7, "upd:1").await.unwrap(), Change::Queued { again: false, .. }));
    // the same update redelivered: the same answer, not "too soon"
    assert!(matches!(s.search(7, "upd:1").await.unwrap(), Change::Queued { again: false, .. }));
    assert_eq!(s.leave(7, "upd:2").await.unwrap(), Change::LeftQueue);
    match s.search(7, "upd:3").await.unwrap() {
        Change::TooSoon { wait_ms } => assert!((1..=60_000).contains(&wait_ms), "wait {wait_ms} ms"),
        other => panic!("a second /chat within 60 s: {other:?}"),
    }
    assert_eq!(s.partner(7).await.unwrap(), Peer::Idle);
    // /next is not limited (it searches again as part of skipping), nor is another user
    assert!(matches!(s.next(7, "upd:4").await.unwrap().joined, Change::Queued { .. }));
    assert!(matches!(s.search(8, "upd:5").await.unwrap(), Change::Paired { partner: 7, .. }));
    // a short cooldown passes: searching works again (waited on, not slept)
    let quick = instance(&redis).await.with_limits(500, Duration::from_millis(300));
    assert!(matches!(quick.search(9, "q1").await.unwrap(), Change::Queued { .. }));
    assert_eq!(quick.leave(9, "q2").await.unwrap(), Change::LeftQueue);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut n = 0;
    loop {
        n += 1;
        match quick.search(9, &format!("q3-{n}")).await.unwrap() {
            Change::TooSoon { .. } if std::time::Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(25)).await,
            Change::Queued { .. } => break,
            other => panic!("after the cooldown: {other:?}"),
        }
    }
    assert!(n > 1, "the first retry came within the cooldown");
}
