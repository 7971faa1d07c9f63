//! The lottery against a real nats-server and the drand relay stand-in (a test chain it
//! signs, beacons on time). The scheduler's ticks are called here, so each test waits on
//! the journal's state, never on the clock alone.

use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::U256;
use clap::{Args, FromArgMatches};
use herald_draw::bundle::{self, Bundle};
use herald_draw::testchain::TestChain;
use herald_loadtest::drand::{Fault, Relay};
use herald_pipeline::core::ledger::Ledger;
use herald_pipeline::products::lottery::config::LotteryArgs;
use herald_pipeline::products::lottery::journal::{step_name, Phase};
use herald_pipeline::products::lottery::purchase::{buy, Bought, Receipt};
use herald_pipeline::products::lottery::round::Round;
use herald_pipeline::products::lottery::scheduler;
use herald_pipeline::products::lottery::service::Lottery;
use herald_pipeline::products::lottery::LotteryProduct;
use herald_runtime::Effect;
use herald_schemas::{subjects, LedgerKind, User};
use herald_testkit::LocalNats;
use tokio::io::AsyncReadExt;

/// One USD in ledger base units.
const USD: u128 = 1_000_000_000_000_000_000;

struct World {
    _nats: LocalNats,
    js: herald_runtime::Js,
    relay: Relay,
    ledger: Ledger,
}

impl World {
    async fn start() -> World {
        let nats = LocalNats::start().expect("nats-server");
        let js = herald_pipeline::app::compose::connect(&nats.servers_args()).await.unwrap();
        herald_pipeline::app::compose::setup_all(&js, false, herald_runtime::setup::Replicas::Existing)
            .await
            .unwrap();
        let now = herald_schemas::now_ms() / 1000;
        let relay = Relay::start("127.0.0.1:0".parse().unwrap(), TestChain::new([5; 32], now - 1000, 1))
            .await
            .unwrap();
        let ledger = Ledger::open(js.clone()).await.unwrap();
        World {
            _nats: nats,
            js,
            relay,
            ledger,
        }
    }

    /// A lottery instance: rounds every 3 s, `R` 1 s after the close, the relay's test chain.
    async fn lottery(&self, relays: &[String], extra: &[&str]) -> Arc<Lottery> {
        let mut args = self.relay.lottery_args("3s", "1s", relays);
        args.extend(extra.iter().map(|s| s.to_string()));
        let cmd = LotteryArgs::augment_args(clap::Command::new("t").no_binary_name(true));
        let product = LotteryProduct(LotteryArgs::from_arg_matches(&cmd.get_matches_from(args)).unwrap());
        product.open(&self.js, &[]).await.unwrap()
    }

    async fn default_lottery(&self) -> Arc<Lottery> {
        self.lottery(&[self.relay.url()], &[]).await
    }

    /// A user with `usd` on their balance and `referrer`.
    async fn user(&self, id: i64, referrer: Option<i64>, usd: u128) {
        let users = self.js.get_key_value(subjects::USERS_BUCKET).await.unwrap();
        let user = User {
            referrer,
            ..User::new(id, id, 0)
        };
        herald_core::users::save(&users, &user, None).await.unwrap();
        if usd > 0 {
            self.ledger
                .credit(id, U256::from(usd * USD), &format!("deposit:test:{id}"), "test deposit")
                .await
                .unwrap();
        }
    }

    async fn balance(&self, id: i64) -> u128 {
        u128::try_from(self.ledger.balance(id).await.unwrap().0).unwrap()
    }

    /// How many of the user's ledger entries carry `reference`.
    async fn entries_with(&self, id: i64, reference: &str) -> usize {
        self.ledger
            .history(id, 10_000)
            .await
            .unwrap()
            .iter()
            .filter(|e| e.reference == reference)
            .count()
    }
}

