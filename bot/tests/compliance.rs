//! The bot's outbound consumers pass the same compliance harness as every pipeline
//! stage (redelivery, metrics, malformed input, transient failures, clean shutdown),
//! sending to the Bot API emulator.

use std::sync::Arc;

use herald_bot::config::LimitArgs;
use herald_bot::outbound::{limits::Limits, Outbound};
use herald_loadtest::emulator::{Emulator, EmulatorLimits};
use herald_runtime::setup;
use herald_schemas::subjects;
use herald_testkit::LocalNats;

#[tokio::test]
async fn the_outbound_consumers_are_compliant_and_send_each_message_once() {
    herald_runtime::telemetry::init_logging();
    let nats = LocalNats::start().unwrap();
    let js = async_nats::jetstream::new(async_nats::connect(nats.url()).await.unwrap());
    setup::apply(&js, &setup::core_streams(), &setup::core_buckets(), false)
        .await
        .unwrap();
    let telegram = Emulator::start("127.0.0.1:0".parse().unwrap(), EmulatorLimits::default())
        .await
        .unwrap();
    let limits = LimitArgs {
        global_rate: 30,
        paid_broadcast: false,
        chat_rate: 1,
        group_rate_per_min: 20,
        max_in_flight: 8,
        interactive_rate: 30,
        interactive_in_flight: 8,
    };
    let outbound = Outbound {
        bot: teloxide::Bot::new("1:compliance").set_api_url(telegram.url().parse().unwrap()),
        delivered: js.get_key_value(subjects::DELIVERED_BUCKET).await.unwrap(),
        users: js.get_key_value(subjects::USERS_BUCKET).await.unwrap(),
        limits: Arc::new(Limits::new(&limits)),
        paid_broadcast: false,
    };
    let metrics = herald_runtime::telemetry::install_metrics();
    let render = move || metrics.render();
    let reports = herald_testkit::compliance::check_all(&js, &render, outbound.stages(8, 8)).await;
    assert_eq!(reports.len(), 2, "replies and broadcasts");
    // each sample was redelivered after a lost ack: Telegram still got it once
    let texts: Vec<String> = telegram.deliveries().into_iter().map(|d| d.text).collect();
    assert_eq!(texts, ["compliance", "compliance"], "one message per consumer's sample");
}
