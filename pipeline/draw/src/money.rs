//! The money of a round (rule 6 of `docs/lottery.md`), in integer base units (`u128`;
//! Herald's ledger counts 10^-18 USD, so a pot up to 3.4·10^16 USD fits with room for
//! the `· 10000` of basis points).
//!
//! - `pot = N · price + rollover_in`
//! - `fee = floor(pot · fee_bps / 10000)`
//! - prize j = `floor((pot − fee) · share_j / 10000)`, for the places that have a winner
//! - `rollover_out = pot − fee − Σ prizes` (unassigned shares and rounding dust)
//!
//! The invariant `Σ prizes + fee + rollover_out == pot` is checked on every split, and a
//! split that breaks it is an error, never a payout.
//!
//! ```
//! use herald_draw::money::split;
//! let s = split(1_000, 1_000, &[5_000, 2_000, 1_000], 3).unwrap();
//! assert_eq!((s.fee, s.prizes.clone(), s.rollover_out), (100, vec![450, 180, 90], 180));
//! ```

use std::collections::BTreeMap;

/// 100% in basis points.
pub const BPS: u128 = 10_000;

/// Why a round's money cannot be split.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("fee {0} bps is above 10000")]
    Fee(u32),
    #[error("prize shares add up to {0} bps, above 10000")]
    Shares(u128),
    #[error("amount overflow")]
    Overflow,
    #[error("prizes {prizes} + fee {fee} + rollover {rollover} != pot {pot}")]
    Invariant {
        pot: u128,
        fee: u128,
        prizes: u128,
        rollover: u128,
    },
    #[error("referral rewards {rewards} exceed the fee {fee}")]
    Referrals { rewards: u128, fee: u128 },
}

/// A settled pot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    pub pot: u128,
    pub fee: u128,
    /// One per place that has a winner, 1st first.
    pub prizes: Vec<u128>,
    pub rollover_out: u128,
}

/// `N · price + rollover_in`.
///
/// Errors: [`MoneyError::Overflow`].
pub fn pot(tickets: u64, price: u128, rollover_in: u128) -> Result<u128, MoneyError> {
    (tickets as u128)
        .checked_mul(price)
        .and_then(|s| s.checked_add(rollover_in))
        .ok_or(MoneyError::Overflow)
}

/// Splits `pot` between the fee, the prizes of the first `winners` places and the
/// rollover, and checks the invariant.
///
/// Errors: a fee or shares above 100%, an overflow, or a broken invariant.
pub fn split(pot: u128, fee_bps: u32, shares_bps: &[u32], winners: usize) -> Result<Split, MoneyError> {
    if fee_bps as u128 > BPS {
        return Err(MoneyError::Fee(fee_bps));
    }
    let total_shares: u128 = shares_bps.iter().map(|&s| s as u128).sum();
    if total_shares > BPS {
        return Err(MoneyError::Shares(total_shares));
    }
    let fee = pot.checked_mul(fee_bps as u128).ok_or(MoneyError::Overflow)? / BPS;
    let after_fee = pot - fee;
    let prizes = shares_bps
        .iter()
        .take(winners)
        .map(|&s| after_fee.checked_mul(s as u128).map(|x| x / BPS).ok_or(MoneyError::Overflow))
        .collect::<Result<Vec<u128>, _>>()?;
    let paid: u128 = prizes.iter().sum();
    let rollover_out = after_fee.checked_sub(paid).ok_or(MoneyError::Invariant {
        pot,
        fee,
        prizes: paid,
        rollover: 0,
    })?;
    let s = Split {
        pot,
        fee,
        prizes,
        rollover_out,
    };
    s.check()?;
    Ok(s)
}

impl Split {
    /// `Σ prizes + fee + rollover_out == pot`.
    ///
    /// Errors: [`MoneyError::Invariant`].
    pub fn check(&self) -> Result<(), MoneyError> {
        let prizes: u128 = self.prizes.iter().sum();
        let total = prizes.checked_add(self.fee).and_then(|x| x.checked_add(self.rollover_out));
        if total != Some(self.pot) {
            return Err(MoneyError::Invariant {
                pot: self.pot,
                fee: self.fee,
                prizes,
                rollover: self.rollover_out,
            });
        }
        Ok(())
    }
}

