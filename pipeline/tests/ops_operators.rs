//! Operator tools against a real nats-server (and redis-server for the live pipeline):
//! replay by sequence and by time, replay into the live pipeline, DLQ list and re-drive,
//! the streams table.

mod common;

use std::time::Duration;

use common::{call, Env};
use futures::StreamExt;
use herald_pipeline::ops::{dlq, replay, streams};
use herald_pipeline::products::signals::dedup::DedupStage;
use herald_pipeline::products::signals::sources::websocket::call_output;
use herald_schemas::subjects;

async fn publish_calls(env: &Env, tokens: std::ops::Range<u32>) {
    for i in tokens {
        let out = call_output(&call(&format!("TOKEN{i}"), "chan", None, None));
        env.publish(out.subject, &out.msg_id, out.payload).await;
    }
}

#[tokio::test]
async fn replay_selects_exactly_by_sequence_and_by_time() {
    let env = Env::start().await;
    publish_calls(&env, 0..10).await; // sequences 1..=10
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let boundary = time::OffsetDateTime::now_utc();
    tokio::time::sleep(Duration::from_millis(100)).await;
    publish_calls(&env, 10..15).await; // sequences 11..=15

    let mut got = env.client.subscribe("replayed.>").await.unwrap();
    let sel = replay::Selection {
        stream: subjects::CALLS_STREAM.into(),
        from_seq: Some(3),
        to_seq: Some(7),
        ..Default::default()
    };
    let target = replay::Target::Subject("replayed.seq".into());
    let opts = replay::Options::default();
    let dry_run = replay::Options {
        dry_run: true,
        ..Default::default()
    };
    let dry = replay::replay(&env.js, &sel, &target, &dry_run).await.unwrap();
    assert_eq!((dry.matched, dry.published), (5, 0), "a dry run only counts");
    let s = replay::replay(&env.js, &sel, &target, &opts).await.unwrap();
    assert_eq!((s.matched, s.published, s.first_seq, s.last_seq), (5, 5, Some(3), Some(7)));
    let mut tokens = Vec::new();
    for _ in 0..5 {
        let m = tokio::time::timeout(Duration::from_secs(5), got.next()).await.unwrap().unwrap();
        assert_eq!(
            m.headers.as_ref().unwrap().get("Herald-Replay-Of").unwrap().as_str(),
            format!("CALLS:{}", tokens.len() + 3)
        );
        tokens.push(herald_schemas::decode::<herald_schemas::CallEvent>(&m.payload).unwrap().token);
    }
    assert_eq!(tokens, ["TOKEN2", "TOKEN3", "TOKEN4", "TOKEN5", "TOKEN6"]);

    let by_time = replay::Selection {
        stream: subjects::CALLS_STREAM.into(),
        since: Some(boundary),
        ..Default::default()
    };
    let s = replay::replay(&env.js, &by_time, &replay::Target::Subject("replayed.time".into()), &opts)
        .await
        .unwrap();
    assert_eq!(
        (s.matched, s.first_seq, s.last_seq),
        (5, Some(11), Some(15)),
        "only what was stored after the boundary"
    );
    let before = replay::Selection {
        stream: subjects::CALLS_STREAM.into(),
        until: Some(boundary),
        subject: Some("herald.calls.solana.>".into()),
        ..Default::default()
    };
    let s = replay::replay(&env.js, &before, &target, &dry_run).await.unwrap();
    assert_eq!((s.matched, s.last_seq), (10, Some(10)));
}

