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
