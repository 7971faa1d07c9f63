//! Webhook mode against a real nats-server: the secret-token header is checked, updates
//! are stored raw with `update_id` as message id, and Telegram's retries are dropped.

use herald_bot::inbound::{webhook_router, SECRET_HEADER};
use herald_schemas::subjects;
use herald_testkit::LocalNats;

#[tokio::test]
async fn webhook_checks_the_secret_and_stores_each_update_once() {
    let nats = LocalNats::start().unwrap();
    let js = herald_runtime::config::NatsArgs { nats_url: nats.url() }.connect().await.unwrap().1;
    herald_runtime::setup::apply(
        &js,
        &herald_core::streams::core_streams(),
        &herald_core::streams::core_events_buckets(),
        false,
        herald_runtime::setup::Replicas::Existing,
    )
    .await
    .unwrap();
    let bot = teloxide::Bot::new("1:unused").set_api_url("http://127.0.0.1:9".parse().unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/telegram/webhook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, webhook_router(js.clone(), bot, "s3cret".into(), 64 * 1024)).await });

    let update = r#"{"update_id":892252934,"message":{"message_id":6557,"from":{"id":218485655,"is_bot":false,"first_name":"Waffle"},"chat":{"id":218485655,"first_name":"Waffle","type":"private"},"date":1569518342,"text":"hello there"}}"#;
    let http = reqwest::Client::new();
    let post = |secret: Option<&'static str>| {
        let mut r = http.post(&url).header("content-type", "application/json").body(update);
        if let Some(s) = secret {
            r = r.header(SECRET_HEADER, s);
        }
        r.send()
    };
    assert_eq!(post(None).await.unwrap().status(), 401);
    assert_eq!(post(Some("wrong")).await.unwrap().status(), 401);
    assert_eq!(post(Some("s3cret")).await.unwrap().status(), 200);
    assert_eq!(post(Some("s3cret")).await.unwrap().status(), 200, "Telegram's retry is accepted...");

    let js = herald_runtime::config::NatsArgs { nats_url: nats.url() }.connect().await.unwrap().1;
    let mut stream = js.get_stream(subjects::UPDATES_STREAM).await.unwrap();
    assert_eq!(
        stream.info().await.unwrap().state.messages,
        1,
        "...and dropped by the duplicate window"
    );
    let stored = stream
        .get_last_raw_message_by_subject(&subjects::update("message", Some(218485655)))
        .await
        .unwrap();
    assert_eq!(stored.payload.as_ref(), update.as_bytes(), "stored raw, byte for byte");
}
