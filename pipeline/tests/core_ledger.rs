//! The ledger against a real nats-server: exactly-once credits, concurrent debits that
//! never overdraw, the unique key repaired from the ledger after a crash between writes.

mod common;

use alloy::primitives::U256;
use herald_pipeline::core::ledger::{Applied, Ledger};
use herald_schemas::{subjects, LedgerKind};

#[tokio::test]
async fn a_credit_applies_once_and_concurrent_debits_never_overdraw() {
    let env = common::Env::start().await;
    let ledger = Ledger::open(env.js.clone()).await.unwrap();
    let user = 7;
    assert_eq!(ledger.balance(user).await.unwrap(), (U256::ZERO, 0));

    let deposit = "deposit:0xabc:3";
    assert_eq!(
        ledger.credit(user, U256::from(100), deposit, "BUSD deposit").await.unwrap(),
        Applied::Done(U256::from(100))
    );
    assert_eq!(
        ledger.credit(user, U256::from(100), deposit, "BUSD deposit").await.unwrap(),
        Applied::AlreadyApplied
    );

    // 20 debits of 10 at once against 100: exactly 10 go through
    let debits = (0..20).map(|i| {
        let ledger = ledger.clone();
        async move { ledger.debit(user, U256::from(10), &format!("sub:{i}"), "weekly").await.unwrap() }
    });
    let results = futures::future::join_all(debits).await;
    let done = results.iter().filter(|r| matches!(r, Applied::Done(_))).count();
    let refused = results.iter().filter(|r| matches!(r, Applied::Insufficient(_))).count();
    assert_eq!((done, refused), (10, 10), "{results:?}");
    assert_eq!(ledger.balance(user).await.unwrap().0, U256::ZERO);

    let history = ledger.history(user, 100).await.unwrap();
    assert_eq!(history.len(), 11);
    assert_eq!(
        (history[10].kind, history[10].reference.as_str()),
        (LedgerKind::Credit, deposit),
        "newest first"
    );
    let mut balance = U256::from(100);
    for e in history.iter().rev().skip(1) {
        balance -= U256::from(10);
        assert_eq!(e.balance, balance.to_string(), "every entry carries the balance after it");
    }
}

#[tokio::test]
async fn the_ledger_itself_catches_a_repeat_when_the_unique_key_was_lost() {
    let env = common::Env::start().await;
    let ledger = Ledger::open(env.js.clone()).await.unwrap();
    let reference = "deposit:0xdef:0";
    ledger.credit(1, U256::from(5), reference, "USDT deposit").await.unwrap();
    // a crash between the ledger write and the unique key: the key is missing
    let refs = env.js.get_key_value(subjects::CREDITS_BUCKET).await.unwrap();
    let keys: Vec<String> = futures::TryStreamExt::try_collect(refs.keys().await.unwrap()).await.unwrap();
    assert_eq!(keys.len(), 1);
    refs.purge(&keys[0]).await.unwrap();
    assert_eq!(
        ledger.credit(1, U256::from(5), reference, "USDT deposit").await.unwrap(),
        Applied::AlreadyApplied
    );
    assert_eq!(ledger.balance(1).await.unwrap().0, U256::from(5));
    assert!(refs.get(&keys[0]).await.unwrap().is_some(), "the key is repaired");
}

/// A debit retried after a crash that lost its key, with the balance now too low to
/// pay it again: only the ledger's own entries can tell it was applied. Short ledgers
/// are searched entry by entry, long ones through a consumer: both are covered, with
/// another user's entries in between.
#[tokio::test]
async fn a_retried_debit_whose_key_was_lost_is_found_in_short_and_long_ledgers() {
    let env = common::Env::start().await;
    let ledger = Ledger::open(env.js.clone()).await.unwrap();
    let refs = env.js.get_key_value(subjects::CREDITS_BUCKET).await.unwrap();
    for (user, credits) in [(7i64, 1u64), (8, 40)] {
        for i in 0..credits {
            ledger
                .credit(user, U256::from(1), &format!("deposit:{user}:{i}"), "deposit")
                .await
                .unwrap();
            ledger
                .credit(99, U256::from(1), &format!("other:{user}:{i}"), "noise")
                .await
                .unwrap();
        }
        let reference = format!("lottery:buy:{user}");
        let all = U256::from(credits);
        assert!(matches!(
            ledger.debit(user, all, &reference, "tickets").await.unwrap(),
            Applied::Done(_)
        ));
        // the crash: the debit is in the ledger, its key is not
        let keys: Vec<String> = futures::TryStreamExt::try_collect(refs.keys().await.unwrap()).await.unwrap();
        let key = keys
            .iter()
            .find(|k| k.ends_with(&format!("buy.{user}")))
            .expect("the debit's key")
            .clone();
        refs.purge(&key).await.unwrap();
        assert_eq!(
            ledger.debit(user, all, &reference, "tickets").await.unwrap(),
            Applied::AlreadyApplied,
            "user {user} with {credits} entries before the debit"
        );
        assert_eq!(ledger.balance(user).await.unwrap().0, U256::ZERO);
    }
}

/// One operation of a generated sequence: a credit, a debit or a hold of `amount`
/// under reference number `reference`, or the settle or release of hold number `hold`
/// (small numbers, so references repeat: a repeated reference is a redelivery and must
/// change nothing, and a hold is closed at most once, by whichever comes first).
#[derive(Debug, Clone)]
enum Op {
    Credit { amount: u64, reference: u8 },
    Debit { amount: u64, reference: u8 },
    Hold { amount: u64, reference: u8 },
    Settle { hold: u8 },
    Release { hold: u8 },
}

