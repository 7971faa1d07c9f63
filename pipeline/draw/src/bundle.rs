//! The draw bundle (rule 8 of `docs/lottery.md`): every input and output of one round's
//! draw in one JSON document, and [`verify`], which re-derives all of it.
//!
//! Amounts are decimal strings of integer base units; hashes and ids are lower-case hex.

use serde::{Deserialize, Serialize};

use crate::beacon::{self, Beacon, ChainInfo};
use crate::draw::{self, ReceiptId};
use crate::merkle::{self, Hash};
use crate::money;

/// The bundle format's version tag.
pub const VERSION: &str = "herald-lottery-v1";

/// How a round ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Winners drawn and paid.
    Drawn,
    /// No tickets: no draw, the pot rolled over.
    RolledOver,
    /// The server seed was not revealed in time: every ticket refunded.
    Refunded,
}

/// One purchase: `count` tickets from `first_ticket` on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// 16 bytes, hex.
    pub receipt_id: String,
    pub first_ticket: u64,
    pub count: u64,
}

/// A winning ticket and its prize.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Winner {
    /// 1 = first prize.
    pub place: u32,
    pub ticket: u64,
    pub receipt_id: String,
    /// Base units.
    pub prize: String,
}

/// One round's draw, complete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bundle {
    /// [`VERSION`].
    pub version: String,
    pub round: u64,
    pub outcome: Outcome,
    /// Ticket price, base units.
    pub price: String,
    /// Sale close, unix s.
    pub t_close: u64,
    /// `R` is the first beacon at or after `t_close + beacon_delay_s` (60).
    pub beacon_delay_s: u64,
    pub chain: ChainInfo,
    pub beacon_round: u64,
    /// The verified beacon `R` (absent when the round had no tickets).
    pub beacon: Option<Beacon>,
    /// `SHA-256(server_seed)`, hex.
    pub commitment: String,
    /// 32 bytes, hex (absent when not revealed).
    pub server_seed: Option<String>,
    /// In purchase order.
    pub receipts: Vec<Receipt>,
    /// N.
    pub tickets: u64,
    pub tickets_root: String,
    pub rollover_in: String,
    pub pot: String,
    pub fee_bps: u32,
    pub shares_bps: Vec<u32>,
    pub fee: String,
    /// Paid out of the fee.
    pub referral_rewards: String,
    pub winners: Vec<Winner>,
    pub rollover_out: String,
}

/// One check of [`verify`], passed or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub name: &'static str,
    /// `Ok(detail)` or `Err(why it failed)`.
    pub result: Result<String, String>,
}

/// What [`verify`] found: every check, in order.
#[derive(Debug, Clone)]
pub struct Report {
    pub checks: Vec<Check>,
}

impl Report {
    /// Whether every check passed.
    pub fn ok(&self) -> bool {
        self.checks.iter().all(|c| c.result.is_ok())
    }
}

fn hex32(field: &str, s: &str) -> Result<[u8; 32], String> {
    hex::decode(s)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| format!("{field} is not 32 bytes of hex"))
}

fn amount(field: &str, s: &str) -> Result<u128, String> {
    s.parse().map_err(|_| format!("{field} {s:?} is not an integer amount"))
}

