//! The signer's outcomes against the ledger (real nats-servers): a final withdrawal
//! settles its hold once, a failed one releases it once (the user is refunded), a
//! redelivered outcome changes nothing, and an outcome that contradicts how the hold was
//! closed changes nothing and says so. Counted by the stage's own effect account and the
//! ledger's entries.

mod common;

use alloy::primitives::U256;
use herald_pipeline::core::ledger::Ledger;
use herald_pipeline::products::payments::withdrawals::WithdrawalOutcomes;
use herald_runtime::{Decision, Effect, MsgMeta, Stage};
use herald_schemas::{LedgerKind, WithdrawalOutcome, WithdrawalStage};

fn outcome(id: &str, stage: WithdrawalStage) -> WithdrawalOutcome {
    WithdrawalOutcome {
        v: 1,
        id: id.into(),
        user_id: 5,
        chain: "bsc".into(),
        hold: format!("withdraw:{id}"),
        stage,
        tx_hash: Some(format!("0x{}", "ab".repeat(32))),
        nonce: Some(0),
        reason: (stage == WithdrawalStage::Failed).then(|| "the transfer reverted <b>".into()),
        ts_ms: 1,
    }
}

/// Decides and applies one outcome as the runner would: what the apply step found (None:
/// no apply step) and the messages' texts.
async fn run(stage: &WithdrawalOutcomes, o: &WithdrawalOutcome) -> (Option<Effect>, Vec<String>) {
    let meta = MsgMeta {
        subject: herald_schemas::subjects::withdrawal_outcome(o.stage, "bsc"),
        stream_sequence: 1,
        delivered: 1,
        published_ms: 0,
    };
    let (effect, decision) = match stage.decide(o.clone(), &meta).await.unwrap() {
        Decision::Apply(e) => {
            let applied = stage.apply(e, &meta).await.unwrap();
            (Some(applied.effect), applied.decision)
        }
        Decision::Forward { outputs, commit } => (None, Decision::Forward { outputs, commit }),
        Decision::Drop { reason } => panic!("dropped: {reason}"),
    };
    let Decision::Forward { outputs, .. } = decision else {
        panic!("no outputs")
    };
    let texts = outputs
        .iter()
        .map(|o| {
            let m: herald_schemas::OutboundMessage = herald_schemas::decode(&o.payload).unwrap();
            serde_json::to_string(&m.content).unwrap()
        })
        .collect();
    (effect, texts)
}

#[tokio::test]
async fn holds_are_settled_or_released_once_by_the_signers_outcomes() {
    let env = common::Env::start().await;
    let ledger = Ledger::open(env.js.clone()).await.unwrap();
    let stage = WithdrawalOutcomes {
        ledger: ledger.clone(),
        admins: vec![900],
    };
    let usd = |n: u64| U256::from(n) * U256::from(10).pow(U256::from(18));
    ledger.credit(5, usd(100), "deposit:x:0", "deposit").await.unwrap();
    ledger.hold(5, usd(30), "withdraw:wd-5-1", "withdrawal").await.unwrap();
    ledger.hold(5, usd(20), "withdraw:wd-5-2", "withdrawal").await.unwrap();
    assert_eq!(
        (ledger.balance(5).await.unwrap().0, ledger.held(5).await.unwrap()),
        (usd(50), usd(50))
    );

    // sent: the user hears the hash, the ledger is untouched
    let (effect, texts) = run(&stage, &outcome("wd-5-1", WithdrawalStage::Sent)).await;
    assert_eq!(effect, None);
    assert!(texts[0].contains("sent") && texts[0].contains("abab"), "{texts:?}");

    // final: settled once, a redelivery finds it settled
    assert_eq!(run(&stage, &outcome("wd-5-1", WithdrawalStage::Final)).await.0, Some(Effect::Made));
    assert_eq!(
        run(&stage, &outcome("wd-5-1", WithdrawalStage::Final)).await.0,
        Some(Effect::AlreadyMade)
    );
    assert_eq!(
        (ledger.balance(5).await.unwrap().0, ledger.held(5).await.unwrap()),
        (usd(50), usd(20))
    );

    // failed: released once, the user refunded and told why, as text
    let (effect, texts) = run(&stage, &outcome("wd-5-2", WithdrawalStage::Failed)).await;
    assert_eq!(effect, Some(Effect::Made));
    assert!(texts[0].contains("70.00") && texts[0].contains("&lt;b&gt;"), "{texts:?}");
    assert_eq!(
        run(&stage, &outcome("wd-5-2", WithdrawalStage::Failed)).await.0,
        Some(Effect::AlreadyMade)
    );
    // a final after the release contradicts the ledger: nothing changes
    assert_eq!(
        run(&stage, &outcome("wd-5-2", WithdrawalStage::Final)).await.0,
        Some(Effect::NotMade)
    );
    assert_eq!(
        (ledger.balance(5).await.unwrap().0, ledger.held(5).await.unwrap()),
        (usd(70), U256::ZERO)
    );

    // queued: the admins and the user are told; nothing moves
    let (effect, texts) = run(&stage, &outcome("wd-5-3", WithdrawalStage::Queued)).await;
    assert_eq!((effect, texts.len()), (None, 2));

    let kinds: Vec<LedgerKind> = ledger.history(5, 100).await.unwrap().iter().rev().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [
            LedgerKind::Credit,
            LedgerKind::Hold,
            LedgerKind::Hold,
            LedgerKind::Settle,
            LedgerKind::Release
        ],
        "one entry per close"
    );
}
