//! Coupon codes: a percent or fixed discount on a subscription, with an expiry and a
//! usage limit, in the `herald_coupons` KV bucket (key: the code, upper case). Uses
//! are counted by compare-and-set, so a limit holds under concurrent purchases, and
//! each use is held under its purchase's reference, so a redelivered purchase takes
//! the same use again instead of a second one.

use alloy::primitives::U256;
use async_nats::jetstream::kv;
use serde::{Deserialize, Serialize};

/// How much a coupon takes off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Discount {
    /// 1..=100 percent.
    Percent { percent: u8 },
    /// A fixed amount, ledger units (18-decimal USD), decimal.
    Fixed { amount: String },
}

/// A coupon as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Coupon {
    pub code: String,
    pub discount: Discount,
    /// After this (ms since epoch) the code is refused.
    pub expires_ms: Option<u64>,
    pub max_uses: Option<u32>,
    pub uses: u32,
    pub disabled: bool,
    /// The references of the purchases holding a use, newest last (at most
    /// [`HELD_REFERENCES`]; older ones are past any redelivery).
    #[serde(default)]
    pub held_by: Vec<String>,
}

/// References kept per coupon: a redelivery comes within minutes (5 deliveries, backoff
/// at most 10 s), long before this many later purchases of the same code.
pub const HELD_REFERENCES: usize = 1000;

impl Coupon {
    /// `price` after the discount (never below zero).
    ///
    /// ```
    /// use alloy::primitives::U256;
    /// use herald_pipeline::products::payments::coupons::{Coupon, Discount};
    /// let c = Coupon { code: "HALF".into(), discount: Discount::Percent { percent: 50 }, expires_ms: None, max_uses: None, uses: 0, disabled: false, held_by: vec![] };
    /// assert_eq!(c.price_after(U256::from(15)), U256::from(7)); // rounded down
    /// ```
    pub fn price_after(&self, price: U256) -> U256 {
        match &self.discount {
            Discount::Percent { percent } => price * U256::from(100 - (*percent).min(100)) / U256::from(100),
            Discount::Fixed { amount } => price.saturating_sub(amount.parse().unwrap_or_default()),
        }
    }

    /// Why the coupon cannot be used at `now_ms`, if it cannot.
    pub fn refusal(&self, now_ms: u64) -> Option<&'static str> {
        if self.disabled {
            Some("this coupon was withdrawn")
        } else if self.expires_ms.is_some_and(|e| now_ms > e) {
            Some("this coupon has expired")
        } else if self.max_uses.is_some_and(|m| self.uses >= m) {
            Some("this coupon has been used up")
        } else {
            None
        }
    }
}

/// A code as a KV key: upper case, letters, digits, `-` and `_` only.
pub fn key(code: &str) -> Option<String> {
    let code = code.trim().to_ascii_uppercase();
    (!code.is_empty() && code.len() <= 32 && code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')).then_some(code)
}

/// Stores a new coupon. Errors: the code exists already, or NATS failed.
pub async fn create(kv: &kv::Store, coupon: &Coupon) -> anyhow::Result<()> {
    kv.create(&coupon.code, serde_json::to_vec(coupon)?.into())
        .await
        .map_err(|e| anyhow::anyhow!("coupon {}: {e}", coupon.code))?;
    Ok(())
}

/// Applies `change` to a stored coupon by compare-and-set; `None` if there is no such code.
async fn update(kv: &kv::Store, code: &str, mut change: impl FnMut(&mut Coupon) -> bool) -> anyhow::Result<Option<Coupon>> {
    for _ in 0..100 {
        let Some(entry) = kv.entry(code).await? else { return Ok(None) };
        if entry.operation != kv::Operation::Put {
            return Ok(None);
        }
        let mut coupon: Coupon = serde_json::from_slice(&entry.value)?;
        if !change(&mut coupon) {
            return Ok(Some(coupon));
        }
        if kv.update(code, serde_json::to_vec(&coupon)?.into(), entry.revision).await.is_ok() {
            return Ok(Some(coupon));
        }
    }
    anyhow::bail!("coupon {code}: 100 conflicting updates in a row")
}

/// Withdraws a code; false if there is none.
pub async fn disable(kv: &kv::Store, code: &str) -> anyhow::Result<bool> {
    Ok(update(kv, code, |c| !std::mem::replace(&mut c.disabled, true)).await?.is_some())
}

/// Takes one use of a code for the purchase `reference`: the coupon, or why it cannot
/// be used. Idempotent per reference: a purchase that holds a use already keeps it and
/// takes no other.
pub async fn reserve(kv: &kv::Store, code: &str, reference: &str, now_ms: u64) -> anyhow::Result<Result<Coupon, &'static str>> {
    let mut refused = None;
    let coupon = update(kv, code, |c| {
        refused = None;
        if c.held_by.iter().any(|r| r == reference) {
            return false;
        }
        match c.refusal(now_ms) {
            Some(why) => {
                refused = Some(why);
                false
            }
            None => {
                c.uses += 1;
                c.held_by.push(reference.to_string());
                if c.held_by.len() > HELD_REFERENCES {
                    c.held_by.remove(0);
                }
                true
            }
        }
    });
    // `refused` is set inside the closure; read it after the future completes
    let coupon = coupon.await?;
    Ok(match (coupon, refused) {
        (None, _) => Err("no such coupon"),
        (Some(_), Some(why)) => Err(why),
        (Some(c), None) => Ok(c),
    })
}

/// Every coupon stored (`/admin coupon list`), in no particular order.
///
/// Errors: KV unreachable.
pub async fn all(kv: &kv::Store) -> anyhow::Result<Vec<Coupon>> {
    use futures::TryStreamExt;
    let keys: Vec<String> = kv.keys().await?.try_collect().await?;
    let mut out = Vec::new();
    for key in keys {
        if let Some(bytes) = kv.get(&key).await? {
            out.push(serde_json::from_slice(&bytes)?);
        }
    }
    Ok(out)
}

/// Gives back the use `reference` holds (the purchase did not happen); nothing if it
/// holds none, so a redelivered release gives back once.
pub async fn release(kv: &kv::Store, code: &str, reference: &str) -> anyhow::Result<()> {
    update(kv, code, |c| match c.held_by.iter().position(|r| r == reference) {
        Some(i) => {
            c.held_by.remove(i);
            c.uses = c.uses.saturating_sub(1);
            true
        }
        None => false,
    })
    .await?;
    Ok(())
}
