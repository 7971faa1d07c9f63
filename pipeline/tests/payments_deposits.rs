//! Deposits against a real anvil node (npm `@foundry-rs/anvil`, started on a free port):
//! the OpenZeppelin ERC-20 from the fixtures deployed as the deposit token, transfers to
//! addresses derived from an xpub, finality by confirmations, a reorg made with
//! evm_snapshot/evm_revert, a watcher restart, a dead and a lying RPC endpoint. Also the
//! real BSC BUSD `eth_getLogs` response decoded.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::{address, Address, U256};
use alloy::providers::{Provider, RootProvider};
use alloy::rpc::types::Log;
use herald_pipeline::products::payments::credit::DepositToken;
use herald_pipeline::products::payments::follow::DepositEvent;
use herald_pipeline::products::payments::transfers;
use herald_pipeline::products::payments::wallet::{account_xpub, DepositWallet};
use herald_pipeline::products::payments::watcher::{Watcher, WatcherConfig};
use herald_testkit::{evm, evm::PAYER, LocalAnvil};

/// Herald's deposit wallet in these tests (the BIP-39 test vector phrase).
const DEPOSIT_MNEMONIC: &str = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about";

fn provider(url: &str) -> RootProvider {
    evm::provider(url).unwrap()
}

async fn deploy_token(p: &RootProvider) -> Address {
    evm::deploy_token(p).await.unwrap()
}

async fn pay(p: &RootProvider, token: Address, to: Address, amount: U256) -> u64 {
    evm::pay(p, token, to, amount).await.unwrap()
}

async fn mine(p: &RootProvider, blocks: u64) {
    evm::mine(p, blocks).await.unwrap()
}

fn config(rpc_url: String, token: Address) -> WatcherConfig {
    WatcherConfig {
        rpc_url,
        tokens: vec![token],
        finalized_tag: false,
        confirmations: 3,
        max_range: 100,
    }
}

/// A nats-server, an anvil node with the token deployed, the deposit wallet and the
/// address book.
struct Fixture {
    env: common::Env,
    anvil: LocalAnvil,
    p: RootProvider,
    token: Address,
    wallet: DepositWallet,
    kv: async_nats::jetstream::kv::Store,
}

impl Fixture {
    async fn start() -> Fixture {
        let env = common::Env::start().await;
        let anvil = LocalAnvil::start().unwrap();
        let p = provider(&anvil.url());
        let token = deploy_token(&p).await;
        let wallet = DepositWallet::from_xpub(&account_xpub(DEPOSIT_MNEMONIC).unwrap()).unwrap();
        let kv = env.js.get_key_value(herald_schemas::subjects::WALLET_BUCKET).await.unwrap();
        Fixture {
            env,
            anvil,
            p,
            token,
            wallet,
            kv,
        }
    }
}

fn kinds(events: &[DepositEvent]) -> Vec<(&'static str, String)> {
    events
        .iter()
        .map(|e| match e {
            DepositEvent::Seen(t) => ("seen", t.to.to_string()),
            DepositEvent::Final(t) => ("final", t.to.to_string()),
            DepositEvent::Orphaned(t) => ("orphaned", t.to.to_string()),
        })
        .collect()
}

#[test]
fn the_real_bsc_busd_logs_decode_to_the_expected_transfers() {
    let response: serde_json::Value = serde_json::from_str(include_str!(
        "fixtures/evm/bsc_mainnet_BUSD_eth_getLogs_block_0x1b13c84.response.json"
    ))
    .unwrap();
    let logs: Vec<Log> = serde_json::from_value(response["result"].clone()).unwrap();
    let decoded: Vec<_> = logs.iter().filter_map(|l| transfers::decode(l).unwrap()).collect();
    let expected: serde_json::Value = serde_json::from_str(include_str!(
        "fixtures/evm/bsc_mainnet_BUSD_eth_getLogs_block_0x1b13c84.decoded_transfers.json"
    ))
    .unwrap();
    let expected = expected["transfers"].as_array().unwrap();
    assert_eq!(
        (logs.len(), decoded.len()),
        (11, expected.len()),
        "9 transfers, 2 approvals skipped"
    );
    for (got, want) in decoded.iter().zip(expected) {
        assert_eq!(got.log_index, want["logIndex"].as_u64().unwrap());
        assert_eq!(format!("{:#x}", got.tx_hash), want["tx"].as_str().unwrap());
        assert_eq!(got.from.to_string().to_lowercase(), want["from"].as_str().unwrap());
        assert_eq!(got.to.to_string().to_lowercase(), want["to"].as_str().unwrap());
        assert_eq!(got.value.to_string(), want["value_wei"].as_str().unwrap());
        assert_eq!(
            (got.block_number, got.token),
            (0x1b13c84, address!("e9e7cea3dedca5984780bafc599bd69add087d56"))
        );
    }
}

