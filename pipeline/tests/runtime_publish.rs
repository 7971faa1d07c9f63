//! The runtime's batch publish against a real nats-server.

mod common;

use std::time::Duration;

use common::Env;
use herald_runtime::Output;
use herald_schemas::subjects;

/// More outputs than async-nats lets acks be outstanding (5,000 by default): the batch
/// must await acks as it goes, or the 5,001st publish waits forever.
#[tokio::test]
async fn publish_all_stores_a_batch_larger_than_the_ack_window() {
    let env = Env::start().await;
    let n = 12_000u64;
    let outputs: Vec<Output> = (0..n)
        .map(|i| Output {
            subject: subjects::notify(i as i64),
            msg_id: format!("batch:{i}"),
            payload: format!("{{\"n\":{i}}}").into_bytes(),
        })
        .collect();
    tokio::time::timeout(Duration::from_secs(60), herald_runtime::publish_all(&env.js, outputs))
        .await
        .expect("publish_all returned")
        .unwrap();
    let stored = env
        .js
        .get_stream(subjects::OUTBOUND_STREAM)
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .state
        .messages;
    assert_eq!(stored, n);
}
