//! The scheduler: opens, closes and draws each round, once, across restarts and
//! instances.
//!
//! Every tick looks at the journal and takes the one step the round's phase allows:
//!
//! ```text
//! Opened ─(t_close)─> Closed ─(time(R), beacon verified)─> Beacon ─(seed)─> Revealed ─> Drawn ─> Settled
//!                       └─ no tickets ──────────────────────────────────────────────────> Drawn (rolled over)
//!                                              Beacon ─(no seed by time(R) + 1 h)──────> Drawn (refunded)
//! ```
//!
//! A step's side effects (ledger credits, messages) are idempotent per reference and
//! made before the step's entry is appended; the append is conditional on the round's
//! last entry, so two instances (or one restarted) never take a step twice.

use herald_draw::beacon;
use herald_draw::bundle::{self, Inputs, Outcome};
use herald_draw::{draw, merkle, money};
use herald_schemas::LotteryStep;
use sha2::{Digest, Sha256};

use super::journal::{Appended, Phase, Position};
use super::round::Round;
use super::service::Lottery;
use super::settle;

fn now_s() -> u64 {
    herald_schemas::now_ms() / 1000
}

/// One look at the rounds: takes every step that is due.
///
/// Errors: NATS, KV or the ledger failed; the next tick tries again.
pub async fn tick(l: &Lottery) -> anyhow::Result<()> {
    let now = now_s();
    let Some(current) = l.current().await? else {
        return open(l, 1, [0; 32], now).await;
    };
    // the previous round first: the current one's close needs its rollover
    if current > 1 {
        drive(l, current - 1, now).await?;
    }
    let round = l.round(current).await?;
    match round.phase {
        Some(Phase::Selling) if now >= round.t_close => {
            if let Some(closed) = close(l, &round).await? {
                open(l, current + 1, closed, now).await?;
                drive(l, current, now).await?;
            }
        }
        Some(Phase::Selling) | None => {}
        Some(_) => {
            // closed: the next round opens (again, if a crash came between), this one is drawn
            open(l, current + 1, round.closed_hash.expect("a closed round"), now).await?;
            drive(l, current, now).await?;
        }
    }
    Ok(())
}

/// Sets [`super::metrics::STEP_OVERDUE`] from the current and previous rounds, whether
/// or not the tick before got through (a failing scheduler shows as overdue).
///
/// Errors: NATS or KV failed (the gauge keeps its last value).
pub async fn record_overdue(l: &Lottery) -> anyhow::Result<()> {
    let now = now_s();
    let mut worst = 0;
    if let Some(current) = l.current().await? {
        for id in [current.saturating_sub(1), current].into_iter().filter(|id| *id >= 1) {
            let round = l.round(id).await?;
            worst = worst.max(overdue(&round, beacon::round_time(&l.chain, round.beacon_round), now));
        }
    }
    metrics::gauge!(super::metrics::STEP_OVERDUE.name).set(worst as f64);
    Ok(())
}

/// Seconds round's next step has been due at `now` (unix s), given when its beacon
/// comes out: the close from `t_close`; the draw's steps from the beacon's time (from
/// the close when no ticket was sold: nothing waits for a beacon); 0 once settled.
///
/// ```
/// use herald_pipeline::products::lottery::{round::Round, journal::Phase, scheduler::overdue};
/// let r = Round { phase: Some(Phase::Selling), t_close: 100, ..Default::default() };
/// assert_eq!((overdue(&r, 130, 90), overdue(&r, 130, 160)), (0, 60));
/// let closed = Round { phase: Some(Phase::Closed), sold: 3, ..r.clone() };
/// assert_eq!(overdue(&closed, 130, 160), 30);
/// ```
pub fn overdue(round: &Round, beacon_at: u64, now: u64) -> u64 {
    let due = match round.phase {
        Some(Phase::Selling) => round.t_close,
        Some(Phase::Closed) if round.sold == 0 => round.t_close,
        Some(Phase::Closed | Phase::BeaconIn | Phase::Revealed | Phase::Drawn) => beacon_at,
        Some(Phase::Settled) | None => return 0,
    };
    now.saturating_sub(due)
}

/// Opens round `id` (if no one has) and makes it the current round.
async fn open(l: &Lottery, id: u64, prev: [u8; 32], now: u64) -> anyhow::Result<()> {
    if l.journal.opened(id).await?.is_none() {
        let seed = l.seed(id, true).await?.ok_or_else(|| anyhow::anyhow!("round {id}: the seed was not stored"))?;
        let rules = &l.rules;
        let t_close = rules.next_close(now);
        let step = LotteryStep::Opened {
            price: rules.price.to_string(),
            t_close,
            chain_hash: l.chain.hash.clone(),
            beacon_round: beacon::draw_round(&l.chain, t_close, rules.beacon_delay_s),
            beacon_delay_s: rules.beacon_delay_s,
            commitment: hex::encode(draw::commitment(&seed)),
            fee_bps: rules.fee_bps,
            shares_bps: rules.shares_bps.clone(),
        };
        if let Appended::Done(_) = l.journal.append(id, Position::first(prev), 0, 0, step).await? {
            tracing::info!(round = id, t_close, "lottery round opened");
        }
    }
    l.advance_current(id).await
}

