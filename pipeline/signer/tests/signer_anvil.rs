//! The signer against a real anvil node and a real nats-server pair: a withdrawal sent
//! and final once; kill -9 after the signed transaction is journaled and before its
//! broadcast, and after the broadcast and before finality, each followed by a restart
//! that sends the same transaction and nothing else; a stuck transaction replaced under
//! the same nonce, exactly one of them mined; a transaction dropped by a reorg
//! (evm_revert) broadcast again, the same bytes, paid once; a hot wallet short of tokens queues the
//! withdrawal whole and sends it once funded.
//!
//! "Nothing twice" is read from the chain (the hot wallet's nonce: how many of its
//! transactions were mined) and the destination's token balance, not from a stream.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::{address, Address, U256};
use alloy::providers::{Provider, RootProvider};
use herald_runtime::setup::{self, BucketDef, StreamDef};
use herald_schemas::{subjects, Withdrawal, WithdrawalOutcome, WithdrawalStage};
use herald_signer::chain::Chain;
use herald_signer::journal::{Journal, State};
use herald_signer::key::HotKey;
use herald_signer::signer::{Policy, Signer};
use herald_testkit::{evm, LocalAnvil, LocalNats};

/// anvil's second development account: the hot wallet in these tests.
const HOT_KEY: &str = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
const HOT: Address = address!("70997970C51812dc3A010C7d01b50e0d17dc79C8");
/// Where the withdrawals go (an address nobody controls here).
const DEST: Address = address!("00000000000000000000000000000000000000d1");

struct World {
    nats: LocalNats,
    anvil: LocalAnvil,
    js: herald_runtime::Js,
    chain: RootProvider,
    token: Address,
}

fn definitions() -> (Vec<StreamDef>, Vec<BucketDef>) {
    (
        vec![StreamDef {
            file: "payments.withdrawals.json",
            json: include_str!("../../../nats/streams/payments.withdrawals.json"),
        }],
        vec![BucketDef::forever(subjects::SIGNER_BUCKET).money()],
    )
}

impl World {
    /// Servers up, the stream and journal set up, the token deployed, the hot wallet
    /// holding `tokens` base units of it.
    async fn start(tokens: u64) -> World {
        let nats = LocalNats::start().unwrap();
        let anvil = LocalAnvil::start().unwrap();
        let (streams, buckets) = definitions();
        let classes = herald_runtime::classes::Classes::from_definitions(&streams, &buckets).unwrap();
        let js = nats.servers_args().connect(classes).await.unwrap();
        setup::apply(&js, &streams, &buckets, false, setup::Replicas::Existing)
            .await
            .unwrap();
        let chain = evm::provider(&anvil.url()).unwrap();
        let token = evm::deploy_token(&chain).await.unwrap();
        if tokens > 0 {
            evm::pay(&chain, token, HOT, U256::from(tokens)).await.unwrap();
        }
        World {
            nats,
            anvil,
            js,
            chain,
            token,
        }
    }

    fn withdrawal(&self, id: &str, amount: u64) -> Withdrawal {
        Withdrawal {
            v: 1,
            id: id.into(),
            user_id: 7,
            chain: "bsc".into(),
            token: self.token.to_string(),
            to: DEST.to_string(),
            amount: amount.to_string(),
            hold: format!("withdraw:{id}"),
            approved_ms: herald_schemas::now_ms(),
        }
    }

    async fn approve(&self, w: &Withdrawal) {
        self.js
            .publish_with_id(subjects::withdrawal_approved(&w.chain), &w.id, herald_schemas::encode(w).into())
            .await
            .unwrap()
            .await
            .unwrap();
    }

    async fn signer(&self, stuck_after: Duration) -> Arc<Signer> {
        let key = HotKey::from_hex(HOT_KEY).unwrap();
        let chain = Chain::connect(&self.anvil.url(), key.address()).await.unwrap();
        let journal = Journal::new(self.js.get_key_value(subjects::SIGNER_BUCKET).await.unwrap());
        let policy = Policy {
            confirmations: 3,
            stuck_after,
            bump_percent: 20,
        };
        Arc::new(Signer {
            chain,
            key,
            journal,
            policy,
        })
    }

    async fn journal(&self) -> Journal {
        Journal::new(self.js.get_key_value(subjects::SIGNER_BUCKET).await.unwrap())
    }

    async fn dest_balance(&self) -> U256 {
        evm::balance_of(&self.chain, self.token, DEST).await.unwrap()
    }

    /// How many of the hot wallet's transactions were mined.
    async fn hot_nonce(&self) -> u64 {
        self.chain.get_transaction_count(HOT).await.unwrap()
    }

    /// The outcomes published so far, in order.
    async fn outcomes(&self) -> Vec<WithdrawalOutcome> {
        herald_runtime::reader::read(&self.js, subjects::WITHDRAWALS_STREAM, "herald.withdrawals.*.bsc")
            .await
            .unwrap()
            .iter()
            .filter(|m| !m.subject.starts_with("herald.withdrawals.approved."))
            .map(|m| herald_schemas::decode::<WithdrawalOutcome>(&m.payload).unwrap())
            .collect()
    }

