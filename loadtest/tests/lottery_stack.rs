//! The lottery through the whole stack (emulator, bot, pipeline, anvil, the drand relay
//! stand-in): `loadtest demo-lottery`, with the pipeline killed (SIGKILL) between the
//! sale's close and the draw. Needs `cargo build --workspace --bins` (the pipeline, the
//! bot and `herald-verify` run as processes).

use herald_loadtest::demo::lottery::{run, Options, PLAYERS};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_between_close_and_draw_draws_once_and_pays_once() {
    let s = run(Options {
        kill9_after_close: true,
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(s.killed_before_draw, Some(true), "the kill landed between the close and the draw");
    for step in ["opened", "closed", "beacon", "revealed", "drawn", "settled"] {
        assert_eq!(s.steps.get(step), Some(&1), "{step} once in the journal: {:?}", s.steps);
    }
    assert!(s.verified, "herald-verify re-derives the draw:\n{}", s.verifier_output);
    assert!(
        s.proof_verified,
        "a ticket's inclusion proof leads to the root announced at the close"
    );

    // three prizes, and the referral rewards of the referred players who played
    let prizes: Vec<_> = s.payouts.keys().filter(|k| k.contains(":prize:")).collect();
    assert_eq!(prizes.len(), 3, "{:?}", s.payouts);
    assert!(s.payouts.keys().any(|k| k.contains(":referral:")), "{:?}", s.payouts);
    assert!(s.payouts.values().all(|&n| n == 1), "every payout credited once: {:?}", s.payouts);
    // the restarted pipeline made every payout, once (its own counter)
    assert_eq!(s.payouts_counter, s.payouts.len() as u64);

    // everyone who played is told the result exactly once
    let drawn = format!("Round {} drawn", s.round);
    for (user, _, _) in PLAYERS {
        let told = s.deliveries.iter().filter(|d| d.chat_id == user && d.text.contains(&drawn)).count();
        let played = s
            .deliveries
            .iter()
            .any(|d| d.chat_id == user && d.text.contains(&format!("in round {}", s.round)));
        assert_eq!(told, usize::from(played), "user {user}");
    }
}

/// Issue 20's "nothing lost": the money server killed (SIGKILL) while the purchases are
/// in flight, then the events server and the money server between the close and the
/// draw. Every purchase is debited once and in the journal once, every payout once (by
/// ledger reference and by the pipeline's own counter), every receipt sent once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_each_server_mid_round_loses_and_repeats_nothing() {
    let s = run(Options {
        kill9_servers: true,
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(
        s.killed_before_draw,
        Some(true),
        "the second kills landed between the close and the draw"
    );
    for step in ["opened", "closed", "beacon", "revealed", "drawn", "settled"] {
        assert_eq!(s.steps.get(step), Some(&1), "{step} once in the journal: {:?}", s.steps);
    }
    assert!(s.verified, "herald-verify re-derives the draw:\n{}", s.verifier_output);
    // every player bought once: one debit, one receipt
    assert_eq!(s.purchase_debits.len(), PLAYERS.len(), "{:?}", s.purchase_debits);
    assert!(s.purchase_debits.values().all(|&n| n == 1), "{:?}", s.purchase_debits);
    for (user, _, _) in PLAYERS {
        let receipts = s
            .deliveries
            .iter()
            .filter(|d| d.chat_id == user && d.text.contains("Receipt"))
            .count();
        assert_eq!(receipts, 1, "user {user}'s receipt once");
    }
    let in_round = s
        .deliveries
        .iter()
        .filter(|d| d.text.contains("Receipt") && d.text.contains(&format!("in round {}", s.round)))
        .count();
    assert_eq!(
        s.steps.get("purchase"),
        Some(&in_round),
        "each purchase of the round journaled once"
    );
    let prizes = s.payouts.keys().filter(|k| k.contains(":prize:")).count();
    assert_eq!(prizes, 3, "{:?}", s.payouts);
    assert!(s.payouts.values().all(|&n| n == 1), "every payout credited once: {:?}", s.payouts);
    assert_eq!(s.payouts_counter, s.payouts.len() as u64, "the pipeline's own count agrees");
}