#[tokio::test]
async fn replay_into_the_live_pipeline_notifies_nobody_twice() {
    let env = Env::start().await;
    env.put_user(7, |_, _| {}).await;
    let state = env.state(Duration::from_secs(600), Duration::from_secs(600)).await;
    env.spawn(DedupStage { state: state.clone() }, subjects::CALLS_STREAM, "herald.calls.>");
    env.spawn_fanout(state).await;
    publish_calls(&env, 0..6).await;
    let notes = env
        .messages(subjects::OUTBOUND_STREAM, subjects::NOTIFY_ALL, 6, Duration::from_secs(10))
        .await;
    assert_eq!(notes.len(), 6);
    env.drained(subjects::SIGNALS_STREAM, "fanout").await;
    let notified = common::stage_metric("herald_stage_out_total", "fanout");
    let seen = common::stage_metric("herald_stage_in_total", "fanout");

    let sel = replay::Selection {
        stream: subjects::CALLS_STREAM.into(),
        ..Default::default()
    };
    let s = replay::replay(
        &env.js,
        &sel,
        &replay::Target::Original,
        &replay::Options {
            rate: Some(200),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(s.published, 6);
    let sel = replay::Selection {
        stream: subjects::SIGNALS_STREAM.into(),
        ..Default::default()
    };
    replay::replay(&env.js, &sel, &replay::Target::Original, &replay::Options::default())
        .await
        .unwrap();
    env.drained(subjects::CALLS_STREAM, "dedup").await;
    env.drained(subjects::SIGNALS_STREAM, "fanout").await;
    assert_eq!(
        env.count(subjects::CALLS_STREAM, "herald.calls.>").await,
        12,
        "the replayed calls were consumed again"
    );
    assert!(
        common::stage_metric("herald_stage_in_total", "fanout") >= seen + 6.0,
        "fan-out saw the replayed signals"
    );
    // the fan-out's own count of what it published, not the stream's (whose duplicate
    // window would hide a repeat)
    assert_eq!(
        common::stage_metric("herald_stage_out_total", "fanout"),
        notified,
        "but nobody was notified twice"
    );
}

#[tokio::test]
async fn dead_letters_are_listed_and_redriven_after_a_fix() {
    let env = Env::start().await;
    // a call dead-lettered by dedup (say Redis was down for all five deliveries)
    let good = call_output(&call("REDRIVEN", "chan", None, None));
    let mut h = async_nats::HeaderMap::new();
    h.insert(subjects::HEADER_STAGE, "dedup");
    h.insert(subjects::HEADER_ERROR, "failed after 5 deliveries: connection refused");
    h.insert(subjects::HEADER_ORIGINAL_SUBJECT, good.subject.as_str());
    h.insert(subjects::HEADER_ORIGINAL_SEQUENCE, "41");
    env.js
        .publish_with_headers(subjects::dead_letter("dedup"), h, good.payload.clone().into())
        .await
        .unwrap()
        .await
        .unwrap();
    // and a malformed frame from a source, which has no subject to go back to
    let mut h = async_nats::HeaderMap::new();
    h.insert(subjects::HEADER_STAGE, "feed");
    h.insert(subjects::HEADER_ERROR, "malformed feed frame: expected value");
    h.insert(subjects::HEADER_ORIGINAL_SUBJECT, "ws://feed.example/stream");
    env.js
        .publish_with_headers(subjects::dead_letter("feed"), h, "{oops".into())
        .await
        .unwrap()
        .await
        .unwrap();

    let all = dlq::list(&env.js, None, 100).await.unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!((all[0].stage.as_str(), all[0].original_sequence), ("dedup", Some(41)));
    assert!(all[0].error.contains("connection refused"));
    assert!(dlq::render(&all).contains("2 dead letter(s)"));
    let feed_only = dlq::list(&env.js, Some("feed"), 100).await.unwrap();
    assert_eq!(feed_only.len(), 1);

    let err = dlq::redrive(&env.js, feed_only[0].seq, None, false).await.unwrap_err().to_string();
    assert!(err.contains("pass --to"), "{err}");
    let state = env.state(Duration::from_secs(60), Duration::from_secs(60)).await;
    env.spawn(DedupStage { state }, subjects::CALLS_STREAM, "herald.calls.>");
    assert_eq!(dlq::redrive(&env.js, all[0].seq, None, false).await.unwrap(), good.subject);
    let signals = env
        .messages(subjects::SIGNALS_STREAM, "herald.signals.>", 1, Duration::from_secs(10))
        .await;
    assert_eq!(signals.len(), 1, "the re-driven call went through dedup");
    assert_eq!(
        dlq::list(&env.js, None, 100).await.unwrap().len(),
        1,
        "re-driven dead letters leave the DLQ"
    );
}

#[tokio::test]
async fn streams_table_shows_every_stream_and_consumer() {
    let env = Env::start().await;
    publish_calls(&env, 0..3).await;
    let state = env.state(Duration::from_secs(60), Duration::from_secs(60)).await;
    env.spawn(DedupStage { state }, subjects::CALLS_STREAM, "herald.calls.>");
    env.messages(subjects::SIGNALS_STREAM, "herald.signals.>", 3, Duration::from_secs(10))
        .await;
    let rows = streams::status(&env.js, &herald_pipeline::app::compose::definitions_of_all().0)
        .await
        .unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "UPDATES",
            "COMMANDS",
            "OUTBOUND",
            "DLQ",
            "LEDGER",
            "CALLS",
            "SIGNALS",
            "PRICES",
            "TRACKED",
            "DEPOSITS",
            "WITHDRAWALS",
            "GATEWAY",
            "CHAT",
            "LOTTERY",
            "TRIVIA",
            "TRIVIA_RESULTS"
        ],
        "the core's streams (the ledger's among them), then each product's"
    );
    let calls = rows.iter().find(|r| r.name == "CALLS").unwrap();
    assert_eq!(calls.messages, 3);
    let dedup = calls.consumers.iter().find(|c| c.name == "dedup").expect("the dedup consumer");
    assert_eq!((dedup.pending, dedup.ack_pending), (0, 0));
    let table = streams::render(&rows);
    assert!(table.contains("consumer dedup") && table.contains("SIGNALS"), "{table}");
}
