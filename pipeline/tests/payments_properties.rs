//! Property tests of payments' money paths against a real nats-server:
//!
//! - the daily withdrawal caps: any sequence of counts and give-backs keeps a day's
//!   total equal to the sum of the withdrawals it holds, never over the cap, each
//!   withdrawal counted once however often it is asked;
//! - NOWPayments' statuses: any sequence (any order, any repeats) of one payment's
//!   statuses through the `gateway_payments` stage credits the invoice's price exactly
//!   once if and only if `finished` is among them before any `refunded`, takes it back
//!   once if `refunded` comes after it, and keeps the ledger's invariant.

mod common;

use std::collections::BTreeMap;

use alloy::primitives::U256;
use herald_pipeline::core::ledger::Ledger;
use herald_pipeline::products::payments::caps;
use herald_pipeline::products::payments::nowpayments::stage::GatewayPayments;
use herald_runtime::{Decision, MsgMeta, Stage};
use herald_schemas::{subjects, GatewayPayment, LedgerKind};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum CapOp {
    Reserve { id: u8, amount: u64 },
    Unreserve { id: u8 },
}

fn cap_op() -> impl Strategy<Value = CapOp> {
    prop_oneof![
        3 => (0u8..6, 1u64..60).prop_map(|(id, amount)| CapOp::Reserve { id, amount }),
        1 => (0u8..6).prop_map(|id| CapOp::Unreserve { id }),
    ]
}

#[test]
fn a_days_cap_counts_each_withdrawal_once_and_never_passes_the_cap() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let env = rt.block_on(common::Env::start());
    let kv = rt.block_on(env.js.get_key_value(subjects::WITHDRAWALS_BUCKET)).unwrap();
    let case = std::sync::atomic::AtomicU64::new(0);
    let cap = U256::from(100u64);
    let config = ProptestConfig {
        cases: 32,
        ..ProptestConfig::default()
    };
    proptest!(config, |(ops in proptest::collection::vec(cap_op(), 1..20))| {
        let key = format!("day.prop.case{}", case.fetch_add(1, std::sync::atomic::Ordering::SeqCst));
        let mut model: BTreeMap<u8, u64> = BTreeMap::new();
        for op in &ops {
            match *op {
                CapOp::Reserve { id, amount } => {
                    let counted = rt.block_on(caps::reserve(&kv, &key, &format!("wd-{id}"), U256::from(amount), cap)).unwrap();
                    let fits = model.contains_key(&id) || model.values().sum::<u64>() + amount <= 100;
                    prop_assert_eq!(counted, fits, "{:?} with {:?}", op, model);
                    if fits {
                        model.entry(id).or_insert(amount);
                    }
                }
                CapOp::Unreserve { id } => {
                    rt.block_on(caps::unreserve(&kv, &key, &format!("wd-{id}"))).unwrap();
                    model.remove(&id);
                }
            }
            let used = rt.block_on(caps::used(&kv, &key)).unwrap();
            prop_assert_eq!(used, U256::from(model.values().sum::<u64>()));
            prop_assert!(used <= cap);
        }
    });
}

const STATUSES: [&str; 8] = [
    "waiting",
    "confirming",
    "sending",
    "partially_paid",
    "finished",
    "failed",
    "expired",
    "refunded",
];

/// Decides, applies and commits one status as the runner would (a drop commits nothing).
async fn run(stage: &GatewayPayments, p: &GatewayPayment) {
    let meta = MsgMeta {
        subject: subjects::gateway_payment("nowpayments", p.user_id),
        stream_sequence: 1,
        delivered: 1,
        published_ms: 0,
    };
    let decision = match stage.decide(p.clone(), &meta).await.unwrap() {
        Decision::Apply(effect) => stage.apply(effect, &meta).await.unwrap().decision,
        Decision::Forward { outputs, commit } => Decision::Forward { outputs, commit },
        Decision::Drop { reason } => Decision::Drop { reason },
    };
    if let Decision::Forward { commit, .. } = decision {
        stage.commit(commit).await.unwrap();
    }
}

#[test]
fn any_order_of_a_payments_statuses_credits_it_once_iff_finished_before_a_refund() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let env = rt.block_on(common::Env::start());
    let ledger = rt.block_on(Ledger::open(env.js.clone())).unwrap();
    let stage = GatewayPayments {
        ledger: ledger.clone(),
        store: rt.block_on(env.js.get_key_value(subjects::GATEWAY_BUCKET)).unwrap(),
        admins: vec![9],
    };
    let next_user = std::sync::atomic::AtomicI64::new(5_000);
    let config = ProptestConfig {
        cases: 32,
        ..ProptestConfig::default()
    };
    proptest!(config, |(order in proptest::collection::vec(0usize..STATUSES.len(), 1..10), price in 1u64..500)| {
        let user = next_user.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let price = U256::from(price) * U256::from(10u64).pow(U256::from(18u64));
        for &i in &order {
            let p = GatewayPayment {
                v: 1,
                gateway: "nowpayments".into(),
                payment_id: format!("{user}"),
                status: STATUSES[i].into(),
                order_id: format!("np-{user}-1"),
                user_id: user,
                price_usd: price.to_string(),
                actually_paid: None,
                pay_currency: None,
                received_ms: 1,
            };
            rt.block_on(run(&stage, &p));
        }
        let entries = rt.block_on(herald_runtime::reader::read(&env.js, subjects::LEDGER_STREAM, &subjects::ledger(user))).unwrap();
        let entries: Vec<herald_schemas::LedgerEntry> = entries.iter().map(|m| herald_schemas::decode(&m.payload).unwrap()).collect();
        let credits = entries.iter().filter(|e| e.kind == LedgerKind::Credit).count();
        let debits = entries.iter().filter(|e| e.kind == LedgerKind::Debit).count();
        // credited at the first `finished` unless a `refunded` came before it; taken back
        // by a `refunded` after the credit
        let first = |status: &str| order.iter().position(|&i| STATUSES[i] == status);
        let credited_at = first("finished").filter(|&f| first("refunded").is_none_or(|r| r > f));
        let refunded_after = credited_at.is_some_and(|f| order[f..].iter().any(|&i| STATUSES[i] == "refunded"));
        prop_assert_eq!(credits, usize::from(credited_at.is_some()), "{:?}", order);
        prop_assert_eq!(debits, usize::from(refunded_after), "{:?}", order);
        let (balance, _) = rt.block_on(ledger.balance(user)).unwrap();
        let expected = if credited_at.is_some() && !refunded_after { price } else { U256::ZERO };
        prop_assert_eq!(balance, expected);
    });
}
