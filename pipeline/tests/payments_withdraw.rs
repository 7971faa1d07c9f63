//! `/withdraw` from the user's side, through the router and the payments inbox against a
//! real nats-server: addresses checked, amounts checked against the minimum and the
//! balance, the confirmation's fee and net, the hold made once however often the
//! update or the button comes, the approved withdrawal handed to the signer once (its
//! message id), the daily caps, an admin's approval and rejection (refunded), an
//! expired confirmation, and 20 confirmations racing for one balance that never
//! overdraw. Every test checks the ledger's invariant on its entries.

mod common;

use alloy::primitives::{Address, U256};
use common::Desk;
use herald_pipeline::core::ledger::money::parse_usd;
use herald_pipeline::products::payments::withdraw::{self, PayoutToken, Request, Rules, State};
use herald_schemas::{subjects, LedgerEntry, LedgerKind, Withdrawal};

const USER: i64 = 77;
const ADMIN: i64 = 1;
/// EIP-55's first example address: a wallet that is not ours.
const WALLET: &str = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";

fn usd(s: &str) -> U256 {
    parse_usd(s).unwrap()
}

/// Fee 1, minimum 10, 200 a day per user, 1,000 a day in all, approval above 100.
fn rules() -> Rules {
    Rules {
        fee: usd("1"),
        min: usd("10"),
        user_daily: usd("200"),
        wallet_daily: usd("1000"),
        approval_above: usd("100"),
        token: PayoutToken {
            symbol: "BUSD".into(),
            contract: Address::repeat_byte(1), // the Desk's accepted BUSD
            decimals: 18,
        },
        chain: "bsc".into(),
    }
}

use common::{message, press};

/// What one update made: the texts (reply first) and the withdrawals for the signer
/// with their message ids.
struct Made {
    texts: Vec<String>,
    buttons: Vec<String>,
    for_signer: Vec<(String, Withdrawal)>,
}

async fn send(desk: &Desk, update: Vec<u8>) -> Made {
    let mut made = Made {
        texts: Vec::new(),
        buttons: Vec::new(),
        for_signer: Vec::new(),
    };
    for o in desk.run_raw(update, true).await {
        if o.subject == subjects::withdrawal_approved("bsc") {
            made.for_signer
                .push((o.msg_id.clone(), herald_schemas::decode(&o.payload).unwrap()));
            continue;
        }
        let m: herald_schemas::OutboundMessage = herald_schemas::decode(&o.payload).unwrap();
        made.texts.push(m.text().unwrap_or_default().to_string());
        let json = serde_json::to_value(&m.content).unwrap();
        for row in json["buttons"].as_array().into_iter().flatten() {
            for b in row.as_array().into_iter().flatten() {
                made.buttons.push(b["callback_data"].as_str().unwrap_or_default().to_string());
            }
        }
    }
    made
}

async fn entries(desk: &Desk, user: i64) -> Vec<LedgerEntry> {
    herald_runtime::reader::read(desk.ledger.context(), subjects::LEDGER_STREAM, &format!("herald.ledger.{user}"))
        .await
        .unwrap()
        .iter()
        .map(|m| herald_schemas::decode(&m.payload).unwrap())
        .collect()
}

/// The ledger's invariant over a user's entries, entry by entry: balance + held =
/// credits − debits − settled, neither below zero. Returns (balance, held).
async fn invariant(desk: &Desk, user: i64) -> (U256, U256) {
    let (mut credits, mut debits, mut settled) = (U256::ZERO, U256::ZERO, U256::ZERO);
    let (mut balance, mut held) = (U256::ZERO, U256::ZERO);
    for e in entries(desk, user).await {
        let amount: U256 = e.amount.parse().unwrap();
        match e.kind {
            LedgerKind::Credit => credits += amount,
            LedgerKind::Debit => debits += amount,
            LedgerKind::Settle => settled += amount,
            LedgerKind::Hold | LedgerKind::Release => {}
        }
        balance = e.balance.parse().unwrap();
        held = e.held.parse().unwrap();
        assert_eq!(balance + held, credits - debits - settled, "invariant broken at {e:?}");
    }
    (balance, held)
}