/// Closes the sale: N, the tickets' root and the pot. Waits (returns `None`) while the
/// previous round is unsettled, since its rollover is part of this pot. Returns the
/// hash of the Closed entry.
async fn close(l: &Lottery, round: &Round) -> anyhow::Result<Option<[u8; 32]>> {
    let rollover_in = match round.id {
        1 => 0,
        id => match l.round(id - 1).await? {
            r if r.phase == Some(Phase::Settled) => r.rollover_out.unwrap_or(0),
            _ => return Ok(None),
        },
    };
    let leaves = draw::ticket_leaves(round.id, round.purchases.iter().map(|p| (&p.receipt_id, p.count)));
    let root = merkle::root(&leaves);
    let pot = money::pot(round.sold, round.price, rollover_in)?;
    let step = LotteryStep::Closed {
        tickets: round.sold,
        tickets_root: hex::encode(root),
        pot: pot.to_string(),
        rollover_in: rollover_in.to_string(),
    };
    match l.journal.append(round.id, round.position(), round.sold, round.spend, step).await? {
        Appended::Done(tip) => {
            tracing::info!(round = round.id, tickets = round.sold, "lottery sale closed");
            Ok(Some(tip.hash))
        }
        // another instance closed it, or a last purchase got in first: look again next tick
        Appended::Lost => Ok(l.round(round.id).await?.closed_hash),
    }
}

/// Takes round `id` through the draw and settlement, as far as is due now.
///
/// Errors: NATS, KV or the ledger failed.
pub async fn drive(l: &Lottery, id: u64, now: u64) -> anyhow::Result<()> {
    loop {
        let round = l.round(id).await?;
        let step = match round.phase {
            Some(Phase::Closed) => {
                settle::tell_closed(l, &round).await?;
                if round.sold == 0 {
                    drawn(l, &round, None).await?
                } else if now < beacon::round_time(&l.chain, round.beacon_round) {
                    return Ok(());
                } else {
                    match l.relays.beacon(round.beacon_round).await {
                        Ok(b) => LotteryStep::Beacon {
                            beacon_round: b.round,
                            signature: b.signature,
                            randomness: b.randomness,
                        },
                        // no relay has a verified beacon R yet: wait, never another round
                        Err(_) => return Ok(()),
                    }
                }
            }
            Some(Phase::BeaconIn) => match l.seed(id, false).await? {
                Some(seed) => LotteryStep::Revealed { server_seed: hex::encode(seed) },
                None if now >= beacon::round_time(&l.chain, round.beacon_round) + l.reveal_deadline_s => {
                    tracing::error!(round = id, "lottery seed not revealed in time: refunding every ticket");
                    drawn(l, &round, None).await?
                }
                None => return Ok(()),
            },
            Some(Phase::Revealed) => drawn(l, &round, round.server_seed).await?,
            Some(Phase::Drawn) => match settle::settle(l, &round).await? {
                Some(step) => step,
                None => return Ok(()), // refused: raised to admins, nothing paid
            },
            Some(Phase::Selling) | Some(Phase::Settled) | None => return Ok(()),
        };
        // Done: go on to the next step; Lost: someone else took it, look again
        l.journal.append(id, round.position(), round.sold, round.spend, step).await?;
    }
}

/// The draw: the bundle built, stored and hashed (no tickets: rolled over; no seed:
/// refunded).
async fn drawn(l: &Lottery, round: &Round, server_seed: Option<[u8; 32]>) -> anyhow::Result<LotteryStep> {
    let rewards = settle::referral_rewards(l, round, server_seed.is_some())?;
    let inputs = Inputs {
        round: round.id,
        price: round.price,
        t_close: round.t_close,
        beacon_delay_s: round.beacon_delay_s,
        chain: l.chain.clone(),
        beacon_round: round.beacon_round,
        beacon: round.beacon.clone(),
        commitment: round.commitment,
        server_seed,
        purchases: round.purchases.iter().map(|p| (p.receipt_id, p.count)).collect(),
        rollover_in: round.rollover_in,
        fee_bps: round.fee_bps,
        shares_bps: round.shares_bps.clone(),
        referral_rewards: rewards.values().sum(),
    };
    let b = bundle::build(&inputs).map_err(|e| anyhow::anyhow!("round {}: {e}", round.id))?;
    anyhow::ensure!(Some(&b.tickets_root) == round.tickets_root.as_ref(), "round {}: the tickets root does not match the one published at close", round.id);
    let bytes = serde_json::to_vec_pretty(&b)?;
    let name = Lottery::bundle_name(round.id);
    let mut reader: &[u8] = &bytes;
    l.bundles.put(name.as_str(), &mut reader).await.map_err(|e| anyhow::anyhow!("storing {name}: {e}"))?;
    Ok(LotteryStep::Drawn {
        outcome: match b.outcome {
            Outcome::Drawn => "drawn",
            Outcome::RolledOver => "rolled_over",
            Outcome::Refunded => "refunded",
        }
        .into(),
        winning_tickets: b.winners.iter().map(|w| w.ticket).collect(),
        bundle_sha256: hex::encode(Sha256::digest(&bytes)),
        rollover_out: b.rollover_out,
    })
}
