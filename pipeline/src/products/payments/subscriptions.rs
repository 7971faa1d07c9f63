//! Subscription tiers: what they cost and how far they extend a subscription.

use alloy::primitives::U256;

/// A tier: `name`, how many days it adds (`None`: lifetime) and its price in ledger
/// units (18-decimal USD).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tier {
    pub name: String,
    pub days: Option<u64>,
    pub price: U256,
}

/// Parses `name:days:usd` tiers (`days` 0 = lifetime).
///
/// ```
/// use herald_pipeline::products::payments::subscriptions::parse_tiers;
/// let t = parse_tiers(&["weekly:7:15".into(), "lifetime:0:300".into()]).unwrap();
/// assert_eq!((t[0].days, t[1].days), (Some(7), None));
/// assert_eq!(t[0].price.to_string(), "15000000000000000000");
/// ```
///
/// Errors: not three parts, days not a number, price not a USD amount.
pub fn parse_tiers(specs: &[String]) -> anyhow::Result<Vec<Tier>> {
    specs
        .iter()
        .map(|spec| {
            let parts: Vec<&str> = spec.trim().split(':').collect();
            let [name, days, usd] = parts[..] else {
                anyhow::bail!("tier {spec:?}: expected name:days:usd")
            };
            let days: u64 = days.parse().map_err(|e| anyhow::anyhow!("tier {spec:?}: days: {e}"))?;
            Ok(Tier {
                name: name.to_ascii_lowercase(),
                days: (days > 0).then_some(days),
                price: crate::core::ledger::money::parse_usd(usd)?,
            })
        })
        .collect()
}

/// The new paid-until time after buying `tier` at `now_ms`: from the current end if it
/// is still ahead (time left is never lost), else from now; `u64::MAX` for lifetime.
///
/// ```
/// use alloy::primitives::U256;
/// use herald_pipeline::products::payments::subscriptions::{extend, Tier};
/// let day = Tier { name: "daily".into(), days: Some(1), price: U256::ZERO };
/// assert_eq!(extend(None, 1_000, &day), 1_000 + 86_400_000);
/// assert_eq!(extend(Some(5_000), 1_000, &day), 5_000 + 86_400_000, "time left is kept");
/// ```
pub fn extend(paid_until_ms: Option<u64>, now_ms: u64, tier: &Tier) -> u64 {
    match tier.days {
        None => u64::MAX,
        Some(days) => paid_until_ms.unwrap_or(0).max(now_ms).saturating_add(days * 86_400_000),
    }
}