async fn request(desk: &Desk, id: &str) -> Request {
    let store = desk.payments.payments.withdraw.as_ref().unwrap().store.clone();
    serde_json::from_slice(&store.get(format!("req.{id}")).await.unwrap().unwrap()).unwrap()
}

async fn started(desk: &Desk, user: i64, balance: &str) {
    send(desk, message(user, user * 1000, "/start")).await;
    desk.ledger
        .credit(user, usd(balance), &format!("deposit:{user}"), "deposit")
        .await
        .unwrap();
}

#[tokio::test]
async fn a_withdrawal_is_checked_confirmed_held_once_and_handed_to_the_signer_once() {
    let env = common::Env::start().await;
    let desk = Desk::open_with(&env, vec![ADMIN], Some(rules())).await;
    started(&desk, USER, "100").await;

    let menu = send(&desk, message(USER, 1, "/withdraw")).await;
    assert!(
        menu.texts[0].contains("Balance: 100.00 USD")
            && menu.texts[0].contains("Fee: 1.00 USD")
            && menu.texts[0].contains("left today: 100.00 USD"),
        "{}",
        menu.texts[0]
    );
    assert!(menu.buttons.is_empty(), "no address used yet, so no amount buttons");

    // bad destinations and amounts: refused with the reason, nothing stored or held
    let own = send(&desk, message(USER, 2, "/deposit")).await.texts[0].clone();
    let own = own.split("<code>").nth(1).unwrap().split("</code>").next().unwrap().to_string();
    let cases = [
        ("/withdraw 20 0x0000000000000000000000000000000000000000", "zero address"),
        ("/withdraw 20 0x0101010101010101010101010101010101010101", "BUSD token's contract"),
        (&format!("/withdraw 20 {own}") as &str, "your own deposit address"),
        ("/withdraw 20 0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD", "checksum"),
        ("/withdraw 20 <b>0x5a</b>", "not a BEP-20 address"),
        (
            "/withdraw 5 0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
            "smallest withdrawal is 10.00 USD",
        ),
        ("/withdraw 150 0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "balance is 100.00 USD"),
        ("/withdraw ten 0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "ten is not an amount"),
        ("/withdraw 20", "/withdraw AMOUNT ADDRESS"),
    ];
    for (i, (text, expected)) in cases.iter().enumerate() {
        let made = send(&desk, message(USER, 10 + i as i64, text)).await;
        assert!(made.texts[0].contains(expected), "{text}: {}", made.texts[0]);
        assert!(made.buttons.is_empty() && made.for_signer.is_empty(), "{text}: nothing to confirm");
    }
    assert!(!made_text_has_markup(
        &send(&desk, message(USER, 30, "/withdraw <i>1</i> x")).await.texts[0]
    ));
    assert_eq!(invariant(&desk, USER).await, (usd("100"), U256::ZERO), "nothing held by a refusal");

    // a good one: the confirmation shows the fee and the net; its redelivery is the same
    let ask = send(&desk, message(USER, 40, &format!("/withdraw 30 {}", WALLET.to_lowercase()))).await;
    assert!(
        ask.texts[0].contains("Amount: 30.00 USD")
            && ask.texts[0].contains("Fee: 1.00 USD")
            && ask.texts[0].contains("You receive: 29.00 BUSD")
            && ask.texts[0].contains(WALLET),
        "{}",
        ask.texts[0]
    );
    let id = format!("wd-{USER}-40");
    assert_eq!(ask.buttons, [format!("wd:ok:{id}"), format!("wd:no:{id}")]);
    assert_eq!(
        send(&desk, message(USER, 40, &format!("/withdraw 30 {WALLET}"))).await.texts,
        ask.texts
    );
    assert_eq!(invariant(&desk, USER).await, (usd("100"), U256::ZERO), "asking holds nothing");

    // confirmed: held, handed to the signer with the net in base units
    let ok = send(&desk, press(USER, 41, &format!("wd:ok:{id}"))).await;
    assert!(ok.texts[0].contains("approved"), "{}", ok.texts[0]);
    let [(msg_id, w)] = &ok.for_signer[..] else {
        panic!("one withdrawal for the signer: {:?}", ok.for_signer.len())
    };
    assert_eq!(msg_id, &format!("approved:{id}"));
    assert_eq!(
        (w.amount.as_str(), w.to.as_str(), w.hold.as_str()),
        ("29000000000000000000", WALLET, format!("withdraw:{id}").as_str())
    );
    assert_eq!(w.token, format!("{:#x}", Address::repeat_byte(1)));
    assert_eq!(invariant(&desk, USER).await, (usd("70"), usd("30")));

    // a double tap, the same update redelivered, a late cancel: nothing moves twice,
    // and what goes to the signer carries the same message id
    for (update, data) in [
        (42, format!("wd:ok:{id}")),
        (41, format!("wd:ok:{id}")),
        (43, format!("wd:no:{id}")),
    ] {
        let again = send(&desk, press(USER, update, &data)).await;
        assert!(again.texts[0].contains("approved"), "{}", again.texts[0]);
        assert!(again.for_signer.iter().all(|(m, _)| m == msg_id));
    }
    assert_eq!(invariant(&desk, USER).await, (usd("70"), usd("30")));
    let holds = entries(&desk, USER).await.iter().filter(|e| e.kind == LedgerKind::Hold).count();
    assert_eq!(holds, 1, "one hold");
    assert_eq!(request(&desk, &id).await.state, State::Approved);

    // someone else's button does nothing
    started(&desk, 78, "50").await;
    let stranger = send(&desk, press(78, 44, &format!("wd:no:{id}"))).await;
    assert!(stranger.texts[0].contains("No such withdrawal"), "{}", stranger.texts[0]);

    // now /withdraw offers amounts to the address used
    let menu = send(&desk, message(USER, 45, "/withdraw")).await;
    assert_eq!(
        menu.buttons,
        [
            format!("wd:amt:10 {WALLET}"),
            format!("wd:amt:35 {WALLET}"),
            format!("wd:amt:70 {WALLET}")
        ]
    );
    let by_button = send(&desk, press(USER, 46, &menu.buttons[0])).await;
    assert!(by_button.texts[0].contains("You receive: 9.00 BUSD"), "{}", by_button.texts[0]);
    let cancelled = send(&desk, press(USER, 47, &format!("wd:no:wd-{USER}-46"))).await;
    assert!(cancelled.texts[0].contains("cancelled"), "{}", cancelled.texts[0]);
    assert!(
        send(&desk, press(USER, 48, &format!("wd:ok:wd-{USER}-46")))
            .await
            .for_signer
            .is_empty(),
        "a cancelled request is not sent"
    );
    assert_eq!(invariant(&desk, USER).await, (usd("70"), usd("30")));
}

/// Whether text that reaches a user carries the user's `<i>` as markup.
fn made_text_has_markup(text: &str) -> bool {
    text.contains("<i>")
}

#[tokio::test]
async fn large_withdrawals_wait_for_an_admin_who_approves_or_rejects_and_a_rejection_refunds() {
    let env = common::Env::start().await;
    let mut r = rules();
    r.user_daily = usd("300");
    let desk = Desk::open_with(&env, vec![ADMIN], Some(r)).await;
    started(&desk, USER, "500").await;
    send(&desk, message(ADMIN, 1, "/start")).await;

    send(&desk, message(USER, 10, &format!("/withdraw 150 {WALLET}"))).await;
    let waiting = send(&desk, press(USER, 11, &format!("wd:ok:wd-{USER}-10"))).await;
    assert!(waiting.texts[0].contains("waits for an admin"), "{}", waiting.texts[0]);
    assert!(waiting.for_signer.is_empty(), "not sent before approval");
    assert!(
        waiting.texts[1].contains("150.00 USD from user 77"),
        "the admin is told: {:?}",
        waiting.texts
    );
    assert_eq!(waiting.buttons, [format!("wd:yes:wd-{USER}-10"), format!("wd:rej:wd-{USER}-10")]);
    send(&desk, message(USER, 12, &format!("/withdraw 120 {WALLET}"))).await;
    send(&desk, press(USER, 13, &format!("wd:ok:wd-{USER}-12"))).await;
    assert_eq!(invariant(&desk, USER).await, (usd("230"), usd("270")));

    let list = send(&desk, message(ADMIN, 14, "/admin withdrawals")).await;
    assert!(
        list.texts[0].contains("Waiting for approval</b> (2)") && list.texts[0].contains("wd-77-10") && list.texts[0].contains("wd-77-12"),
        "{}",
        list.texts[0]
    );
    // the user cannot approve their own
    let own = send(&desk, press(USER, 15, &format!("wd:yes:wd-{USER}-10"))).await;
    assert!(
        own.texts[0].contains("not for you") && own.for_signer.is_empty(),
        "{}",
        own.texts[0]
    );

    // approved by button: to the signer, the user told; twice changes nothing
    for update in [16, 16, 17] {
        let approved = send(&desk, press(ADMIN, update, &format!("wd:yes:wd-{USER}-10"))).await;
        assert_eq!(approved.for_signer.len(), 1, "{:?}", approved.texts);
        assert_eq!(approved.for_signer[0].0, format!("approved:wd-{USER}-10"));
        assert!(
            approved.texts.iter().any(|t| t.contains("approved; it is being sent")),
            "{:?}",
            approved.texts
        );
    }

    // rejected with a reason: released (refunded), the user told why, once
    let hostile = "<b>no</b> & sanctions";
    for update in [18, 18] {
        let rejected = send(&desk, message(ADMIN, update, &format!("/admin reject wd-{USER}-12 {hostile}"))).await;
        assert!(rejected.texts[0].contains("refunded to user 77"), "{:?}", rejected.texts);
        assert!(
            rejected.texts[1].contains("&lt;b&gt;no&lt;/b&gt; &amp; sanctions"),
            "the reason as text: {}",
            rejected.texts[1]
        );
    }
    assert_eq!(invariant(&desk, USER).await, (usd("350"), usd("150")));
    let releases = entries(&desk, USER).await.iter().filter(|e| e.kind == LedgerKind::Release).count();
    assert_eq!(releases, 1);
    // a rejection gives the day's cap back: 150 counted, 150 left of 300
    let left = send(&desk, message(USER, 19, "/withdraw")).await;
    assert!(left.texts[0].contains("left today: 150.00 USD"), "{}", left.texts[0]);
    // an approved one cannot be rejected any more
    let late = send(&desk, message(ADMIN, 20, &format!("/admin reject wd-{USER}-10 late"))).await;
    assert!(late.texts[0].contains("not waiting"), "{}", late.texts[0]);
    assert_eq!(invariant(&desk, USER).await, (usd("350"), usd("150")));
}

#[tokio::test]
async fn daily_caps_and_expired_confirmations_refuse_and_hold_nothing() {
    let env = common::Env::start().await;
    let desk = Desk::open_with(&env, vec![ADMIN], Some(rules())).await;
    started(&desk, USER, "1000").await;

    // the user's cap: 90 + 90 fit in 200, a third 90 does not
    for (n, expect) in [(10, "approved"), (12, "approved"), (14, "daily limit of 200.00 USD")] {
        send(&desk, message(USER, n, &format!("/withdraw 90 {WALLET}"))).await;
        let made = send(&desk, press(USER, n + 1, &format!("wd:ok:wd-{USER}-{n}"))).await;
        assert!(made.texts[0].contains(expect), "{}", made.texts[0]);
    }
    assert_eq!(
        invariant(&desk, USER).await,
        (usd("820"), usd("180")),
        "the refused one holds nothing"
    );
    assert_eq!(request(&desk, &format!("wd-{USER}-14")).await.state, State::Refused);

    // the wallet's cap (1,000 a day for everyone): 11 users of 95 each, the 11th refused
    for user in 100..111 {
        started(&desk, user, "100").await;
        send(&desk, message(user, 1, &format!("/withdraw 95 {WALLET}"))).await;
        let made = send(&desk, press(user, 2, &format!("wd:ok:wd-{user}-1"))).await;
        let expect = if user < 108 { "approved" } else { "service's daily limit" };
        assert!(made.texts[0].contains(expect), "user {user}: {}", made.texts[0]);
    }

    // a confirmation past its 10 minutes expires and holds nothing
    let id = format!("wd-{USER}-50");
    let old = Request {
        id: id.clone(),
        user_id: USER,
        chat_id: USER,
        to: WALLET.into(),
        amount: usd("20").to_string(),
        fee: usd("1").to_string(),
        net: usd("19").to_string(),
        created_ms: herald_schemas::now_ms() - withdraw::CONFIRM_WITHIN_MS - 1,
        state: State::Requested,
        reason: None,
        day: None,
    };
    let store = desk.payments.payments.withdraw.as_ref().unwrap().store.clone();
    store
        .put(format!("req.{id}"), serde_json::to_vec(&old).unwrap().into())
        .await
        .unwrap();
    let made = send(&desk, press(USER, 51, &format!("wd:ok:{id}"))).await;
    assert!(made.texts[0].contains("expired") && made.for_signer.is_empty(), "{}", made.texts[0]);
    assert_eq!(invariant(&desk, USER).await, (usd("820"), usd("180")));

    // a confirmation that crashed after its hold and was redelivered past the window
    // (the pipeline down for longer): expired, and the hold and the caps given back
    let id = format!("wd-{USER}-60");
    let crashed = Request { id: id.clone(), ..old };
    store
        .put(format!("req.{id}"), serde_json::to_vec(&crashed).unwrap().into())
        .await
        .unwrap();
    desk.ledger
        .hold(USER, usd("20"), &format!("withdraw:{id}"), "withdrawal")
        .await
        .unwrap();
    let today = herald_pipeline::products::payments::caps::day_of(herald_schemas::now_ms());
    let user_cap = herald_pipeline::products::payments::caps::key(&today, Some(USER));
    herald_pipeline::products::payments::caps::reserve(&store, &user_cap, &id, usd("20"), usd("200"))
        .await
        .unwrap();
    assert_eq!(invariant(&desk, USER).await, (usd("800"), usd("200")));
    let made = send(&desk, press(USER, 61, &format!("wd:ok:{id}"))).await;
    assert!(made.texts[0].contains("expired") && made.for_signer.is_empty(), "{}", made.texts[0]);
    assert_eq!(invariant(&desk, USER).await, (usd("820"), usd("180")), "the late hold released");
    assert_eq!(
        herald_pipeline::products::payments::caps::used(&store, &user_cap).await.unwrap(),
        usd("180"),
        "its count given back"
    );
}

#[tokio::test]
async fn twenty_confirmations_racing_for_one_balance_never_overdraw() {
    let env = common::Env::start().await;
    let mut r = rules();
    r.user_daily = usd("10000");
    r.wallet_daily = usd("10000");
    let desk = Desk::open_with(&env, vec![ADMIN], Some(r)).await;
    started(&desk, USER, "100").await;
    for n in 0..20 {
        send(&desk, message(USER, 100 + n, &format!("/withdraw 10 {WALLET}"))).await;
    }
    // all twenty buttons pressed at once (the inbox runs one user's updates in order;
    // this goes around it, as two pipeline processes racing would)
    let made = futures::future::join_all((0..20).map(|n| send(&desk, press(USER, 200 + n, &format!("wd:ok:wd-{USER}-{}", 100 + n))))).await;
    let approved = made.iter().filter(|m| m.texts[0].contains("approved")).count();
    let refused = made.iter().filter(|m| m.texts[0].contains("your balance is")).count();
    assert_eq!(
        (approved, refused),
        (10, 10),
        "{:?}",
        made.iter().map(|m| &m.texts[0]).collect::<Vec<_>>()
    );
    assert_eq!(made.iter().map(|m| m.for_signer.len()).sum::<usize>(), 10);
    assert_eq!(invariant(&desk, USER).await, (U256::ZERO, usd("100")));
}

/// anvil's second development account: the hot wallet (its key only in the signer).
const HOT_KEY: &str = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
const HOT: Address = alloy::primitives::address!("70997970C51812dc3A010C7d01b50e0d17dc79C8");

/// Waits (polling every 200 ms, 90 s at most) until `check` holds.
async fn until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(90);
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn confirmed_withdrawals_reach_the_chain_once_and_settle_the_ledger_exactly() {
    use herald_pipeline::products::payments::withdrawals::WithdrawalOutcomes;
    use herald_testkit::{evm, LocalAnvil};
    let env = common::Env::start().await;
    let anvil = LocalAnvil::start().unwrap();
    let chain = evm::provider(&anvil.url()).unwrap();
    let token = evm::deploy_token(&chain).await.unwrap();
    evm::pay(&chain, token, HOT, usd("1000")).await.unwrap();
    let mut r = rules();
    r.token.contract = token;
    let desk = Desk::open_with(&env, vec![ADMIN], Some(r)).await;
    let outcomes = WithdrawalOutcomes {
        ledger: desk.ledger.clone(),
        admins: vec![ADMIN],
    };
    let filters = ["sent", "final", "failed", "queued"]
        .map(|s| format!("herald.withdrawals.{s}.>"))
        .to_vec();
    let cfg = herald_runtime::StageConfig::new(subjects::WITHDRAWALS_STREAM, "withdrawal_outcomes", filters);
    tokio::spawn(herald_runtime::run_stage(
        env.js.clone(),
        std::sync::Arc::new(outcomes),
        cfg,
        env.shutdown.clone(),
    ));

    // two users, three withdrawals confirmed; one more asks past its balance
    started(&desk, 201, "100").await;
    started(&desk, 202, "50").await;
    let mut approved = Vec::new();
    for (user, update, amount) in [(201, 1, "30"), (202, 1, "20"), (201, 3, "40")] {
        send(&desk, message(user, update, &format!("/withdraw {amount} {WALLET}"))).await;
        let made = send(&desk, press(user, update + 1, &format!("wd:ok:wd-{user}-{update}"))).await;
        approved.extend(made.for_signer);
    }
    assert!(send(&desk, message(202, 5, &format!("/withdraw 31 {WALLET}"))).await.texts[0].contains("balance is 30.00 USD"));
    assert_eq!(approved.len(), 3);
    for (msg_id, w) in &approved {
        env.publish(subjects::withdrawal_approved("bsc"), msg_id, herald_schemas::encode(w))
            .await;
    }

    // the signer: a process of its own, the only holder of the key
    let mut signer = std::process::Command::new(herald_testkit::workspace_bin("herald-signer").unwrap())
        .args(env.nats.args())
        .args(["--rpc-url", &anvil.url(), "--confirmations", "3", "--watch-every", "200ms"])
        .args(["--metrics-addr", &format!("127.0.0.1:{}", herald_testkit::free_port())])
        .env("HERALD_SIGNER_KEY", HOT_KEY)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let settled = |user: i64| {
        let desk = &desk;
        async move { entries(desk, user).await.iter().filter(|e| e.kind == LedgerKind::Settle).count() }
    };
    until("every hold settled", || async {
        evm::mine(&chain, 1).await.unwrap();
        settled(201).await == 2 && settled(202).await == 1
    })
    .await;
    signer.kill().unwrap();
    signer.wait().unwrap();

    // the chain: what left the hot wallet is exactly the final withdrawals' nets, in
    // three transactions (its nonce), all to the wallet asked for
    let wallet: Address = WALLET.parse().unwrap();
    assert_eq!(
        evm::balance_of(&chain, token, wallet).await.unwrap(),
        usd("29") + usd("19") + usd("39")
    );
    assert_eq!(evm::balance_of(&chain, token, HOT).await.unwrap(), usd("1000") - usd("87"));
    use alloy::providers::Provider;
    assert_eq!(chain.get_transaction_count(HOT).await.unwrap(), 3, "three transactions, none twice");
    // the ledger: the holds settled (fees included), nothing held, the invariant kept
    assert_eq!(invariant(&desk, 201).await, (usd("30"), U256::ZERO));
    assert_eq!(invariant(&desk, 202).await, (usd("30"), U256::ZERO));
    // the stage's own account: three settlements made, whatever was redelivered
    let text = herald_runtime::telemetry::install_metrics().render();
    let made = herald_runtime::metric::sum_in(
        &text,
        "herald_stage_effects_total",
        &[("stage", "withdrawal_outcomes"), ("effect", "made")],
    );
    assert_eq!(made, 3.0);
}

#[tokio::test]
async fn an_approval_and_a_rejection_at_once_never_both_happen() {
    const ADMIN2: i64 = 2;
    let env = common::Env::start().await;
    let mut r = rules();
    r.user_daily = usd("10000");
    r.wallet_daily = usd("10000");
    let desk = Desk::open_with(&env, vec![ADMIN, ADMIN2], Some(r)).await;
    started(&desk, USER, "2000").await;
    for n in 0..10 {
        send(&desk, message(USER, 10 + 2 * n, &format!("/withdraw 150 {WALLET}"))).await;
        let waiting = send(&desk, press(USER, 11 + 2 * n, &format!("wd:ok:wd-{USER}-{}", 10 + 2 * n))).await;
        assert!(waiting.texts[0].contains("waits for an admin"), "{}", waiting.texts[0]);
    }
    // two admins press Approve and Reject on each at the same moment
    let races = (0..10).map(|n| {
        let id = format!("wd-{USER}-{}", 10 + 2 * n);
        let desk = &desk;
        async move {
            let (a, b) = futures::join!(
                send(desk, press(ADMIN, 100 + n, &format!("wd:yes:{id}"))),
                send(desk, press(ADMIN2, 200 + n, &format!("wd:rej:{id}")))
            );
            (a.for_signer.len() + b.for_signer.len(), request(desk, &id).await.state)
        }
    });
    let outcomes = futures::future::join_all(races).await;
    let approved = outcomes.iter().filter(|(_, s)| *s == State::Approved).count();
    let rejected = outcomes.iter().filter(|(_, s)| *s == State::Rejected).count();
    assert_eq!(approved + rejected, 10, "{outcomes:?}");
    for (sent, state) in &outcomes {
        assert_eq!(
            *sent,
            usize::from(*state == State::Approved),
            "handed to the signer only if approved: {outcomes:?}"
        );
    }
    let releases = entries(&desk, USER).await.iter().filter(|e| e.kind == LedgerKind::Release).count();
    assert_eq!(releases, rejected, "a hold released only for a rejected one");
    let held = usd("150") * U256::from(approved as u64);
    assert_eq!(invariant(&desk, USER).await, (usd("2000") - held, held));
}

#[tokio::test]
async fn a_confirm_and_a_cancel_at_once_never_leave_a_cancelled_request_held() {
    let env = common::Env::start().await;
    let mut r = rules();
    r.user_daily = usd("10000");
    let desk = Desk::open_with(&env, vec![ADMIN], Some(r)).await;
    started(&desk, USER, "1000").await;
    for n in 0..10 {
        send(&desk, message(USER, 10 + n, &format!("/withdraw 50 {WALLET}"))).await;
    }
    // both buttons at the same moment (the inbox runs a user's updates in order; this
    // goes around it, as two pipeline processes could)
    let races = (0..10).map(|n| {
        let id = format!("wd-{USER}-{}", 10 + n);
        let desk = &desk;
        async move {
            futures::join!(
                send(desk, press(USER, 100 + n, &format!("wd:ok:{id}"))),
                send(desk, press(USER, 200 + n, &format!("wd:no:{id}")))
            );
            request(desk, &id).await.state
        }
    });
    let states = futures::future::join_all(races).await;
    let approved = states.iter().filter(|s| **s == State::Approved).count() as u64;
    assert_eq!(
        approved + states.iter().filter(|s| **s == State::Cancelled).count() as u64,
        10,
        "{states:?}"
    );
    let held = usd("50") * U256::from(approved);
    assert_eq!(
        invariant(&desk, USER).await,
        (usd("1000") - held, held),
        "held only for the approved: {states:?}"
    );
}
