//! Dedup and filter + fan-out against a real nats-server and redis-server.

mod common;

use std::time::Duration;

use common::{call, Env};
use herald_pipeline::products::signals::dedup::DedupStage;
use herald_pipeline::products::signals::sources::websocket::call_output;
use herald_pipeline::products::signals::token_state::Status;
use herald_schemas::{subjects, Filters, OutboundMessage, Signal};

const SECOND: Duration = Duration::from_secs(1);

async fn start_flow(env: &Env, accepted: Duration, rejected: Duration) -> herald_pipeline::products::signals::token_state::TokenState {
    let state = env.state(accepted, rejected).await;
    env.spawn(DedupStage { state: state.clone() }, subjects::CALLS_STREAM, "herald.calls.>");
    env.spawn_fanout(state.clone()).await;
    state
}

async fn send_call(env: &Env, c: &herald_schemas::CallEvent) {
    let out = call_output(c);
    env.publish(out.subject, &out.msg_id, out.payload).await;
}

fn decode_all<T: herald_schemas::Versioned>(msgs: &[async_nats::jetstream::Message]) -> Vec<T> {
    msgs.iter().map(|m| herald_schemas::decode(&m.payload).unwrap()).collect()
}

#[tokio::test]
async fn only_new_callers_pass_and_rejected_tokens_expire() {
    let env = Env::start().await;
    let state = start_flow(&env, 6 * SECOND, 2 * SECOND).await;
    // nobody subscribed: every token stays rejected
    send_call(&env, &call("TOK1", "chanA", None, None)).await;
    send_call(&env, &call("TOK1", "chanA", None, None)).await; // same event id: dropped by the stream's window
    let mut again = call("TOK1", "chanA", None, None);
    again.source_event_id = "another-post".into();
    send_call(&env, &again).await; // same caller, new event: dropped by dedup
                                   // (concurrent calls for one token may each miss the other in `all_caller_ids`; the
                                   // signal message id still keeps one signal per caller)
    tokio::time::sleep(Duration::from_millis(500)).await;
    send_call(&env, &call("TOK1", "chanB", None, None)).await;

    let signals: Vec<Signal> = decode_all(&env.messages(subjects::SIGNALS_STREAM, "herald.signals.>", 2, 10 * SECOND).await);
    assert_eq!(signals.len(), 2, "first sighting and the new caller only");
    assert_eq!(signals[0].new_callers[0].id, "chanA");
    assert_eq!(signals[1].new_callers.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(), ["chanB"]);
    assert_eq!(signals[1].all_caller_ids, ["chanA", "chanB"]);

    // rejected: remembered for the rejected TTL only
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(state.status("solana:TOK1").await.unwrap(), Some(Status::Rejected));
    let ttl = state.ttl_ms("solana:TOK1").await.unwrap().unwrap();
    assert!(ttl <= 2000, "rejected TTL {ttl} ms");
    tokio::time::sleep(Duration::from_millis(ttl + 300)).await;
    assert_eq!(state.status("solana:TOK1").await.unwrap(), None);
    let mut later = call("TOK1", "chanA", None, None);
    later.source_event_id = "after-expiry".into();
    send_call(&env, &later).await;
    let signals = env.messages(subjects::SIGNALS_STREAM, "herald.signals.>", 3, 10 * SECOND).await;
    assert_eq!(signals.len(), 3, "an expired rejected token is checked again");
}

#[tokio::test]
async fn rejected_token_is_rechecked_on_new_channels_and_upgraded() {
    let env = Env::start().await;
    let state = start_flow(&env, 60 * SECOND, 60 * SECOND).await;
    env.put_user(10, |_, p| {
        p.filters = Filters {
            min_win_rate: Some(0.6),
            ..Default::default()
        }
    })
    .await;
    env.put_user(11, |_, p| {
        p.filters = Filters {
            min_fdv_usd: Some(1e6),
            ..Default::default()
        }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    send_call(&env, &call("TOK2", "weak", Some((0.3, 500.0)), Some(50_000.0))).await;
    tokio::time::sleep(SECOND).await;
    assert_eq!(
        env.count(subjects::OUTBOUND_STREAM, "herald.out.notify.>").await,
        0,
        "no filter passes on the weak caller"
    );
    assert_eq!(state.status("solana:TOK2").await.unwrap(), Some(Status::Rejected));

    send_call(&env, &call("TOK2", "strong", Some((0.8, 50.0)), Some(50_000.0))).await;
    let notes: Vec<OutboundMessage> = decode_all(&env.messages(subjects::OUTBOUND_STREAM, "herald.out.notify.>", 1, 10 * SECOND).await);
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0].chat_id, 10);
    assert!(
        notes[0].text().unwrap_or_default().contains("Channel strong 🆕") && notes[0].text().unwrap_or_default().contains("win 80%"),
        "{}",
        notes[0].text().unwrap_or_default()
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(state.status("solana:TOK2").await.unwrap(), Some(Status::Accepted));
    assert!(state.ttl_ms("solana:TOK2").await.unwrap().unwrap() > 30_000, "accepted TTL applies");

    // a third strong caller: the user was already sent the token
    send_call(&env, &call("TOK2", "strong2", Some((0.9, 50.0)), Some(50_000.0))).await;
    tokio::time::sleep(SECOND).await;
    assert_eq!(
        env.count(subjects::OUTBOUND_STREAM, "herald.out.notify.>").await,
        1,
        "never the same token twice"
    );
}

#[tokio::test]
async fn fan_out_to_a_thousand_users_once_each() {
    let env = Env::start().await;
    for id in 1..=1000i64 {
        env.put_user(id, |u, p| {
            u.chat_id = id + 5_000_000;
            if id % 2 == 0 {
                p.filters.chains = vec!["solana".into()];
            }
        })
        .await;
    }
    // a paused user and an inactive user receive nothing
    env.put_user(1001, |_, p| p.paused = true).await;
    env.put_user(1002, |u, _| u.active = false).await;
    start_flow(&env, 60 * SECOND, 60 * SECOND).await;
    send_call(&env, &call("TOK3", "chan", None, Some(1e5))).await;
    let mut bsc = call("0xabc", "chan", None, Some(1e5));
    bsc.chain = "bsc".into();
    send_call(&env, &bsc).await;

    let msgs = env
        .messages(subjects::OUTBOUND_STREAM, "herald.out.notify.>", 1500, 30 * SECOND)
        .await;
    let notes: Vec<OutboundMessage> = decode_all(&msgs);
    let solana = notes.iter().filter(|n| n.text().unwrap_or_default().contains("TOK3")).count();
    let on_bsc = notes.iter().filter(|n| n.text().unwrap_or_default().contains("0xabc")).count();
    assert_eq!((solana, on_bsc), (1000, 500), "odd users take every chain, even users only solana");
    let mut keys: Vec<&str> = notes.iter().map(|n| n.idempotency_key.as_str()).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 1500, "one idempotency key per user and token");
    assert!(
        notes.iter().all(|n| n.chat_id > 5_000_000),
        "paused and inactive users were skipped"
    );
}

