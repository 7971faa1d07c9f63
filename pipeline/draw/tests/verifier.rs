//! A bundle built from a test chain's beacon verifies with `herald-verify`; any altered
//! input or output makes it fail, naming the check.

use std::process::Command;

use herald_draw::beacon;
use herald_draw::bundle::{self, Bundle, Inputs, Outcome};
use herald_draw::draw::commitment;
use herald_draw::testchain::TestChain;

fn inputs(purchases: Vec<([u8; 16], u64)>, reveal: bool) -> (Inputs, TestChain) {
    let chain = TestChain::new([9; 32], 1_700_000_000, 1);
    let t_close = 1_700_000_500;
    let r = beacon::draw_round(&chain.info, t_close, 60);
    let server_seed = [42u8; 32];
    let inputs = Inputs {
        round: 7,
        price: 1_000_000_000_000_000_000,
        t_close,
        beacon_delay_s: 60,
        chain: chain.info.clone(),
        beacon_round: r,
        beacon: Some(chain.sign(r)),
        commitment: commitment(&server_seed),
        server_seed: reveal.then_some(server_seed),
        purchases,
        rollover_in: 123,
        fee_bps: 1000,
        shares_bps: vec![5000, 2000, 1000],
        referral_rewards: 5,
    };
    (inputs, chain)
}

fn run_verifier(b: &Bundle, chain: &TestChain) -> (bool, String) {
    let dir = std::env::temp_dir().join(format!("herald-verify-{}-{}", std::process::id(), rand_suffix()));
    std::fs::create_dir_all(&dir).unwrap();
    let (bp, cp) = (dir.join("bundle.json"), dir.join("chain.json"));
    std::fs::write(&bp, serde_json::to_vec_pretty(b).unwrap()).unwrap();
    std::fs::write(&cp, serde_json::to_vec(&chain.info).unwrap()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_herald-verify"))
        .arg(&bp)
        .arg("--chain-info")
        .arg(&cp)
        .output()
        .unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

#[test]
fn a_drawn_round_verifies_and_every_alteration_is_caught() {
    let purchases: Vec<([u8; 16], u64)> = (0u8..40).map(|i| ([i; 16], 1 + i as u64 % 4)).collect();
    let (inputs, chain) = inputs(purchases, true);
    let b = bundle::build(&inputs).unwrap();
    assert_eq!(b.outcome, Outcome::Drawn);
    assert_eq!(b.winners.len(), 3);
    let (ok, out) = run_verifier(&b, &chain);
    assert!(ok, "{out}");
    for w in &b.winners {
        assert!(out.contains(&format!("ticket {} (receipt {})", w.ticket, w.receipt_id)), "{out}");
    }

    // each alteration, and the check that must catch it
    type Alter = fn(&mut Bundle);
    let alterations: [(&str, Alter); 9] = [
        ("beacon", |b| b.beacon.as_mut().unwrap().round += 1),
        ("beacon round", |b| b.beacon_round += 1),
        ("commitment", |b| b.server_seed = Some("11".repeat(32))),
        ("tickets root", |b| b.receipts[3].receipt_id = "ff".repeat(16)),
        ("receipts", |b| b.receipts[3].count += 1),
        ("money", |b| b.fee = "1".into()),
        ("money", |b| b.rollover_out = "0".into()),
        ("winners", |b| b.winners[0].ticket = (b.winners[0].ticket + 1) % b.tickets),
        ("winners", |b| b.winners[1].prize = "1".into()),
    ];
    for (check, alter) in alterations {
        let mut bad = b.clone();
        alter(&mut bad);
        let report = bundle::verify(&bad, &chain.info);
        let failed: Vec<&str> = report.checks.iter().filter(|c| c.result.is_err()).map(|c| c.name).collect();
        assert!(failed.contains(&check), "{check} not caught: {failed:?}");
    }
    let mut bad = b.clone();
    bad.winners[2].prize = "1".into();
    let (ok, out) = run_verifier(&bad, &chain);
    assert!(!ok && out.contains("FAIL  winners"), "{out}");

    // the bundle checked against drand quicknet (the default) is refused: not its chain
    let report = bundle::verify(&b, &beacon::QUICKNET.info());
    assert!(report.checks.iter().any(|c| c.name == "chain" && c.result.is_err()));
}

#[test]
fn no_tickets_roll_over_and_a_withheld_seed_refunds() {
    let (mut empty, chain) = inputs(Vec::new(), true);
    empty.referral_rewards = 0;
    let b = bundle::build(&empty).unwrap();
    assert_eq!(
        (b.outcome, b.pot.as_str(), b.rollover_out.as_str()),
        (Outcome::RolledOver, "123", "123")
    );
    assert!(bundle::verify(&b, &chain.info).ok());

    let (mut withheld, chain) = inputs(vec![([1; 16], 3)], false);
    withheld.referral_rewards = 0;
    let b = bundle::build(&withheld).unwrap();
    assert_eq!(b.outcome, Outcome::Refunded);
    assert!(b.winners.is_empty());
    assert_eq!(b.rollover_out, "123", "the carried-in pot carries on; the tickets are refunded");
    let report = bundle::verify(&b, &chain.info);
    assert!(report.ok(), "{:?}", report.checks);
}
