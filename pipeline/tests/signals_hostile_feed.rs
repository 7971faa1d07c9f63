//! Hostile feed frames (issue 13, findings 1 and 3), through a real websocket and a real
//! nats-server: each bad frame is dead-lettered with its reason, nothing of it reaches
//! CALLS or PRICES, a frame that is not UTF-8 does not cost the connection, and a good
//! call sent after all of them is published with its texts cleaned and cut.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::Env;
use futures::{SinkExt, StreamExt};
use herald_pipeline::products::signals::sources::websocket::{Protocol, WebsocketSource};
use herald_schemas::checks::{ChainList, MAX_NAME, MAX_SYMBOL};
use herald_schemas::{subjects, CallEvent};
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::Message;

/// A call frame with `field` replaced by `value` (raw JSON).
fn call_with(field: &str, value: &str) -> String {
    let mut fields = vec![
        ("id", "\"e1\"".to_string()),
        ("chain", "\"solana\"".to_string()),
        ("token", "\"8neDcPFwrvRNM9WXHCtHwTcKZrVm6wr4cs4PSN9Hpump\"".to_string()),
        ("price_usd", "0.0225".to_string()),
        ("fdv_usd", "258000".to_string()),
        ("caller_id", "\"c1\"".to_string()),
        ("ts_ms", "1".to_string()),
    ];
    match fields.iter_mut().find(|(k, _)| *k == field) {
        Some(f) => f.1 = value.to_string(),
        None => fields.push((Box::leak(field.to_string().into_boxed_str()), value.to_string())),
    }
    let body: Vec<String> = fields.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
    format!("{{\"type\":\"call\",{}}}", body.join(","))
}

/// Every frame of the issue's list, with the words its dead-letter reason must hold.
fn hostile_frames() -> Vec<(String, &'static str)> {
    let long = format!("\"{}\"", "x".repeat(1000));
    let mut frames: Vec<(String, &str)> = vec![
        (call_with("price_usd", "-1"), "price"),
        (call_with("price_usd", "0"), "price"),
        (call_with("price_usd", "-0.0"), "price"),
        (call_with("price_usd", "1e-310"), "price"),
        (call_with("fdv_usd", "-5"), "FDV"),
        (call_with("fdv_usd", "1.797e308"), "FDV"),
        (call_with("token", "\"   \""), "token address"),
        (call_with("token", &format!("\"{}\"", "T".repeat(10_000))), "token address"),
        (call_with("id", "\"\""), "event id"),
    ];
    for chain in [
        "\"\"",
        "\"a.b\"",
        "\"*\"",
        "\">\"",
        "\"sol ana\"",
        "\"sol\\u0000\"",
        &long,
        "\"sol\\u202eana\"",
    ] {
        frames.push((call_with("chain", chain), "unknown chain"));
    }
    frames.push((
        r#"{"type":"price","chain":"a.b","token":"T","price_usd":1,"ts_ms":1}"#.to_string(),
        "unknown chain",
    ));
    frames
}

#[tokio::test]
async fn hostile_frames_are_dead_lettered_and_the_connection_is_kept() {
    let env = Env::start().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    let connections = Arc::new(AtomicUsize::new(0));
    let hostile = hostile_frames();
    let good = call_with("symbol", &format!("\"{}\"", "S".repeat(10_000)))
        .replace("\"caller_id\"", "\"caller_name\":\"\\u202eevil\\u0007 caller\",\"caller_id\"")
        .replace("\"e1\"", "\"good-1\"");
    let frames: Vec<String> = hostile.iter().map(|(f, _)| f.clone()).collect();
    let counted = connections.clone();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            counted.fetch_add(1, Ordering::SeqCst);
            let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
            for f in &frames {
                ws.send(Message::text(f.clone())).await.unwrap();
            }
            // a text frame that is not UTF-8, then the good call on the same connection
            let bad_utf8 = Frame::message(b"{\"type\":\"call\",\"id\":\"\xff\xfe\"}".to_vec(), OpCode::Data(Data::Text), true);
            ws.send(Message::Frame(bad_utf8)).await.unwrap();
            ws.send(Message::text(good.clone())).await.unwrap();
            // keep the connection open until the source goes away
            while ws.next().await.is_some() {}
        }
    });
    let source = WebsocketSource {
        url,
        protocol: Protocol::HeraldFeed,
        js: env.js.clone(),
        max_in_flight: 16,
        chains: ChainList::default(),
    };
    tokio::spawn(source.run(env.shutdown.clone()));

    let calls = env
        .messages(subjects::CALLS_STREAM, "herald.calls.>", 1, Duration::from_secs(20))
        .await;
    let letters = env
        .messages(subjects::DLQ_STREAM, "herald.dlq.feed", hostile.len() + 1, Duration::from_secs(20))
        .await;
    assert_eq!(calls.len(), 1, "only the good call is published");
    let call: CallEvent = herald_schemas::decode(&calls[0].payload).unwrap();
    assert_eq!(call.source_event_id, "good-1");
    let symbol = call.symbol.unwrap();
    assert_eq!(symbol.chars().count(), MAX_SYMBOL, "a 10,000-character symbol is cut");
    let caller = call.caller.name.unwrap();
    assert_eq!(caller, "evil caller", "bidi and control characters are stripped");
    assert!(caller.chars().count() <= MAX_NAME);
    assert_eq!(env.count(subjects::PRICES_STREAM, "herald.prices.>").await, 0);

    assert_eq!(letters.len(), hostile.len() + 1, "one dead letter per bad frame");
    let reasons: Vec<String> = letters
        .iter()
        .map(|m| m.headers.as_ref().unwrap().get(subjects::HEADER_ERROR).unwrap().to_string())
        .collect();
    for ((frame, words), reason) in hostile.iter().zip(&reasons) {
        assert!(
            reason.contains(words),
            "{reason:?} should name {words:?} for {}",
            &frame[..frame.len().min(120)]
        );
    }
    assert!(reasons.last().unwrap().contains("not UTF-8"), "{:?}", reasons.last());
    assert_eq!(connections.load(Ordering::SeqCst), 1, "the bad frames did not cost the connection");
}
