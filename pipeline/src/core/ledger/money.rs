//! Money in the ledger's units: USD with 18 decimals, exact integers (`U256`), never a
//! float. Parsing what operators and users type, converting a token's amount, and
//! showing a balance.

use alloy::primitives::U256;

/// Ledger units: USD with 18 decimals.
pub const LEDGER_DECIMALS: u8 = 18;

/// A USD amount (`12`, `0.5`) in 18-decimal ledger units, exactly.
///
/// ```
/// use herald_pipeline::core::ledger::money::parse_usd;
/// assert_eq!(parse_usd("1.5").unwrap().to_string(), "1500000000000000000");
/// assert!(parse_usd("1.2.3").is_err() && parse_usd("-1").is_err());
/// ```
pub fn parse_usd(s: &str) -> anyhow::Result<U256> {
    let (whole, frac) = s.trim().split_once('.').unwrap_or((s.trim(), ""));
    let digits = |d: &str| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit());
    anyhow::ensure!(
        digits(whole) && (frac.is_empty() || digits(frac)) && frac.len() <= 18,
        "not a USD amount: {s:?}"
    );
    let scale = U256::from(10).pow(U256::from(18));
    let frac_units = if frac.is_empty() {
        U256::ZERO
    } else {
        frac.parse::<U256>()? * U256::from(10).pow(U256::from(18 - frac.len()))
    };
    Ok(whole.parse::<U256>()? * scale + frac_units)
}

/// `amount` base units with `decimals` as a decimal number with two places, truncated
/// (never rounded up: a balance is never shown larger than it is).
///
/// ```
/// use alloy::primitives::U256;
/// use herald_pipeline::core::ledger::money::units;
/// assert_eq!(units(U256::from(1_234_567_890_000_000_000u64), 18), "1.23");
/// assert_eq!(units(U256::from(5u64), 0), "5.00");
/// ```
pub fn units(amount: U256, decimals: u8) -> String {
    let one = U256::from(10).pow(U256::from(decimals));
    let cents = (amount % one) * U256::from(100) / one;
    format!("{}.{:0>2}", amount / one, cents)
}

/// `amount` of a token with `decimals` in ledger units (18 decimals); `None` if the
/// token has more than 18 decimals and the amount does not convert exactly.
pub fn to_ledger(amount: U256, decimals: u8) -> Option<U256> {
    if decimals <= LEDGER_DECIMALS {
        amount.checked_mul(U256::from(10).pow(U256::from(LEDGER_DECIMALS - decimals)))
    } else {
        let div = U256::from(10).pow(U256::from(decimals - LEDGER_DECIMALS));
        (amount % div == U256::ZERO).then(|| amount / div)
    }
}

/// `amount` in ledger units (18 decimals) as base units of a token with `decimals`;
/// `None` if it does not convert exactly (a token with fewer decimals cannot carry the
/// last digits) or overflows. The inverse of [`to_ledger`] where both are exact.
///
/// ```
/// use alloy::primitives::U256;
/// use herald_pipeline::core::ledger::money::{from_ledger, parse_usd};
/// assert_eq!(from_ledger(parse_usd("1.5").unwrap(), 6), Some(U256::from(1_500_000u64)));
/// assert_eq!(from_ledger(parse_usd("0.0000001").unwrap(), 6), None, "below a USDC unit");
/// assert_eq!(from_ledger(parse_usd("2").unwrap(), 18), Some(parse_usd("2").unwrap()));
/// ```
pub fn from_ledger(amount: U256, decimals: u8) -> Option<U256> {
    if decimals <= LEDGER_DECIMALS {
        let div = U256::from(10).pow(U256::from(LEDGER_DECIMALS - decimals));
        (amount % div == U256::ZERO).then(|| amount / div)
    } else {
        amount.checked_mul(U256::from(10).pow(U256::from(decimals - LEDGER_DECIMALS)))
    }
}
