//! The bot's outbound consumers pass the same compliance harness as every pipeline
//! stage (redelivery, metrics, malformed input, transient failures, clean shutdown),
//! sending to the Bot API emulator; a message Telegram refuses is dead-lettered where
//! `pipeline dlq redrive` sends it again. (Here, not in `bot/tests`, so the bot's own
//! dependencies stay free of the pipeline's.)

use std::sync::Arc;

use herald_bot::config::LimitArgs;
use herald_bot::outbound::{limits::Limits, Outbound};
use herald_loadtest::emulator::{Emulator, EmulatorLimits, Fail};
use herald_runtime::setup;
use herald_schemas::subjects;
use herald_testkit::LocalNats;

async fn outbound(js: &async_nats::jetstream::Context, telegram: &Emulator) -> Outbound {
    let limits = LimitArgs {
        global_rate: 30,
        paid_broadcast: false,
        chat_rate: 1,
        group_rate_per_min: 20,
        max_in_flight: 8,
        interactive_rate: 30,
        interactive_in_flight: 8,
    };
    Outbound {
        bot: teloxide::Bot::new("1:compliance").set_api_url(telegram.url().parse().unwrap()),
        delivered: js.get_key_value(subjects::DELIVERED_BUCKET).await.unwrap(),
        users: js.get_key_value(subjects::USERS_BUCKET).await.unwrap(),
        limits: Arc::new(Limits::new(&limits)),
        paid_broadcast: false,
    }
}

async fn stack() -> (LocalNats, async_nats::jetstream::Context, Emulator) {
    let nats = LocalNats::start().unwrap();
    let js = async_nats::jetstream::new(async_nats::connect(nats.url()).await.unwrap());
    setup::apply(&js, &setup::core_streams(), &setup::core_buckets(), false)
        .await
        .unwrap();
    let telegram = Emulator::start("127.0.0.1:0".parse().unwrap(), EmulatorLimits::default())
        .await
        .unwrap();
    (nats, js, telegram)
}

#[tokio::test]
async fn the_outbound_consumers_are_compliant_and_send_each_message_once() {
    let (_nats, js, telegram) = stack().await;
    let outbound = outbound(&js, &telegram).await;
    let metrics = herald_runtime::telemetry::install_metrics();
    let render = move || metrics.render();
    let reports = herald_testkit::compliance::check_all(&js, &render, outbound.stages(8, 8)).await;
    assert_eq!(reports.len(), 2, "replies and broadcasts");
    // each sample was redelivered after a lost ack: Telegram still got it once
    let texts: Vec<String> = telegram.deliveries().into_iter().map(|d| d.text).collect();
    assert_eq!(texts, ["compliance", "compliance"], "one message per consumer's sample");
}

#[tokio::test]
async fn a_refused_message_is_dead_lettered_and_a_redrive_sends_it() {
    let (_nats, js, telegram) = stack().await;
    let shutdown = tokio_util::sync::CancellationToken::new();
    for stage in outbound(&js, &telegram).await.stages(8, 8) {
        tokio::spawn(stage.run(js.clone(), shutdown.clone()));
    }
    // Telegram refuses the first send to chat 5 (400: its HTML)
    telegram.fail(Fail {
        chat_id: 5,
        status: 400,
        retry_after: 1,
        times: 1,
    });
    let msg = herald_schemas::OutboundMessage::html("redrive.1", 5, "hello", herald_schemas::Priority::Reply, 0);
    js.publish(subjects::reply(5), herald_schemas::encode(&msg).into())
        .await
        .unwrap()
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(15);
    let letter = loop {
        let letters = herald_pipeline::ops::dlq::list(&js, Some("bot"), 10).await.unwrap();
        if let Some(l) = letters.into_iter().next() {
            break l;
        }
        assert!(tokio::time::Instant::now() < deadline, "the refused message was not dead-lettered");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(letter.error.contains("can't parse entities"), "{}", letter.error);
    assert_eq!(
        letter.original_subject,
        subjects::reply(5),
        "its own subject, which a stream captures"
    );
    assert!(telegram.deliveries().is_empty());
    // after the fix, the operator re-drives it: the bot sends it
    let to = herald_pipeline::ops::dlq::redrive(&js, letter.seq, None, false).await.unwrap();
    assert_eq!(to, subjects::reply(5));
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(15);
    while telegram.deliveries().is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "the re-driven message was not sent");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let sent = telegram.deliveries();
    assert_eq!((sent.len(), sent[0].chat_id, sent[0].text.as_str()), (1, 5, "hello"));
    shutdown.cancel();
}
