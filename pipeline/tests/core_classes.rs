//! Durability classes against the real servers: every money stream and bucket sits on a
//! server whose `/varz` says it fsyncs every write, every events stream on one that does
//! not (read from each server's `/varz` and `/jsz`); `pipeline run` refuses a money
//! server that does not fsync, unless `--allow-unsynced-money`; `pipeline setup` refuses
//! money left on the events server.

mod common;

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use common::Env;
use herald_pipeline::app::compose;
use herald_runtime::durability::read_varz;
use herald_runtime::setup;
use herald_schemas::subjects;

/// Stream names a server holds, from its `/jsz`.
async fn streams_on(monitor: &str) -> BTreeSet<String> {
    let jsz: serde_json::Value = reqwest::get(format!("{monitor}/jsz?accounts=true&streams=true"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    jsz["account_details"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|a| a["stream_detail"].as_array().cloned().unwrap_or_default())
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn money_is_on_the_server_that_fsyncs_and_events_on_the_other() {
    let env = Env::start().await;
    let (money, events) = (env.nats.money_monitor(), env.nats.events_monitor());
    assert!(read_varz(&money).await.unwrap().sync_always, "the money server fsyncs every write");
    let events_sync = read_varz(&events).await.unwrap();
    assert!(!events_sync.sync_always, "the events server flushes on its timer");
    assert_eq!(events_sync.sync_interval_ns, 120_000_000_000, "nats-server's default, 2 minutes");

    let classes = compose::classes();
    let want_money: BTreeSet<String> = classes.money_stream_names().into_iter().collect();
    let (streams, buckets) = compose::definitions_of_all();
    let mut want_events: BTreeSet<String> = setup::stream_configs(&streams)
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .chain(buckets.iter().map(|b| format!("KV_{}", b.name)))
        .collect();
    want_events.retain(|n| !want_money.contains(n));
    assert!(want_money.contains("LEDGER") && want_money.contains("KV_herald_ledger_refs"));
    assert!(want_events.contains("CALLS") && want_events.contains("KV_herald_users"));

    let on_money = streams_on(&money).await;
    let on_events = streams_on(&events).await;
    assert_eq!(on_money, want_money, "the money server holds the money class, nothing else");
    assert!(
        want_events.is_subset(&on_events),
        "missing on events: {:?}",
        want_events.difference(&on_events)
    );
    assert!(
        on_events.is_disjoint(&want_money),
        "money on the events server: {:?}",
        on_events.intersection(&want_money)
    );

    // a write goes where its class says: a ledger entry lands on the money server only
    let before = herald_testkit::stream_len(&env.js, subjects::LEDGER_STREAM).await.unwrap();
    env.js.publish(subjects::ledger(42), "{}".into()).await.unwrap().await.unwrap();
    assert_eq!(
        herald_testkit::stream_len(&env.js, subjects::LEDGER_STREAM).await.unwrap(),
        before + 1
    );
    assert!(env.js.events().get_stream(subjects::LEDGER_STREAM).await.is_err());
}

#[tokio::test]
async fn setup_refuses_money_left_on_the_events_server_until_it_is_moved() {
    let env = Env::start().await;
    // the money class as a deployment made it before the classes: on the events server
    for name in [subjects::LEDGER_STREAM.to_string(), format!("KV_{}", subjects::ACCESS_BUCKET)] {
        env.js.of(herald_runtime::Class::Money).unwrap().delete_stream(&name).await.unwrap();
    }
    let (streams, _) = compose::definitions_of_all();
    let ledger = setup::stream_configs(&streams)
        .unwrap()
        .into_iter()
        .find(|c| c.name == subjects::LEDGER_STREAM)
        .unwrap();
    let events = env.js.events();
    events.create_stream(ledger).await.unwrap();
    let access = events
        .create_key_value(async_nats::jetstream::kv::Config {
            bucket: subjects::ACCESS_BUCKET.into(),
            ..Default::default()
        })
        .await
        .unwrap();
    for (user, entry) in [(1, "a"), (2, "b"), (1, "c")] {
        events.publish(subjects::ledger(user), entry.into()).await.unwrap().await.unwrap();
    }
    access.put("7", "paid".into()).await.unwrap();
    access.put("8", "paid".into()).await.unwrap();
    access.delete("8").await.unwrap();

    let err = compose::setup_all(&env.js, false, setup::Replicas::Existing)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("events server") && err.contains("--move-money"), "{err}");

    let moved = herald_runtime::relocate::move_money(&env.js, &compose::classes().money_stream_names())
        .await
        .unwrap();
    let counts: Vec<(String, u64)> = moved.iter().map(|m| (m.stream.clone(), m.messages)).collect();
    assert_eq!(
        counts,
        [("KV_herald_access".to_string(), 2), (subjects::LEDGER_STREAM.to_string(), 3)],
        "both moved, every message (the bucket keeps one per key: 7, and 8's deletion)"
    );
    assert!(
        events.get_stream(subjects::LEDGER_STREAM).await.is_err(),
        "gone from the events server"
    );
    compose::setup_all(&env.js, false, setup::Replicas::Existing).await.unwrap();
    // on the money server, in order, keys and deletions intact
    let ledger = env.js.get_stream(subjects::LEDGER_STREAM).await.unwrap();
    let last = ledger.get_last_raw_message_by_subject(&subjects::ledger(1)).await.unwrap();
    assert_eq!(&last.payload[..], b"c");
    let access = env.js.get_key_value(subjects::ACCESS_BUCKET).await.unwrap();
    assert_eq!(access.get("7").await.unwrap().as_deref(), Some(&b"paid"[..]));
    assert_eq!(access.get("8").await.unwrap(), None, "the deletion moved too");
}

/// `pipeline run` with the money class pointed at `money_url` / `money_monitor`, and
/// `extra` flags; returns the child.
fn pipeline_run(env: &Env, money_url: &str, money_monitor: &str, extra: &[&str]) -> std::process::Child {
    let metrics = herald_testkit::free_port();
    Command::new(herald_testkit::workspace_bin("pipeline").unwrap())
        .args(["run", "--nats-url", &env.nats.url(), "--nats-money-url", money_url])
        .args(["--nats-money-monitor", money_monitor, "--redis-url", &env.redis.url()])
        .args(["--products", "chat", "--metrics-addr", &format!("127.0.0.1:{metrics}")])
        .args(extra)
        .env("HERALD_LOG_FORMAT", "text")
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

#[tokio::test]
async fn run_refuses_a_money_server_that_does_not_fsync() {
    let env = Env::start().await;
    // money pointed at the events server: it flushes every 2 minutes
    let out = pipeline_run(&env, &env.nats.url(), &env.nats.events_monitor(), &[])
        .wait_with_output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "refused: {stderr}");
    assert!(
        stderr.contains("does not fsync every write") && stderr.contains("sync_interval is 120 s"),
        "names the setting: {stderr}"
    );
    assert!(stderr.contains(&env.nats.events_monitor()), "names the server: {stderr}");

    // a monitor of another server than the money connection reached: refused too
    let out = pipeline_run(&env, &env.nats.url(), &env.nats.money_monitor(), &[])
        .wait_with_output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("none of the monitors"), "{stderr}");

    // allowed for development: it runs, with a warning
    let mut child = pipeline_run(&env, &env.nats.url(), &env.nats.events_monitor(), &["--allow-unsynced-money"]);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut running = true;
    while std::time::Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            running = false;
            break;
        }
        // the stage consumers exist once it runs
        let consumers = env.js.get_stream(subjects::COMMANDS_STREAM).await.unwrap().consumer_names();
        let names: Vec<String> = futures::TryStreamExt::try_collect(consumers).await.unwrap();
        if names.iter().any(|n| n == "chat_inbox") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(running, "it ran: {stderr}");
    assert!(stderr.contains("--allow-unsynced-money"), "and warned: {stderr}");
}