/// Re-derives the whole draw from `bundle`, trusting only `chain` (the pinned quicknet
/// info, or a test chain's given explicitly): chain, beacon round, beacon, commitment,
/// receipts, tickets root, money, winners. Never stops at the first failure.
pub fn verify(bundle: &Bundle, chain: &ChainInfo) -> Report {
    let mut checks = Vec::new();
    let mut check = |name: &'static str, result: Result<String, String>| checks.push(Check { name, result });

    check(
        "version",
        if bundle.version == VERSION {
            Ok(VERSION.into())
        } else {
            Err(format!("{:?} is not {VERSION}", bundle.version))
        },
    );
    check(
        "chain",
        if &bundle.chain == chain {
            Ok(format!("{} ({})", chain.hash, chain.scheme))
        } else {
            Err("the bundle's chain info is not the pinned chain".into())
        },
    );
    let r = beacon::draw_round(chain, bundle.t_close, bundle.beacon_delay_s);
    check(
        "beacon round",
        if r == bundle.beacon_round && bundle.beacon_delay_s == 60 {
            Ok(format!("R = {r}, the first round at or after t_close + 60 s"))
        } else if r == bundle.beacon_round {
            Ok(format!(
                "R = {r}, with a test delay of {} s (the rule says 60)",
                bundle.beacon_delay_s
            ))
        } else {
            Err(format!("R should be {r}, the bundle says {}", bundle.beacon_round))
        },
    );

    // receipts and root
    let mut receipts: Vec<ReceiptId> = Vec::with_capacity(bundle.receipts.len());
    let mut next = 0u64;
    let mut receipts_ok = Ok(format!("{} purchases, {} tickets", bundle.receipts.len(), bundle.tickets));
    for (i, rc) in bundle.receipts.iter().enumerate() {
        match hex::decode(&rc.receipt_id).ok().and_then(|b| <ReceiptId>::try_from(b).ok()) {
            Some(id) => receipts.push(id),
            None => receipts_ok = Err(format!("receipt {i}: id is not 16 bytes of hex")),
        }
        if rc.first_ticket != next || rc.count == 0 {
            receipts_ok = Err(format!("receipt {i}: tickets must follow on from {next}, and be at least one"));
        }
        next = rc.first_ticket.saturating_add(rc.count);
    }
    if next != bundle.tickets {
        receipts_ok = Err(format!("the receipts hold {next} tickets, the bundle says N = {}", bundle.tickets));
    }
    let receipts_valid = receipts_ok.is_ok();
    check("receipts", receipts_ok);
    let root: Option<Hash> = receipts_valid.then(|| {
        merkle::root(&draw::ticket_leaves(
            bundle.round,
            receipts.iter().zip(bundle.receipts.iter().map(|r| r.count)),
        ))
    });
    check(
        "tickets root",
        match root {
            Some(root) if hex::encode(root) == bundle.tickets_root => Ok(bundle.tickets_root.clone()),
            Some(root) => Err(format!(
                "RFC 6962 root of the receipts is {}, the bundle says {}",
                hex::encode(root),
                bundle.tickets_root
            )),
            None => Err("not computed: the receipts are invalid".into()),
        },
    );

    // money
    let money = (|| -> Result<money::Split, String> {
        let pot = money::pot(
            bundle.tickets,
            amount("price", &bundle.price)?,
            amount("rollover_in", &bundle.rollover_in)?,
        )
        .map_err(|e| e.to_string())?;
        if pot != amount("pot", &bundle.pot)? {
            return Err(format!(
                "pot should be N · price + rollover_in = {pot}, the bundle says {}",
                bundle.pot
            ));
        }
        let rollover_in = amount("rollover_in", &bundle.rollover_in)?;
        let places = if bundle.outcome == Outcome::Drawn {
            bundle.winners.len()
        } else {
            0
        };
        let s = match bundle.outcome {
            // tickets refunded: no fee; what came in carries on
            Outcome::Refunded => money::Split {
                pot,
                fee: 0,
                prizes: Vec::new(),
                rollover_out: rollover_in,
            },
            // no tickets, no draw: the whole pot rolls over
            Outcome::RolledOver => money::Split {
                pot,
                fee: 0,
                prizes: Vec::new(),
                rollover_out: pot,
            },
            _ => money::split(pot, bundle.fee_bps, &bundle.shares_bps, places).map_err(|e| e.to_string())?,
        };
        if s.fee != amount("fee", &bundle.fee)? {
            return Err(format!("fee should be {}, the bundle says {}", s.fee, bundle.fee));
        }
        let rewards = amount("referral_rewards", &bundle.referral_rewards)?;
        if rewards > s.fee {
            return Err(format!("referral rewards {rewards} exceed the fee {}", s.fee));
        }
        if s.rollover_out != amount("rollover_out", &bundle.rollover_out)? {
            return Err(format!(
                "rollover should be {}, the bundle says {}",
                s.rollover_out, bundle.rollover_out
            ));
        }
        Ok(s)
    })();
    let split = money.as_ref().ok().cloned();
    check(
        "money",
        money.map(|s| match bundle.outcome {
            Outcome::Refunded => format!("pot {}: tickets refunded, {} rolls over", s.pot, s.rollover_out),
            _ => format!(
                "pot {} = prizes {} + fee {} + rollover {}",
                s.pot,
                s.prizes.iter().sum::<u128>(),
                s.fee,
                s.rollover_out
            ),
        }),
    );

    match bundle.outcome {
        Outcome::RolledOver => check(
            "outcome",
            if bundle.tickets == 0 && bundle.winners.is_empty() {
                Ok("no tickets: no draw, the pot rolled over".into())
            } else {
                Err("rolled over with tickets or winners".into())
            },
        ),
        Outcome::Refunded => check(
            "outcome",
            if bundle.server_seed.is_none() && bundle.winners.is_empty() {
                Ok("the seed was not revealed in time: every ticket refunded".into())
            } else {
                Err("refunded, yet a seed or winners are given".into())
            },
        ),
        Outcome::Drawn => {
            let beacon = bundle.beacon.as_ref().ok_or_else(|| "no beacon".to_string()).and_then(|b| {
                beacon::verify_round(chain, bundle.beacon_round, b).map_err(|e| e.to_string())?;
                Ok(b)
            });
            check(
                "beacon",
                beacon
                    .as_ref()
                    .map(|b| format!("round {} verifies against the chain's public key", b.round))
                    .map_err(Clone::clone),
            );
            let server_seed = bundle
                .server_seed
                .as_deref()
                .ok_or_else(|| "no server seed".to_string())
                .and_then(|s| hex32("server_seed", s));
            check(
                "commitment",
                server_seed.as_ref().map_err(Clone::clone).and_then(|s| {
                    let c = hex::encode(draw::commitment(s));
                    if c == bundle.commitment {
                        Ok(format!("SHA-256(server_seed) = {c}"))
                    } else {
                        Err(format!("SHA-256(server_seed) = {c}, the commitment was {}", bundle.commitment))
                    }
                }),
            );
            let drawn = (|| -> Result<String, String> {
                let b = beacon.as_ref().map_err(|_| "no verified beacon".to_string())?;
                let seed = draw::seed(
                    &hex32("chain hash", &chain.hash)?,
                    bundle.beacon_round,
                    &hex32("randomness", &b.randomness)?,
                    server_seed.as_ref().map_err(Clone::clone)?,
                    &root.ok_or("no tickets root")?,
                );
                let winners = draw::winners(&seed, bundle.tickets, bundle.shares_bps.len());
                let split = split.as_ref().ok_or("the money does not add up")?;
                if winners.len() != bundle.winners.len() {
                    return Err(format!(
                        "{} winners drawn, the bundle lists {}",
                        winners.len(),
                        bundle.winners.len()
                    ));
                }
                for (j, (&ticket, w)) in winners.iter().zip(&bundle.winners).enumerate() {
                    let holder = bundle
                        .receipts
                        .iter()
                        .find(|r| ticket >= r.first_ticket && ticket < r.first_ticket + r.count)
                        .map(|r| r.receipt_id.as_str());
                    if w.place as usize != j + 1
                        || w.ticket != ticket
                        || Some(w.receipt_id.as_str()) != holder
                        || w.prize != split.prizes[j].to_string()
                    {
                        return Err(format!(
                            "place {}: ticket {ticket} ({holder:?}) wins {}, the bundle says {w:?}",
                            j + 1,
                            split.prizes[j]
                        ));
                    }
                }
                Ok(format!("seed {}; tickets {:?}", hex::encode(seed), winners))
            })();
            check("winners", drawn);
        }
    }
    Report { checks }
}