/// Ticks `l` until `pred` holds for round `id`, at most `secs` seconds.
async fn tick_until(l: &Lottery, id: u64, secs: u64, pred: impl Fn(&Round) -> bool) -> Round {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        scheduler::tick(l).await.unwrap();
        let r = l.round(id).await.unwrap();
        if pred(&r) {
            return r;
        }
        assert!(tokio::time::Instant::now() < deadline, "round {id} stuck in {:?}", r.phase);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Ticks until a round is on sale with at least 1.5 s left; returns it.
async fn fresh_round(l: &Lottery) -> Round {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        scheduler::tick(l).await.unwrap();
        if let Some(id) = l.current().await.unwrap() {
            let r = l.round(id).await.unwrap();
            if r.phase == Some(Phase::Selling) && r.t_close * 1000 >= herald_schemas::now_ms() + 1500 {
                return r;
            }
        }
        assert!(tokio::time::Instant::now() < deadline, "no fresh round");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The receipt of a purchase made now (not found made by an earlier call).
fn receipt((b, effect): (Bought, Effect)) -> Receipt {
    assert_eq!(effect, Effect::Made, "{b:?}");
    match b {
        Bought::Receipt(r) => r,
        other => panic!("not a receipt: {other:?}"),
    }
}

async fn stored_bundle(l: &Lottery, round: u64) -> (Bundle, Vec<u8>) {
    let mut object = l.bundles.get(Lottery::bundle_name(round).as_str()).await.unwrap();
    let mut bytes = Vec::new();
    object.read_to_end(&mut bytes).await.unwrap();
    (serde_json::from_slice(&bytes).unwrap(), bytes)
}

/// Each step's count in the round's journal.
async fn steps(l: &Lottery, round: u64) -> Vec<(&'static str, usize)> {
    let entries = l.journal.entries_after(round, 0, None).await.unwrap();
    let mut counts: Vec<(&'static str, usize)> = Vec::new();
    for (e, _, _) in &entries {
        let name = step_name(&e.step);
        match counts.iter_mut().find(|(n, _)| *n == name) {
            Some((_, c)) => *c += 1,
            None => counts.push((name, 1)),
        }
    }
    counts
}

#[tokio::test]
async fn a_round_is_sold_closed_drawn_paid_and_verified() {
    let w = World::start().await;
    let l = w.default_lottery().await;
    // A brought B, B brought C; D came alone
    let (a, b, c, d) = (100, 101, 102, 103);
    w.user(a, None, 50).await;
    w.user(b, Some(a), 50).await;
    w.user(c, Some(b), 50).await;
    w.user(d, None, 50).await;
    let round = fresh_round(&l).await;
    let mut receipts = Vec::new();
    for (i, (user, n)) in [(b, 3), (c, 2), (d, 5), (a, 1)].into_iter().enumerate() {
        let r = receipt(buy(&l, user, user, 1000 + i as i64, n).await.unwrap());
        assert_eq!((r.round, r.count, r.moved_from), (round.id, n, None));
        receipts.push((user, r));
    }
    // a redelivered /buy answers with the same receipt and charges once
    let (again, effect) = buy(&l, b, b, 1000, 3).await.unwrap();
    assert_eq!((again, effect), (Bought::Receipt(receipts[0].1.clone()), Effect::AlreadyMade));
    assert_eq!(w.balance(b).await, 47 * USD);

    let settled = tick_until(&l, round.id, 30, |r| r.phase == Some(Phase::Settled)).await;
    let want = [
        ("opened", 1),
        ("purchase", 4),
        ("closed", 1),
        ("beacon", 1),
        ("revealed", 1),
        ("drawn", 1),
        ("settled", 1),
    ];
    assert_eq!(steps(&l, round.id).await, want, "each step once, in order");
    assert!(w.relay.served().contains(&settled.beacon_round), "the beacon came from the relay");

    // the bundle re-derives, against the test chain's public key
    let (b_, bytes) = stored_bundle(&l, round.id).await;
    let report = bundle::verify(&b_, w.relay.test_chain());
    assert!(report.ok(), "{:?}", report.checks);
    assert_eq!(b_.tickets, 11);
    assert_eq!(b_.receipts.len(), 4);
    assert_eq!(
        settled.bundle_sha256.as_deref(),
        Some(hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes)).as_str())
    );

    // winners paid once each; referral rewards from the fee: A 5% of B's 3 + 3% of C's 2,
    // B 5% of C's 2
    let mut prizes = std::collections::HashMap::<i64, u128>::new();
    for (place, win) in b_.winners.iter().enumerate() {
        let holder = receipts.iter().find(|(_, r)| r.receipt_id == win.receipt_id).unwrap().0;
        assert_eq!(
            w.entries_with(holder, &format!("lottery:{}:prize:{}", round.id, place + 1)).await,
            1
        );
        *prizes.entry(holder).or_default() += win.prize.parse::<u128>().unwrap();
    }
    let referral_a = 3 * USD * 500 / 10_000 + 2 * USD * 300 / 10_000;
    let referral_b = 2 * USD * 500 / 10_000;
    assert_eq!(b_.referral_rewards, (referral_a + referral_b).to_string());
    let prize = |u: i64| prizes.get(&u).copied().unwrap_or(0);
    assert_eq!(w.balance(a).await, 49 * USD + referral_a + prize(a));
    assert_eq!(w.balance(b).await, 47 * USD + referral_b + prize(b));
    assert_eq!(w.balance(c).await, 48 * USD + prize(c));
    assert_eq!(w.balance(d).await, 45 * USD + prize(d));
    let paid: u128 = b_.winners.iter().map(|w| w.prize.parse::<u128>().unwrap()).sum();
    let (pot, fee, rollover): (u128, u128, u128) = (b_.pot.parse().unwrap(), b_.fee.parse().unwrap(), b_.rollover_out.parse().unwrap());
    assert_eq!(paid + fee + rollover, pot, "the money invariant");

    // the bundle over HTTP is the stored one
    let port = herald_testkit::free_port();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let shutdown = tokio_util::sync::CancellationToken::new();
    tokio::spawn(herald_pipeline::products::lottery::http::serve(addr, l.clone(), shutdown.clone()));
    let url = format!("http://{addr}/lottery/rounds/{}/bundle.json", round.id);
    let got = loop {
        match reqwest::get(&url).await {
            Ok(r) => break r,
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    };
    assert_eq!(got.headers()["content-type"], "application/json");
    assert_eq!(got.bytes().await.unwrap().as_ref(), bytes.as_slice());
    let missing = reqwest::get(format!("http://{addr}/lottery/rounds/999/bundle.json")).await.unwrap();
    assert_eq!(missing.status(), 404);
    // every ticket's inclusion proof leads to the root in the bundle
    for ticket in 0..b_.tickets {
        let url = format!("http://{addr}/lottery/rounds/{}/proof/{ticket}.json", round.id);
        let proof: herald_draw::proof::Proof = reqwest::get(&url).await.unwrap().json().await.unwrap();
        assert_eq!((proof.ticket, proof.tickets_root.as_str()), (ticket, b_.tickets_root.as_str()));
        assert!(proof.check().is_ok(), "ticket {ticket}");
    }
    let beyond = reqwest::get(format!("http://{addr}/lottery/rounds/{}/proof/{}.json", round.id, b_.tickets))
        .await
        .unwrap();
    assert_eq!(beyond.status(), 404);
    shutdown.cancel();
}

#[tokio::test]
async fn the_sale_closes_exactly_at_t_close() {
    let w = World::start().await;
    let l = w.default_lottery().await;
    w.user(7, None, 10).await;
    let round = fresh_round(&l).await;
    let before = receipt(buy(&l, 7, 7, 1, 1).await.unwrap());
    assert_eq!(before.round, round.id);
    // after t_close, before the scheduler has closed the round: not in this round
    while herald_schemas::now_ms() < round.t_close * 1000 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let late = buy(&l, 7, 7, 2, 1).await;
    assert!(late.is_err(), "the next round is not open yet: the purchase waits (and is retried)");
    scheduler::tick(&l).await.unwrap(); // closes this round and opens the next
    let late = receipt(buy(&l, 7, 7, 2, 1).await.unwrap());
    assert_eq!(
        (late.round, late.moved_from),
        (round.id + 1, Some(round.id)),
        "placed in the next round, and the buyer told"
    );
    assert_eq!(w.entries_with(7, "lottery:buy:2").await, 1, "charged once across the retry");
    let closed = l.round(round.id).await.unwrap();
    assert_eq!((closed.sold, closed.purchases.len()), (1, 1));
    assert_eq!(w.balance(7).await, 8 * USD);
}

#[tokio::test]
async fn concurrent_buys_never_overdraw() {
    let w = World::start().await;
    let l = w.default_lottery().await;
    w.user(9, None, 5).await;
    let round = fresh_round(&l).await;
    let buys = (0..20).map(|i| {
        let l = l.clone();
        tokio::spawn(async move { buy(&l, 9, 9, 500 + i, 1).await.unwrap() })
    });
    let results = futures::future::join_all(buys).await;
    let bought = results
        .iter()
        .filter(|r| matches!(r.as_ref().unwrap(), (Bought::Receipt(_), Effect::Made)))
        .count();
    let refused = results
        .iter()
        .filter(|r| matches!(r.as_ref().unwrap(), (Bought::Insufficient { .. }, Effect::NotMade)))
        .count();
    assert_eq!((bought, refused), (5, 15));
    assert_eq!(w.balance(9).await, 0);
    let r = l.round(round.id).await.unwrap();
    let mut tickets: Vec<u64> = r.purchases.iter().map(|p| p.first_ticket).collect();
    tickets.sort();
    assert_eq!(
        tickets,
        vec![0, 1, 2, 3, 4],
        "five tickets, numbered in purchase order without gaps"
    );
    let debits = w
        .ledger
        .history(9, 100)
        .await
        .unwrap()
        .iter()
        .filter(|e| e.kind == LedgerKind::Debit)
        .count();
    assert_eq!(debits, 5);
}

#[tokio::test]
async fn bad_relays_are_refused_and_the_draw_waits_then_fails_over() {
    let w = World::start().await;
    let l = w.default_lottery().await;
    w.user(3, None, 5).await;
    let round = fresh_round(&l).await;
    receipt(buy(&l, 3, 3, 1, 2).await.unwrap());
    let closed = tick_until(&l, round.id, 10, |r| r.phase == Some(Phase::Closed)).await;
    // wait until beacon R exists, so only the faults hold the draw back
    let t_r = herald_draw::beacon::round_time(&l.chain, closed.beacon_round);
    while herald_schemas::now_ms() / 1000 < t_r {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for fault in [Fault::WrongChain, Fault::BadSignature, Fault::WrongRound, Fault::Down] {
        w.relay.set_fault(fault);
        scheduler::drive(&l, round.id, herald_schemas::now_ms() / 1000).await.unwrap();
        let r = l.round(round.id).await.unwrap();
        assert_eq!(r.phase, Some(Phase::Closed), "{fault:?}: the beacon is refused and the draw waits");
    }
    assert!(w.relay.served().contains(&closed.beacon_round), "beacons were served, and refused");
    // a second relay that behaves: the draw fails over to it
    let good = Relay::start(
        "127.0.0.1:0".parse().unwrap(),
        TestChain::new([5; 32], w.relay.test_chain().genesis_time, 1),
    )
    .await
    .unwrap();
    let l2 = w.lottery(&[w.relay.url(), good.url()], &[]).await;
    let r = tick_until(&l2, round.id, 10, |r| r.phase == Some(Phase::Settled)).await;
    assert_eq!(
        r.beacon.map(|b| b.round),
        Some(closed.beacon_round),
        "beacon R itself, never another round"
    );
    assert!(good.served().contains(&closed.beacon_round));
}

#[tokio::test]
async fn an_empty_round_rolls_over_and_a_withheld_seed_refunds() {
    let w = World::start().await;
    // one prize share of 50%: half of the pot after the fee rolls over
    let l = w
        .lottery(
            &[w.relay.url()],
            &["--lottery-shares-bps", "5000", "--lottery-reveal-deadline", "1s"],
        )
        .await;
    w.user(4, None, 10).await;
    let first = fresh_round(&l).await;
    receipt(buy(&l, 4, 4, 1, 2).await.unwrap());
    let drawn = tick_until(&l, first.id, 20, |r| r.phase == Some(Phase::Settled)).await;
    let carried = drawn.rollover_out.unwrap();
    // pot 2, fee 0.2, prize 0.9: 0.9 carries on
    assert_eq!(carried, 2 * USD - 2 * USD / 10 - (2 * USD - 2 * USD / 10) / 2);
    let next = l.round(first.id + 1).await.unwrap();
    let next = tick_until(&l, next.id, 10, |r| r.phase.is_some_and(|p| p >= Phase::Closed)).await;
    assert_eq!(next.rollover_in, carried, "the next round's pot starts with the rollover");
    // round first+1 had no tickets: no draw, its whole pot rolls over
    let empty = tick_until(&l, next.id, 10, |r| r.phase == Some(Phase::Settled)).await;
    assert_eq!((empty.outcome.as_deref(), empty.rollover_out), (Some("rolled_over"), Some(carried)));
    assert!(empty.beacon.is_none());

    // a round whose seed is lost: every ticket refunded once the deadline passes
    let round = fresh_round(&l).await;
    let before = w.balance(4).await;
    let r = receipt(buy(&l, 4, 4, 2, 3).await.unwrap());
    l.kv.delete(format!("seed.{}", round.id)).await.unwrap();
    let refunded = tick_until(&l, round.id, 20, |r| r.phase == Some(Phase::Settled)).await;
    assert_eq!(refunded.outcome.as_deref(), Some("refunded"));
    assert!(refunded.server_seed.is_none());
    assert_eq!(w.balance(4).await, before, "the tickets' price is back");
    assert_eq!(w.entries_with(4, &format!("lottery:{}:refund:{}", round.id, r.receipt_id)).await, 1);
    let (b, _) = stored_bundle(&l, round.id).await;
    assert!(bundle::verify(&b, w.relay.test_chain()).ok());
    assert_eq!(b.rollover_out, refunded.rollover_in.to_string(), "what came in carries on");
}

#[tokio::test]
async fn two_schedulers_take_each_step_once() {
    let w = World::start().await;
    let (l1, l2) = (w.default_lottery().await, w.default_lottery().await);
    for u in 20..30 {
        w.user(u, None, 10).await;
    }
    let round = fresh_round(&l1).await;
    for u in 20..30 {
        receipt(buy(&l2, u, u, u, 2).await.unwrap());
    }
    let race = |l: Arc<Lottery>| tokio::spawn(async move { tick_until(&l, round.id, 30, |r| r.phase == Some(Phase::Settled)).await });
    let (a, b) = (race(l1.clone()), race(l2.clone()));
    a.await.unwrap();
    b.await.unwrap();
    let want = [
        ("opened", 1),
        ("purchase", 10),
        ("closed", 1),
        ("beacon", 1),
        ("revealed", 1),
        ("drawn", 1),
        ("settled", 1),
    ];
    assert_eq!(steps(&l1, round.id).await, want);
    let r = l1.round(round.id).await.unwrap();
    for (place, ticket) in r.winning_tickets.iter().enumerate() {
        let holder = r.holder(*ticket).unwrap().user_id;
        assert_eq!(
            w.entries_with(holder, &format!("lottery:{}:prize:{}", round.id, place + 1)).await,
            1,
            "paid once"
        );
    }
    // and the next round was opened once
    assert_eq!(steps(&l1, round.id + 1).await.first(), Some(&("opened", 1)));
}