fn op() -> impl proptest::strategy::Strategy<Value = Op> {
    use proptest::prelude::*;
    prop_oneof![
        (1u64..1_000, 0u8..12).prop_map(|(amount, reference)| Op::Credit { amount, reference }),
        (1u64..1_500, 0u8..12).prop_map(|(amount, reference)| Op::Debit { amount, reference }),
        (1u64..1_500, 0u8..6).prop_map(|(amount, reference)| Op::Hold { amount, reference }),
        (0u8..6).prop_map(|hold| Op::Settle { hold }),
        (0u8..6).prop_map(|hold| Op::Release { hold }),
    ]
}

/// The model of one user's ledger: balance, held, references applied, holds and how
/// each was closed.
#[derive(Default)]
struct Model {
    balance: u64,
    held: u64,
    applied: std::collections::HashSet<String>,
    holds: std::collections::HashMap<String, (u64, Option<LedgerKind>)>,
    settled: u64,
}

/// The ledger's invariant, as a property over generated operation sequences against a
/// real nats-server: the balance and the held total are never negative (a debit or a
/// hold above the balance is refused), each reference is applied at most once however
/// often it comes, each hold is closed at most once (a settle after a release, or the
/// reverse, is refused and says which came first), and every entry keeps
/// `balance + held = credits − debits − settled`, as the model computes it.
#[test]
fn the_ledger_never_overdraws_and_applies_each_reference_once() {
    use herald_pipeline::core::ledger::Closed;
    use proptest::prelude::*;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let env = rt.block_on(common::Env::start());
    let ledger = rt.block_on(Ledger::open(env.js.clone())).unwrap();
    let next_user = std::sync::atomic::AtomicI64::new(1_000);
    let config = ProptestConfig {
        cases: 24,
        ..ProptestConfig::default()
    };
    proptest!(config, |(ops in proptest::collection::vec(op(), 1..16))| {
        let user = next_user.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mut m = Model::default();
        let (mut credits, mut debits) = (0u64, 0u64);
        for o in &ops {
            match o {
                Op::Credit { amount, reference } | Op::Debit { amount, reference } | Op::Hold { amount, reference } => {
                    let (kind, reference) = match o {
                        Op::Credit { .. } => (LedgerKind::Credit, format!("credit:{reference}")),
                        Op::Debit { .. } => (LedgerKind::Debit, format!("debit:{reference}")),
                        _ => (LedgerKind::Hold, format!("withdraw:{reference}")),
                    };
                    let amount = *amount;
                    let result = rt.block_on(async {
                        match kind {
                            LedgerKind::Credit => ledger.credit(user, U256::from(amount), &reference, "prop").await,
                            LedgerKind::Debit => ledger.debit(user, U256::from(amount), &reference, "prop").await,
                            _ => ledger.hold(user, U256::from(amount), &reference, "prop").await,
                        }
                    }).unwrap();
                    let expected = if m.applied.contains(&reference) {
                        Applied::AlreadyApplied
                    } else if kind != LedgerKind::Credit && amount > m.balance {
                        Applied::Insufficient(U256::from(m.balance))
                    } else {
                        m.applied.insert(reference.clone());
                        match kind {
                            LedgerKind::Credit => { m.balance += amount; credits += amount; }
                            LedgerKind::Debit => { m.balance -= amount; debits += amount; }
                            _ => { m.balance -= amount; m.held += amount; m.holds.insert(reference.clone(), (amount, None)); }
                        }
                        Applied::Done(U256::from(m.balance))
                    };
                    prop_assert_eq!(&result, &expected, "{:?} of {} under {}", kind, amount, reference);
                }
                Op::Settle { hold } | Op::Release { hold } => {
                    let settle = matches!(o, Op::Settle { .. });
                    let reference = format!("withdraw:{hold}");
                    let result = rt.block_on(async {
                        match settle {
                            true => ledger.settle(user, &reference, "prop").await,
                            false => ledger.release(user, &reference, "prop").await,
                        }
                    }).unwrap();
                    let expected = match m.holds.get_mut(&reference) {
                        None => Closed::NoSuchHold,
                        Some((_, Some(by))) => Closed::Already(*by),
                        Some((amount, closed)) => {
                            let amount = *amount;
                            *closed = Some(if settle { LedgerKind::Settle } else { LedgerKind::Release });
                            m.applied.insert(Ledger::closing_reference(&reference));
                            m.held -= amount;
                            if settle { m.settled += amount } else { m.balance += amount }
                            Closed::Done(U256::from(m.balance))
                        }
                    };
                    prop_assert_eq!(&result, &expected, "{} of {}", if settle { "settle" } else { "release" }, reference);
                }
            }
            prop_assert_eq!(m.balance + m.held, credits - debits - m.settled, "the model's own invariant");
        }
        let (balance, _) = rt.block_on(ledger.balance(user)).unwrap();
        prop_assert_eq!(balance, U256::from(m.balance));
        prop_assert_eq!(rt.block_on(ledger.held(user)).unwrap(), U256::from(m.held));
        let history = rt.block_on(ledger.history(user, 100)).unwrap();
        prop_assert_eq!(history.len(), m.applied.len(), "one entry per applied reference");
        // every entry keeps the invariant, in order
        let (mut c, mut d, mut s) = (U256::ZERO, U256::ZERO, U256::ZERO);
        for e in history.iter().rev() {
            let amount: U256 = e.amount.parse().unwrap();
            match e.kind {
                LedgerKind::Credit => c += amount,
                LedgerKind::Debit => d += amount,
                LedgerKind::Settle => s += amount,
                LedgerKind::Hold | LedgerKind::Release => {}
            }
            let (b, h): (U256, U256) = (e.balance.parse().unwrap(), e.held.parse().unwrap());
            prop_assert_eq!(b + h, c - d - s, "entry {} keeps balance + held = credits − debits − settled", e.reference);
        }
    });
}