#[tokio::test]
async fn deposits_go_final_once_and_a_reorged_transfer_never_does() {
    let anvil = LocalAnvil::start().unwrap();
    let p = provider(&anvil.url());
    let token = deploy_token(&p).await;
    let wallet = DepositWallet::from_xpub(&account_xpub(DEPOSIT_MNEMONIC).unwrap()).unwrap();
    let (alice, bob) = (wallet.address(0).unwrap(), wallet.address(1).unwrap());
    let start = p.get_block_number().await.unwrap() + 1;
    let mut watcher = Watcher::new(config(anvil.url(), token), start).unwrap();
    watcher.watch([(alice, 1), (bob, 2)]);

    let hundred = U256::from(100) * U256::from(10).pow(U256::from(18));
    pay(&p, token, alice, hundred).await;
    pay(&p, token, PAYER, hundred).await; // not a deposit address: ignored
    let events = watcher.step().await.unwrap();
    assert_eq!(kinds(&events), [("seen", alice.to_string())]);
    let DepositEvent::Seen(seen) = &events[0] else { unreachable!() };
    assert_eq!((seen.value, seen.token), (hundred, token), "exact base units");
    assert!(watcher.step().await.unwrap().is_empty(), "not final before 3 confirmations");
    mine(&p, 3).await;
    assert_eq!(kinds(&watcher.step().await.unwrap()), [("final", alice.to_string())]);

    // a reorg: bob's transfer is mined, seen, then its block is reverted away
    let snapshot: U256 = p.raw_request("evm_snapshot".into(), ()).await.unwrap();
    pay(&p, token, bob, U256::from(7)).await;
    assert_eq!(kinds(&watcher.step().await.unwrap()), [("seen", bob.to_string())]);
    let reverted: bool = p.raw_request("evm_revert".into(), (snapshot,)).await.unwrap();
    assert!(reverted);
    mine(&p, 5).await; // the new chain grows past bob's old block, without it
    assert_eq!(kinds(&watcher.step().await.unwrap()), [("orphaned", bob.to_string())]);
    mine(&p, 5).await;
    assert!(watcher.step().await.unwrap().is_empty(), "the rescan finds nothing to credit");

    // a restart from the persisted resume point sees nothing again
    let mut restarted = Watcher::new(config(anvil.url(), token), watcher.follower.resume_point()).unwrap();
    restarted.watch([(alice, 1), (bob, 2)]);
    assert!(restarted.step().await.unwrap().is_empty());
    // and goes on: a new deposit after the restart is found
    pay(&p, token, bob, U256::from(9)).await;
    mine(&p, 3).await;
    assert_eq!(
        kinds(&restarted.step().await.unwrap()),
        [("seen", bob.to_string()), ("final", bob.to_string())]
    );
}

