//! Tickets straight from a deposit, through the whole stack on anvil (emulator, bot,
//! pipeline, the drand relay stand-in): a `/buy` the balance cannot pay answers with
//! the amount missing and the deposit address; the deposit, once final, buys the
//! tickets by itself (debited once, one purchase in the journal, one receipt); a deposit
//! that becomes final after its round's sale closed buys nothing, stays in the balance,
//! and the user is told. Needs `cargo build --workspace --bins`.

use std::time::Duration;

use alloy::primitives::U256;
use herald_draw::testchain::TestChain;
use herald_loadtest::demo::payments::{deposit_address, DemoChain};
use herald_loadtest::drand::Relay;
use herald_loadtest::stack::{private_text, Stack, StackOptions};
use herald_schemas::{subjects, LedgerEntry, LotteryEntry, LotteryStep};
use herald_testkit::evm;

const ALICE: i64 = 301;
const BOB: i64 = 302;

async fn wait_text(stack: &Stack, chat: i64, needle: &str) -> String {
    let d = stack
        .wait_for_deliveries(Duration::from_secs(40), |d| {
            d.iter().any(|x| x.chat_id == chat && x.text.contains(needle))
        })
        .await
        .unwrap_or_else(|e| panic!("chat {chat} waiting for {needle:?}: {e}"));
    d.into_iter()
        .rev()
        .find(|x| x.chat_id == chat && x.text.contains(needle))
        .unwrap()
        .text
}

async fn ledger(stack: &Stack, user: i64) -> Vec<LedgerEntry> {
    let js = stack.jetstream().await.unwrap();
    herald_runtime::reader::read(&js, subjects::LEDGER_STREAM, &subjects::ledger(user))
        .await
        .unwrap()
        .iter()
        .map(|m| herald_schemas::decode(&m.payload).unwrap())
        .collect()
}

async fn journal(stack: &Stack, round: u64) -> Vec<LotteryStep> {
    let js = stack.jetstream().await.unwrap();
    herald_runtime::reader::read(&js, subjects::LOTTERY_STREAM, &subjects::lottery_round(round))
        .await
        .unwrap()
        .iter()
        .map(|m| herald_schemas::decode::<LotteryEntry>(&m.payload).unwrap().step)
        .collect()
}

/// The round on sale (`current` in herald_lottery).
async fn current_round(stack: &Stack) -> u64 {
    let js = stack.jetstream().await.unwrap();
    let kv = js.get_key_value(subjects::LOTTERY_BUCKET).await.unwrap();
    kv.get("current")
        .await
        .unwrap()
        .map(|v| String::from_utf8_lossy(&v).parse().unwrap())
        .unwrap_or(0)
}

/// The round number after `marker` in `text`.
fn number_after(text: &str, marker: &str) -> u64 {
    let at = text.find(marker).unwrap_or_else(|| panic!("no {marker:?} in {text}")) + marker.len();
    text[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_buy_stands_until_a_deposit_buys_it_or_its_round_closes() {
    let chain = DemoChain::start().await.unwrap();
    let now = herald_schemas::now_ms() / 1000;
    let relay = Relay::start(
        "127.0.0.1:0".parse().unwrap(),
        TestChain::new(*b"herald-lottery-orders-test-chain", now - 600, 1),
    )
    .await
    .unwrap();
    let mut args = chain.pipeline_args();
    args.extend(relay.lottery_args("30s", "2s", &[relay.url()]));
    args.extend(["--lottery-tick", "250ms", "--products", "payments,lottery"].map(String::from));
    let stack = Stack::start(StackOptions {
        pipeline_args: args,
        ..Default::default()
    })
    .await
    .unwrap();
    let rpc = evm::provider(&chain.anvil.url()).unwrap();
    for user in [ALICE, BOB] {
        stack.emulator.push_update(private_text(user, "/start"));
        wait_text(&stack, user, "").await;
    }
    // a fresh round: the test's steps fit well inside its 30 s
    let first = loop {
        let r = current_round(&stack).await;
        if r > 0 {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    while current_round(&stack).await == first {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Alice: short by the whole price; told how much and where
    stack.emulator.push_update(private_text(ALICE, "/buy 2"));
    let short = wait_text(&stack, ALICE, "more</b> to your address").await;
    let round = number_after(&short, "if round ");
    assert!(short.contains("Deposit 2.00 USD more"), "{short}");
    let address = deposit_address(&wait_text(&stack, ALICE, "Your deposit address").await).unwrap();
    evm::pay(
        &rpc,
        chain.token,
        address,
        U256::from(2u64) * U256::from(10u64).pow(U256::from(18u64)),
    )
    .await
    .unwrap();
    wait_text(&stack, ALICE, "Deposit of").await;
    evm::mine(&rpc, 3).await.unwrap();
    let bought = wait_text(&stack, ALICE, "standing order is bought").await;
    assert!(
        bought.contains("Receipt") && bought.contains(&format!("in round {round}")),
        "{bought}"
    );

    // Bob: short, pays, but his deposit is final only after the sale closed
    stack.emulator.push_update(private_text(BOB, "/buy 1"));
    wait_text(&stack, BOB, "more</b> to your address").await;
    let address = deposit_address(&wait_text(&stack, BOB, "Your deposit address").await).unwrap();
    evm::pay(&rpc, chain.token, address, U256::from(10u64).pow(U256::from(18u64)))
        .await
        .unwrap();
    wait_text(&stack, BOB, "Deposit of").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !journal(&stack, round).await.iter().any(|s| matches!(s, LotteryStep::Closed { .. })) {
        assert!(tokio::time::Instant::now() < deadline, "round {round} did not close");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    evm::mine(&rpc, 3).await.unwrap();
    let lapsed = wait_text(&stack, BOB, "lapsed").await;
    assert!(
        lapsed.contains(&format!("in round {round} lapsed (its round's sale closed")),
        "{lapsed}"
    );
    let _ = stack.wait_quiet(Duration::from_millis(500), Duration::from_secs(5)).await;

    // the ledger and the journal: Alice debited once, one purchase; Bob untouched
    let alice = ledger(&stack, ALICE).await;
    let debits: Vec<_> = alice.iter().filter(|e| e.reference.starts_with("lottery:buy:")).collect();
    assert_eq!(debits.len(), 1, "{alice:?}");
    let purchases: Vec<_> = journal(&stack, round)
        .await
        .into_iter()
        .filter(|s| matches!(s, LotteryStep::Purchase { user_id, .. } if *user_id == ALICE))
        .collect();
    assert_eq!(purchases.len(), 1);
    let bob = ledger(&stack, BOB).await;
    assert!(bob.iter().all(|e| !e.reference.starts_with("lottery:")), "{bob:?}");
    assert_eq!(
        bob.last().unwrap().balance,
        U256::from(10u64).pow(U256::from(18u64)).to_string(),
        "Bob's deposit stays in his balance"
    );
    let receipts = stack
        .emulator
        .deliveries()
        .iter()
        .filter(|d| d.chat_id == ALICE && d.text.contains("Receipt"))
        .count();
    assert_eq!(receipts, 1, "one receipt");
}