/// What a round's draw is computed from.
#[derive(Debug, Clone)]
pub struct Inputs {
    pub round: u64,
    pub price: u128,
    pub t_close: u64,
    pub beacon_delay_s: u64,
    pub chain: ChainInfo,
    pub beacon_round: u64,
    /// The verified beacon `R`; `None` only when there are no tickets.
    pub beacon: Option<Beacon>,
    pub commitment: Hash,
    /// `None`: not revealed in time, the round is refunded.
    pub server_seed: Option<[u8; 32]>,
    /// Purchases in order: receipt id and ticket count.
    pub purchases: Vec<(ReceiptId, u64)>,
    pub rollover_in: u128,
    pub fee_bps: u32,
    pub shares_bps: Vec<u32>,
    /// Referral rewards paid out of the fee.
    pub referral_rewards: u128,
}

/// The bundle of a round: its tickets root, money and winners computed from `inputs`.
/// No tickets: rolled over; no seed: refunded; otherwise drawn.
///
/// Errors: the money does not split (overflow, shares above 100%, a broken
/// invariant, referral rewards above the fee), or a drawn round has no beacon.
pub fn build(inputs: &Inputs) -> Result<Bundle, String> {
    let tickets: u64 = inputs.purchases.iter().map(|(_, n)| n).sum();
    let root = merkle::root(&draw::ticket_leaves(inputs.round, inputs.purchases.iter().map(|(id, n)| (id, *n))));
    let pot = money::pot(tickets, inputs.price, inputs.rollover_in).map_err(|e| e.to_string())?;
    let outcome = match (tickets, inputs.server_seed) {
        (0, _) => Outcome::RolledOver,
        (_, None) => Outcome::Refunded,
        _ => Outcome::Drawn,
    };
    let winners: Vec<u64> = match (outcome, &inputs.beacon, &inputs.server_seed) {
        (Outcome::Drawn, Some(b), Some(server_seed)) => {
            let chain_hash = hex32("chain hash", &inputs.chain.hash)?;
            let seed = draw::seed(
                &chain_hash,
                inputs.beacon_round,
                &hex32("randomness", &b.randomness)?,
                server_seed,
                &root,
            );
            draw::winners(&seed, tickets, inputs.shares_bps.len())
        }
        (Outcome::Drawn, None, _) => return Err("a drawn round needs its beacon".into()),
        _ => Vec::new(),
    };
    let split = match outcome {
        Outcome::Refunded => money::Split {
            pot,
            fee: 0,
            prizes: Vec::new(),
            rollover_out: inputs.rollover_in,
        },
        Outcome::RolledOver => money::Split {
            pot,
            fee: 0,
            prizes: Vec::new(),
            rollover_out: pot,
        },
        _ => money::split(pot, inputs.fee_bps, &inputs.shares_bps, winners.len()).map_err(|e| e.to_string())?,
    };
    if inputs.referral_rewards > split.fee {
        return Err(money::MoneyError::Referrals {
            rewards: inputs.referral_rewards,
            fee: split.fee,
        }
        .to_string());
    }
    let mut receipts = Vec::with_capacity(inputs.purchases.len());
    let mut next = 0;
    for (id, count) in &inputs.purchases {
        receipts.push(Receipt {
            receipt_id: hex::encode(id),
            first_ticket: next,
            count: *count,
        });
        next += count;
    }
    let holder = |t: u64| {
        receipts[receipts.partition_point(|r: &Receipt| r.first_ticket + r.count <= t)]
            .receipt_id
            .clone()
    };
    let winners = winners
        .iter()
        .zip(&split.prizes)
        .enumerate()
        .map(|(j, (&ticket, prize))| Winner {
            place: j as u32 + 1,
            ticket,
            receipt_id: holder(ticket),
            prize: prize.to_string(),
        })
        .collect();
    Ok(Bundle {
        version: VERSION.into(),
        round: inputs.round,
        outcome,
        price: inputs.price.to_string(),
        t_close: inputs.t_close,
        beacon_delay_s: inputs.beacon_delay_s,
        chain: inputs.chain.clone(),
        beacon_round: inputs.beacon_round,
        beacon: inputs.beacon.clone(),
        commitment: hex::encode(inputs.commitment),
        server_seed: inputs.server_seed.map(hex::encode),
        receipts,
        tickets,
        tickets_root: hex::encode(root),
        rollover_in: inputs.rollover_in.to_string(),
        pot: pot.to_string(),
        fee_bps: inputs.fee_bps,
        shares_bps: inputs.shares_bps.clone(),
        fee: split.fee.to_string(),
        referral_rewards: inputs.referral_rewards.to_string(),
        winners,
        rollover_out: split.rollover_out.to_string(),
    })
}