#[tokio::test]
async fn a_dead_or_lying_rpc_endpoint_is_a_clear_error_and_the_watcher_recovers() {
    let anvil = LocalAnvil::start().unwrap();
    let p = provider(&anvil.url());
    let token = deploy_token(&p).await;

    let dead = format!("http://127.0.0.1:{}", herald_testkit::free_port());
    let err = Watcher::new(config(dead, token), 0).unwrap().step().await.unwrap_err();
    assert!(format!("{err:#}").contains("eth_blockNumber"), "{err:#}");

    // a proxy that answers the first two requests with garbage, then forwards to anvil
    let upstream = anvil.url();
    let served = Arc::new(AtomicUsize::new(0));
    let app = axum::Router::new().route(
        "/",
        axum::routing::post(move |body: String| {
            let (upstream, served) = (upstream.clone(), served.clone());
            async move {
                if served.fetch_add(1, Ordering::SeqCst) < 2 {
                    return r#"{"jsonrpc":"2.0","id":0,"result":{"not":"a block number"}}"#.to_string();
                }
                let client = reqwest::Client::new();
                let resp = client
                    .post(upstream)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                resp.text().await.unwrap()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let wallet = DepositWallet::from_xpub(&account_xpub(DEPOSIT_MNEMONIC).unwrap()).unwrap();
    let alice = wallet.address(0).unwrap();
    let mut watcher = Watcher::new(config(proxy, token), 0).unwrap();
    watcher.watch([(alice, 1)]);
    pay(&p, token, alice, U256::from(5)).await;
    for _ in 0..2 {
        let err = watcher.step().await.unwrap_err();
        assert!(format!("{err:#}").contains("eth_blockNumber"), "{err:#}");
    }
    assert_eq!(kinds(&watcher.step().await.unwrap()), [("seen", alice.to_string())], "recovered");
}

#[tokio::test]
async fn the_running_watcher_publishes_each_stage_once_and_resumes_where_it_stopped() {
    use herald_pipeline::products::payments::addresses::assign;
    use herald_pipeline::products::payments::watcher::{run, stored_resume_point};
    use herald_schemas::{subjects, Deposit, DepositStage};
    let Fixture {
        env,
        anvil,
        p,
        token,
        wallet,
        kv,
    } = Fixture::start().await;
    // alice asked for her address before the watcher started; bob asks while it runs
    let alice = assign(&kv, &wallet, 1).await.unwrap().address;
    let start = p.get_block_number().await.unwrap() + 1;
    let spawn = |from: u64| {
        let w = Watcher::new(config(anvil.url(), token), from).unwrap();
        let stop = tokio_util::sync::CancellationToken::new();
        let task = tokio::spawn(run(
            w,
            wallet.clone(),
            "bsc".into(),
            env.js.clone(),
            Duration::from_millis(100),
            stop.clone(),
        ));
        (stop, task)
    };
    let (first, first_task) = spawn(start);
    let bob = assign(&kv, &wallet, 2).await.unwrap().address;
    pay(&p, token, alice, U256::from(1234)).await;
    mine(&p, 3).await;
    let got = env
        .messages(subjects::DEPOSITS_STREAM, "herald.deposits.>", 2, Duration::from_secs(10))
        .await;
    let got: Vec<Deposit> = got.iter().map(|m| herald_schemas::decode(&m.payload).unwrap()).collect();
    assert_eq!(
        got.iter().map(|d| d.stage).collect::<Vec<_>>(),
        [DepositStage::Seen, DepositStage::Final]
    );
    assert_eq!(
        (got[1].value.as_str(), got[1].to.as_str(), got[1].user_id),
        ("1234", alice.to_string().as_str(), 1)
    );
    pay(&p, token, bob, U256::from(5)).await;
    mine(&p, 3).await;
    let got = env
        .messages(subjects::DEPOSITS_STREAM, "herald.deposits.>", 4, Duration::from_secs(10))
        .await;
    let last: Deposit = herald_schemas::decode(&got[3].payload).unwrap();
    assert_eq!(
        (last.stage, last.user_id),
        (DepositStage::Final, 2),
        "an address assigned while running is watched"
    );
    first.cancel();
    assert_eq!(first_task.await.unwrap().unwrap(), 4, "seen and final, for each deposit");

    // a restart resumes past the final deposits: nothing is published again, by the
    // watcher's own count (the stream's duplicate window would hide a repeat)
    let resume = stored_resume_point(&env.js, "bsc").await.unwrap().expect("a stored cursor");
    assert!(resume > last.block_number);
    let (second, second_task) = spawn(resume);
    mine(&p, 4).await;
    let head = p.get_block_number().await.unwrap();
    // the cursor reaches the new head: the watcher has looked at every new block
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while stored_resume_point(&env.js, "bsc").await.unwrap().unwrap_or(0) <= head {
        assert!(tokio::time::Instant::now() < deadline, "the watcher did not reach block {head}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    second.cancel();
    assert_eq!(second_task.await.unwrap().unwrap(), 0, "nothing published again");
}

#[tokio::test]
async fn each_user_gets_their_own_index_once_even_under_concurrent_requests() {
    use herald_pipeline::products::payments::addresses::{all, assign};
    let env = common::Env::start().await;
    let kv = env.js.get_key_value(herald_schemas::subjects::WALLET_BUCKET).await.unwrap();
    let wallet = DepositWallet::from_xpub(&account_xpub(DEPOSIT_MNEMONIC).unwrap()).unwrap();
    // 20 users, each asking three times at once
    let requests = (0..60).map(|i| {
        let (kv, wallet) = (kv.clone(), wallet.clone());
        async move { (i % 20, assign(&kv, &wallet, 1000 + i % 20).await.unwrap()) }
    });
    let got = futures::future::join_all(requests).await;
    let mut per_user = std::collections::HashMap::new();
    for (user, a) in &got {
        assert_eq!(a.address, wallet.address(a.index).unwrap());
        let first = per_user.entry(*user).or_insert(*a);
        assert_eq!(
            (first.index, first.address),
            (a.index, a.address),
            "a user always gets the same address"
        );
    }
    // each user's address was assigned by exactly one of their three requests
    for user in 0..20 {
        let fresh = got.iter().filter(|(u, a)| *u == user && a.fresh).count();
        assert_eq!(fresh, 1, "user {user}: {fresh} requests assigned an address");
    }
    let mut indexes: Vec<u32> = per_user.values().map(|a| a.index).collect();
    indexes.sort();
    indexes.dedup();
    assert_eq!(indexes.len(), 20, "no two users share an index");
    let owners = all(&kv).await.unwrap();
    for (user, a) in &per_user {
        assert!(owners.contains(&(a.index, 1000 + *user)), "index {} maps back to its user", a.index);
    }
}

#[tokio::test]
async fn a_final_deposit_is_credited_once_and_its_user_told_at_each_stage() {
    use herald_pipeline::core::ledger::Ledger;
    use herald_pipeline::products::payments::credit::CreditStage;
    use herald_pipeline::products::payments::watcher::run;
    use herald_schemas::{subjects, OutboundMessage};
    let Fixture {
        env,
        anvil,
        p,
        token,
        wallet,
        kv,
    } = Fixture::start().await;
    let alice = herald_pipeline::products::payments::addresses::assign(&kv, &wallet, 42)
        .await
        .unwrap()
        .address;
    let ledger = Ledger::open(env.js.clone()).await.unwrap();
    let stage = CreditStage {
        ledger: ledger.clone(),
        tokens: DepositToken::only(token, evm::BUSD),
        min_deposit: U256::from(10).pow(U256::from(18)), // 1 USD
    };
    env.spawn(stage, subjects::DEPOSITS_STREAM, "herald.deposits.>");
    let from = p.get_block_number().await.unwrap() + 1;
    let w = Watcher::new(config(anvil.url(), token), from).unwrap();
    tokio::spawn(run(
        w,
        wallet,
        "bsc".into(),
        env.js.clone(),
        Duration::from_millis(100),
        env.shutdown.clone(),
    ));

    let one_busd = U256::from(10).pow(U256::from(18));
    pay(&p, token, alice, U256::from(150) * one_busd).await;
    pay(&p, token, alice, one_busd / U256::from(2)).await; // 0.50: below the minimum
    mine(&p, 3).await;
    let msgs = env
        .messages(subjects::OUTBOUND_STREAM, &subjects::notify(42), 4, Duration::from_secs(15))
        .await;
    let texts: Vec<String> = msgs
        .iter()
        .map(|m| {
            herald_schemas::decode::<OutboundMessage>(&m.payload)
                .unwrap()
                .text()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    assert!(texts[0].contains("150.00 BUSD") && texts[0].contains("seen"), "{texts:#?}");
    assert!(
        texts.iter().any(|t| t.contains("150.00 BUSD</b> credited. Balance: <b>150.00 USD")),
        "{texts:#?}"
    );
    assert!(texts.iter().any(|t| t.contains("0.50 BUSD</b> is below the minimum")), "{texts:#?}");
    assert_eq!(ledger.balance(42).await.unwrap().0, U256::from(150) * one_busd);

    // every deposit event delivered again: nothing is credited twice, by the ledger's
    // own count of entries written (its stream's duplicate window would hide a repeat;
    // the stage's messages are republished under the same keys, by design)
    env.drained(subjects::DEPOSITS_STREAM, "credit").await;
    let entries = ledger_entries_written();
    let seen = common::stage_metric("herald_stage_in_total", "credit");
    let sel = herald_pipeline::ops::replay::Selection {
        stream: subjects::DEPOSITS_STREAM.into(),
        ..Default::default()
    };
    let target = herald_pipeline::ops::replay::Target::Original;
    herald_pipeline::ops::replay::replay(&env.js, &sel, &target, &Default::default())
        .await
        .unwrap();
    env.drained(subjects::DEPOSITS_STREAM, "credit").await;
    assert!(
        common::stage_metric("herald_stage_in_total", "credit") >= seen + 4.0,
        "the replay reached the stage"
    );
    assert_eq!(ledger_entries_written(), entries, "no ledger entry written again");
    assert_eq!(ledger.balance(42).await.unwrap().0, U256::from(150) * one_busd, "credited once");
    assert_eq!(ledger.history(42, 10).await.unwrap().len(), 1);

    // the admin's reconciliation: two final deposits on chain, one credited, one not
    let payments = herald_pipeline::products::payments::Payments {
        wallet: DepositWallet::from_xpub(&account_xpub(DEPOSIT_MNEMONIC).unwrap()).unwrap(),
        addresses: kv.clone(),
        ledger,
        tokens: vec![("BUSD".into(), token)],
        tiers: Vec::new(),
        coupons: env.js.get_key_value(subjects::COUPONS_BUCKET).await.unwrap(),
        withdraw: None,
        gateway: None,
    };
    let users = env.js.get_key_value(subjects::USERS_BUCKET).await.unwrap();
    let access = env.js.get_key_value(subjects::ACCESS_BUCKET).await.unwrap();
    let (report, _, _) = herald_pipeline::products::payments::admin::answer(&payments, &users, &access, "reconcile", 1)
        .await
        .unwrap();
    assert!(
        report.text.contains("final deposits on chain: 2\ncredited: 1\nnot credited: 1")
            && report.text.contains("credits without a deposit: 0"),
        "{}",
        report.text
    );
}

/// Public BSC endpoints are HTTPS: the watcher must speak TLS to them. A server that
/// answers in plain text breaks the handshake, which only a TLS client notices.
#[tokio::test]
async fn an_https_endpoint_is_spoken_to_over_tls() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            use tokio::io::AsyncWriteExt;
            let _ = conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}").await;
        }
    });
    let err = Watcher::new(config(url, Address::ZERO), 0).unwrap().head().await.unwrap_err();
    let err = format!("{err:#}");
    assert!(
        err.contains("received corrupt message"),
        "a TLS client rejects the plain-text answer: {err}"
    );
}

/// The other half of the wallet: alloy's signer derives the same addresses from the
/// mnemonic as the pipeline does from the xpub, and its key moves a deposit out.
#[tokio::test]
async fn deposits_can_be_moved_out_with_the_key_alloy_derives_from_the_mnemonic() {
    use alloy::network::EthereumWallet;
    use alloy::providers::ProviderBuilder;
    use alloy::signers::local::{coins_bip39::English, MnemonicBuilder};
    use alloy::sol_types::SolCall;
    alloy::sol! { function transfer(address to, uint256 amount) returns (bool); }

    let wallet = DepositWallet::from_xpub(&account_xpub(DEPOSIT_MNEMONIC).unwrap()).unwrap();
    let signer = |i: u32| {
        MnemonicBuilder::<English>::default()
            .phrase(DEPOSIT_MNEMONIC)
            .index(i)
            .unwrap()
            .build()
            .unwrap()
    };
    for i in [0, 1, 7, 1000] {
        assert_eq!(signer(i).address(), wallet.address(i).unwrap(), "index {i}");
    }

    let anvil = LocalAnvil::start().unwrap();
    let p = provider(&anvil.url());
    let token = deploy_token(&p).await;
    let deposit = wallet.address(7).unwrap();
    pay(&p, token, deposit, U256::from(500)).await;
    // gas for the deposit address, as a sweeper tops it up first
    let _: serde_json::Value = p
        .raw_request("anvil_setBalance".into(), (deposit, U256::from(10).pow(U256::from(18))))
        .await
        .unwrap();
    let treasury = address!("000000000000000000000000000000000000dEaD");
    let sweeper = ProviderBuilder::new()
        .wallet(EthereumWallet::from(signer(7)))
        .connect_http(anvil.url().parse().unwrap());
    let tx = alloy::rpc::types::TransactionRequest::default().to(token).input(
        transferCall {
            to: treasury,
            amount: U256::from(500),
        }
        .abi_encode()
        .into(),
    );
    let receipt = sweeper.send_transaction(tx).await.unwrap().get_receipt().await.unwrap();
    assert!(receipt.status(), "the deposit address's own key signed the transfer");
    let moved = receipt
        .inner
        .logs()
        .iter()
        .filter_map(|l| transfers::decode(l).unwrap())
        .find(|t| t.from == deposit);
    assert_eq!(moved.map(|t| (t.to, t.value)), Some((treasury, U256::from(500))));
}

/// `pipeline payments sweep`: every deposit moves to the treasury, gas topped up from the
/// gas wallet; a dry run moves nothing; a second sweep finds nothing left.
#[tokio::test]
async fn a_sweep_moves_every_deposit_to_the_treasury_once() {
    use herald_pipeline::products::payments::addresses::assign;
    use herald_pipeline::products::payments::sweep::{gas_address, sweep_assigned, SweepConfig};
    let Fixture {
        env: _nats,
        anvil,
        p,
        token,
        wallet,
        kv,
    } = Fixture::start().await;
    // three users have addresses; the second never paid
    let a = assign(&kv, &wallet, 11).await.unwrap().address;
    assign(&kv, &wallet, 12).await.unwrap();
    let b = assign(&kv, &wallet, 13).await.unwrap().address;
    pay(&p, token, a, U256::from(700)).await;
    pay(&p, token, b, U256::from(300)).await;
    let gas = gas_address(DEPOSIT_MNEMONIC).unwrap();
    assert!(![a, b].contains(&gas), "the gas wallet is never a deposit address");
    let fund = alloy::rpc::types::TransactionRequest::default()
        .from(PAYER)
        .to(gas)
        .value(U256::from(10).pow(U256::from(18)));
    p.send_transaction(fund).await.unwrap().get_receipt().await.unwrap();

    let treasury = address!("000000000000000000000000000000000000bEEF");
    let mut cfg = SweepConfig {
        rpc_url: anvil.url(),
        treasury,
        tokens: DepositToken::only(token, evm::BUSD).into_iter().collect(),
        dry_run: true,
    };
    let (looked_at, planned) = sweep_assigned(&kv, DEPOSIT_MNEMONIC, &cfg).await.unwrap();
    let plan: Vec<(Address, U256)> = planned.iter().map(|s| (s.address, s.amount)).collect();
    assert_eq!(looked_at, 3);
    assert_eq!(
        plan,
        [(a, U256::from(700)), (b, U256::from(300))],
        "the second address holds nothing"
    );
    assert!(planned.iter().all(|s| s.tx.is_none()));

    cfg.dry_run = false;
    let (_, done) = sweep_assigned(&kv, DEPOSIT_MNEMONIC, &cfg).await.unwrap();
    assert_eq!(done.len(), 2);
    assert!(done.iter().all(|s| s.tx.is_some()));
    let balance = |who: Address| {
        let p = p.clone();
        async move {
            alloy::sol! { function balanceOf(address owner) returns (uint256); }
            use alloy::sol_types::SolCall;
            let call = alloy::rpc::types::TransactionRequest::default()
                .to(token)
                .input(balanceOfCall { owner: who }.abi_encode().into());
            balanceOfCall::abi_decode_returns(&p.call(call).await.unwrap()).unwrap()
        }
    };
    assert_eq!(balance(treasury).await, U256::from(1000));
    assert_eq!((balance(a).await, balance(b).await), (U256::ZERO, U256::ZERO));
    assert!(
        sweep_assigned(&kv, DEPOSIT_MNEMONIC, &cfg).await.unwrap().1.is_empty(),
        "nothing left"
    );
}

/// Entries the ledger has written in this process (its own counter).
fn ledger_entries_written() -> f64 {
    herald_runtime::metric::sum_in(
        &herald_runtime::telemetry::install_metrics().render(),
        "herald_ledger_entries_total",
        &[],
    )
}