#[tokio::test]
async fn malformed_calls_are_dead_lettered_and_the_stage_goes_on() {
    let env = Env::start().await;
    start_flow(&env, 60 * SECOND, 60 * SECOND).await;
    env.publish(subjects::call("solana", "feed"), "bad-1", b"{\"token\": 5}".to_vec())
        .await;
    let mut future = call("TOK4", "chan", None, None);
    future.v = 9;
    let out = call_output(&future);
    env.publish(out.subject, "bad-2", out.payload).await;
    send_call(&env, &call("TOK5", "chan", None, None)).await;

    let dead = env.messages(subjects::DLQ_STREAM, "herald.dlq.dedup", 2, 10 * SECOND).await;
    assert_eq!(dead.len(), 2);
    let reasons: Vec<String> = dead
        .iter()
        .map(|m| m.headers.as_ref().unwrap().get(subjects::HEADER_ERROR).unwrap().to_string())
        .collect();
    assert!(reasons[0].starts_with("malformed payload"), "{reasons:?}");
    assert!(reasons[1].contains("unsupported schema version 9"), "{reasons:?}");
    assert_eq!(dead[0].payload.as_ref(), b"{\"token\": 5}", "the original payload is kept");
    let signals = env.messages(subjects::SIGNALS_STREAM, "herald.signals.>", 1, 10 * SECOND).await;
    assert_eq!(signals.len(), 1, "the good call after the bad ones still flows");
}

/// The token state batches the claims that stages make at once (issue 25), and each
/// claim keeps its meaning: of two calls of one caller on one token, one wins; the
/// claiming call itself may claim again; a Redis that lost its scripts loads them again.
#[tokio::test]
async fn concurrent_claims_go_in_batches_and_keep_their_answers() {
    use herald_runtime::metric::{sum_in, BATCHED_REQUESTS, BATCHES};
    let env = Env::start().await;
    let state = env.state(60 * SECOND, 60 * SECOND).await;
    let metrics = herald_runtime::telemetry::install_metrics();
    let counted = |name: &str| sum_in(&metrics.render(), name, &[("batch", "token_claim")]);
    let (batches_before, requests_before) = (counted(BATCHES.name), counted(BATCHED_REQUESTS.name));

    let tokens: Vec<String> = (0..300).map(|i| format!("solana:BATCH{i}")).collect();
    let claims = tokens
        .iter()
        .flat_map(|t| [(t.as_str(), "chanA", "call-1"), (t.as_str(), "chanA", "call-2")]);
    let answers = futures::future::join_all(claims.map(|(t, caller, id)| state.claim(t, caller, id))).await;
    for pair in answers.chunks(2) {
        let won: Vec<bool> = pair.iter().map(|a| !a.as_ref().unwrap().is_empty()).collect();
        assert_eq!(won, [true, false], "the first call claims the caller, the second is a duplicate");
    }
    assert_eq!(
        state.claim("solana:BATCH7", "chanA", "call-1").await.unwrap(),
        ["chanA"],
        "a redelivery of the claiming call"
    );

    let (batches, requests) = (
        counted(BATCHES.name) - batches_before,
        counted(BATCHED_REQUESTS.name) - requests_before,
    );
    assert!(requests >= 601.0, "{requests} claims counted");
    assert!(batches < requests / 4.0, "{batches} batches for {requests} claims made together");

    let mut redis = redis::Client::open(env.redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let _: () = redis::cmd("SCRIPT").arg("FLUSH").query_async(&mut redis).await.unwrap();
    assert_eq!(state.claim("solana:AFTERFLUSH", "chanB", "call-3").await.unwrap(), ["chanB"]);
    state.record_seen("solana:AFTERFLUSH").await.unwrap();
    assert_eq!(state.status("solana:AFTERFLUSH").await.unwrap(), Some(Status::Rejected));
}