/// Referral rewards (rule 7): for each referred user's ticket spend, level ℓ's referrer
/// (1 = the direct one) gets `floor(spend · rate_ℓ / 10000)`. `spends` holds, per
/// user, their spend and their referrers nearest first. Returns the reward per
/// referrer, zero rewards left out.
///
/// Errors: the rewards exceed `fee` ([`MoneyError::Referrals`]): rewards come out of
/// the fee, never out of prizes. With `Σ rates ≤ fee_bps` this cannot happen (a sum of
/// floors is at most the floor of the sum), which `--lottery-referral-bps` checks at start-up.
pub fn referral_rewards<K: Ord + Clone>(spends: &[(u128, Vec<K>)], rates_bps: &[u32], fee: u128) -> Result<BTreeMap<K, u128>, MoneyError> {
    let mut rewards: BTreeMap<K, u128> = BTreeMap::new();
    let mut total = 0u128;
    for (spend, referrers) in spends {
        for (referrer, &rate) in referrers.iter().zip(rates_bps) {
            let r = spend.checked_mul(rate as u128).ok_or(MoneyError::Overflow)? / BPS;
            if r > 0 {
                *rewards.entry(referrer.clone()).or_default() += r;
                total += r;
            }
        }
    }
    if total > fee {
        return Err(MoneyError::Referrals { rewards: total, fee });
    }
    Ok(rewards)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Over random rounds: the invariant holds, nothing is negative, prizes follow
        /// the places, and referral rewards (rates within the fee) never exceed the fee.
        #[test]
        fn the_money_invariant_holds_over_random_rounds(
            tickets in 0u64..2_000_000,
            price in 1u128..1_000_000_000_000_000_000_000u128,
            rollover_in in 0u128..1_000_000_000_000_000_000_000_000u128,
            fee_bps in 0u32..=10_000,
            shares in proptest::collection::vec(0u32..4_000, 0..6),
            winners in 0usize..8,
            referred in proptest::collection::vec((0u64..1000, 0usize..4), 0..20),
        ) {
            let pot = pot(tickets, price, rollover_in).unwrap();
            let result = split(pot, fee_bps, &shares, winners);
            let total: u128 = shares.iter().map(|&s| s as u128).sum();
            if total > BPS {
                prop_assert_eq!(result, Err(MoneyError::Shares(total)));
                return Ok(());
            }
            let s = result.unwrap();
            prop_assert_eq!(s.prizes.iter().sum::<u128>() + s.fee + s.rollover_out, pot);
            prop_assert_eq!(s.prizes.len(), winners.min(shares.len()));
            for (p, &share) in s.prizes.iter().zip(&shares) {
                prop_assert_eq!(*p, (pot - s.fee) * share as u128 / BPS);
            }
            // referral rates that add up to at most the fee rate, on spends that add up to
            // at most N · price
            let rates = [fee_bps / 2, fee_bps / 3, fee_bps / 9];
            let spend_total = tickets as u128 * price;
            let n = referred.len().max(1) as u128;
            let spends: Vec<(u128, Vec<u64>)> = referred.iter()
                .map(|&(id, depth)| (spend_total / n, (0..depth as u64).map(|l| id + l).collect()))
                .collect();
            let rewards = referral_rewards(&spends, &rates, s.fee).unwrap();
            prop_assert!(rewards.values().sum::<u128>() <= s.fee);
        }
    }

    #[test]
    fn a_broken_split_is_refused() {
        let s = Split {
            pot: 100,
            fee: 10,
            prizes: vec![50],
            rollover_out: 41,
        };
        assert!(matches!(s.check(), Err(MoneyError::Invariant { .. })));
        assert!(matches!(
            referral_rewards(&[(1000u128, vec![1u8])], &[5000], 100),
            Err(MoneyError::Referrals { .. })
        ));
    }
}