    /// Starts `herald-signer` (paused at `pause_at`, if given).
    fn spawn_signer(&self, pause_at: Option<&str>) -> Child {
        let bin = herald_testkit::workspace_bin("herald-signer").unwrap();
        let mut cmd = Command::new(bin);
        cmd.args(self.nats.args())
            .args(["--rpc-url", &self.anvil.url(), "--confirmations", "3", "--watch-every", "200ms"])
            .args(["--metrics-addr", &format!("127.0.0.1:{}", herald_testkit::free_port())])
            .env(herald_signer::key::KEY_ENV, HOT_KEY)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(p) = pause_at {
            cmd.env("HERALD_SIGNER_PAUSE_AT", p);
        }
        cmd.spawn().unwrap()
    }
}

/// Waits (polling every 100 ms, 60 s at most) until `check` gives `Some`.
async fn until<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(t) = check().await {
            return t;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs the watcher until it publishes the final outcome; that outcome.
async fn final_outcome(signer: &Signer) -> WithdrawalOutcome {
    until("final", || async {
        signer
            .watch_once()
            .await
            .unwrap()
            .into_iter()
            .find(|o| o.stage == WithdrawalStage::Final)
    })
    .await
}

fn kill9(child: &mut Child) {
    // SIGKILL: no cleanup, no flush, as a crash
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test]
async fn a_withdrawal_is_sent_once_and_becomes_final() {
    let w = World::start(1_000_000).await;
    let signer = w.signer(Duration::from_secs(600)).await;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let stage = herald_runtime::StageHandle::new(herald_signer::stage::Approved(signer.clone()), herald_signer::stage::consumer());
    tokio::spawn(stage.run(w.js.clone(), shutdown.clone()));
    let wd = w.withdrawal("wd-7-1", 250_000);
    w.approve(&wd).await;
    // a redelivered approval (another message id) must not sign again
    w.js.publish_with_id(
        subjects::withdrawal_approved("bsc"),
        "wd-7-1-again",
        herald_schemas::encode(&wd).into(),
    )
    .await
    .unwrap()
    .await
    .unwrap();
    let journal = w.journal().await;
    until("the transaction sent", || async {
        journal.load("wd-7-1").await.unwrap().filter(|(e, _)| e.state == State::Sent)
    })
    .await;
    until("both approvals consumed", || async {
        let n = herald_testkit::stream_len(&w.js, subjects::WITHDRAWALS_STREAM).await.unwrap();
        (n >= 3).then_some(())
    })
    .await;
    evm::mine(&w.chain, 3).await.unwrap();
    final_outcome(&signer).await;
    let (entry, _) = journal.load("wd-7-1").await.unwrap().unwrap();
    assert_eq!(entry.state, State::Final);
    assert_eq!(entry.txs.len(), 1, "one transaction signed");
    assert_eq!(entry.mined.as_deref(), Some(entry.txs[0].hash.as_str()));
    assert_eq!(w.hot_nonce().await, 1, "one transaction mined");
    assert_eq!(w.dest_balance().await, U256::from(250_000), "the amount arrived once");
    shutdown.cancel();
}

/// kill -9 at `pause_at`, restart, and the same transaction goes out; nothing else.
async fn crash_and_restart(pause_at: &str) {
    let w = World::start(1_000_000).await;
    let journal = w.journal().await;
    let mut first = w.spawn_signer(Some(pause_at));
    w.approve(&w.withdrawal("wd-7-2", 400_000)).await;
    let (entry, _) = until("the signed transaction journaled", || async {
        journal.load("wd-7-2").await.unwrap().filter(|(e, _)| !e.txs.is_empty())
    })
    .await;
    let signed = entry.txs[0].hash.clone();
    if pause_at == "after_broadcast" {
        until("the broadcast mined", || async { (w.hot_nonce().await == 1).then_some(()) }).await;
    } else {
        // journaled, not broadcast: the chain has nothing
        assert_eq!(w.hot_nonce().await, 0);
    }
    kill9(&mut first);
    let mut second = w.spawn_signer(None);
    until("mined after the restart", || async { (w.hot_nonce().await == 1).then_some(()) }).await;
    evm::mine(&w.chain, 3).await.unwrap();
    let (entry, _) = until("final after the restart", || async {
        journal.load("wd-7-2").await.unwrap().filter(|(e, _)| e.state == State::Final)
    })
    .await;
    kill9(&mut second);
    assert_eq!(entry.txs.len(), 1, "no second signature after the crash: {:?}", entry.txs);
    assert_eq!(
        entry.mined.as_deref(),
        Some(signed.as_str()),
        "the journaled transaction is the one mined"
    );
    assert_eq!(w.hot_nonce().await, 1, "one transaction mined");
    assert_eq!(w.dest_balance().await, U256::from(400_000));
    let finals = w.outcomes().await.into_iter().filter(|o| o.stage == WithdrawalStage::Final).count();
    assert_eq!(finals, 1, "one final outcome");
}

#[tokio::test]
async fn kill9_after_signing_before_broadcast_sends_the_journaled_transaction() {
    crash_and_restart("after_journal").await;
}

#[tokio::test]
async fn kill9_after_broadcast_before_finality_sends_nothing_new() {
    crash_and_restart("after_broadcast").await;
}

#[tokio::test]
async fn a_stuck_transaction_is_replaced_and_only_one_is_mined() {
    let w = World::start(1_000_000).await;
    let signer = w.signer(Duration::from_millis(500)).await;
    let _: serde_json::Value = w.chain.raw_request("evm_setAutomine".into(), (false,)).await.unwrap();
    let journal = w.journal().await;
    signer.submit(w.withdrawal("wd-7-3", 100_000)).await.unwrap();
    // stuck: nothing mines; after 500 ms the watcher replaces it at a higher price
    let (entry, _) = until("a replacement", || async {
        signer.watch_once().await.unwrap();
        journal.load("wd-7-3").await.unwrap().filter(|(e, _)| e.txs.len() >= 2)
    })
    .await;
    assert!(entry.txs[1].gas_price > entry.txs[0].gas_price * 11 / 10, "{:?}", entry.txs);
    assert_ne!(entry.txs[0].hash, entry.txs[1].hash);
    let _: serde_json::Value = w.chain.raw_request("evm_setAutomine".into(), (true,)).await.unwrap();
    evm::mine(&w.chain, 4).await.unwrap();
    let fin = final_outcome(&signer).await;
    let (entry, _) = journal.load("wd-7-3").await.unwrap().unwrap();
    assert!(
        entry.txs.iter().any(|t| Some(&t.hash) == fin.tx_hash.as_ref()),
        "the mined one is one of ours"
    );
    assert_eq!(w.hot_nonce().await, 1, "one of the same-nonce transactions mined");
    assert_eq!(w.dest_balance().await, U256::from(100_000), "paid once");
}

#[tokio::test]
async fn a_transaction_dropped_by_a_reorg_is_broadcast_again_and_paid_once() {
    let w = World::start(1_000_000).await;
    let signer = w.signer(Duration::from_secs(600)).await;
    let journal = w.journal().await;
    let snapshot: U256 = w.chain.raw_request("evm_snapshot".into(), ()).await.unwrap();
    signer.submit(w.withdrawal("wd-7-5", 120_000)).await.unwrap();
    assert_eq!(w.dest_balance().await, U256::from(120_000), "mined at once (automine)");
    // a reorg: the block that held it is gone, and the new chain does not have it
    let reverted: bool = w.chain.raw_request("evm_revert".into(), (snapshot,)).await.unwrap();
    assert!(reverted);
    evm::mine(&w.chain, 2).await.unwrap();
    assert_eq!((w.hot_nonce().await, w.dest_balance().await), (0, U256::ZERO), "dropped");
    // the watcher finds it unmined and broadcasts the same signed bytes again
    let fin = until("final after the reorg", || async {
        let outcomes = signer.watch_once().await.unwrap();
        evm::mine(&w.chain, 1).await.unwrap();
        outcomes.into_iter().find(|o| o.stage == WithdrawalStage::Final)
    })
    .await;
    let (entry, _) = journal.load("wd-7-5").await.unwrap().unwrap();
    assert_eq!(entry.txs.len(), 1, "never signed a second transaction");
    assert_eq!(fin.tx_hash.as_ref(), Some(&entry.txs[0].hash), "the same transaction, mined again");
    assert_eq!(w.hot_nonce().await, 1);
    assert_eq!(w.dest_balance().await, U256::from(120_000), "paid once");
}

#[tokio::test]
async fn a_hot_wallet_short_of_tokens_queues_the_withdrawal_whole() {
    let w = World::start(50_000).await;
    let signer = w.signer(Duration::from_secs(600)).await;
    let journal = w.journal().await;
    let queued = signer.submit(w.withdrawal("wd-7-4", 80_000)).await.unwrap().unwrap();
    assert_eq!(queued.stage, WithdrawalStage::Queued);
    assert!(queued.reason.as_deref().unwrap_or_default().contains("50000"), "{queued:?}");
    let (entry, _) = journal.load("wd-7-4").await.unwrap().unwrap();
    assert_eq!(
        (entry.state, entry.nonce, entry.txs.len()),
        (State::Queued, None, 0),
        "nothing signed"
    );
    assert_eq!(w.hot_nonce().await, 0, "nothing sent, not even part");
    // funded: the next pass sends it whole
    evm::pay(&w.chain, w.token, HOT, U256::from(30_000)).await.unwrap();
    let sent = signer.watch_once().await.unwrap();
    assert_eq!(sent.iter().map(|o| o.stage).collect::<Vec<_>>(), [WithdrawalStage::Sent]);
    evm::mine(&w.chain, 3).await.unwrap();
    final_outcome(&signer).await;
    assert_eq!(w.dest_balance().await, U256::from(80_000));
    assert_eq!(w.hot_nonce().await, 1);
}
