//! NOWPayments' IPN (instant payment notification): its signature and its body.
//!
//! The signature (their API documentation, "Instant Payments Notifications"): the
//! header `x-nowpayments-sig` holds the hex HMAC-SHA512, under the IPN secret, of the
//! JSON body with its keys sorted (`JSON.stringify(params, Object.keys(params).sort())`
//! in their Node example; their PHP example sorts nested objects too, which we do).
//! Numbers are written as JavaScript writes them (`25.5`, not `25.50`), which
//! `serde_json` does for the values their IPNs carry.

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha512;

/// The header with the signature.
pub const SIGNATURE_HEADER: &str = "x-nowpayments-sig";

/// Why an IPN is refused before anything is stored; `Display` is the log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// No `x-nowpayments-sig` header (HTTP 401).
    NoSignature,
    /// The signature is not the body's (HTTP 401).
    BadSignature,
    /// Signed, but not an IPN we can read (HTTP 400): the reason.
    Malformed(String),
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::NoSignature => write!(f, "no {SIGNATURE_HEADER} header"),
            Refused::BadSignature => write!(f, "{SIGNATURE_HEADER} does not match the body"),
            Refused::Malformed(why) => write!(f, "malformed IPN: {why}"),
        }
    }
}

/// The body with every object's keys sorted, compact, as NOWPayments signs it.
///
/// Errors: the body is not JSON.
///
/// ```
/// use herald_pipeline::products::payments::nowpayments::ipn::canonical;
/// assert_eq!(canonical(br#"{"b": 1, "a": {"d": 2.50, "c": null}}"#).unwrap(), r#"{"a":{"c":null,"d":2.5},"b":1}"#);
/// ```
pub fn canonical(body: &[u8]) -> Result<String, String> {
    let value: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    Ok(sorted(&value).to_string())
}

fn sorted(v: &Value) -> Value {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            // serde_json's map keeps insertion order only with `preserve_order`; either
            // way the keys go in sorted
            Value::Object(keys.into_iter().map(|k| (k.clone(), sorted(&map[k]))).collect())
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

fn mac(secret: &[u8], canonical: &str) -> Hmac<Sha512> {
    let mut mac = Hmac::<Sha512>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(canonical.as_bytes());
    mac
}

/// The signature NOWPayments sends with `body` under `secret` (hex).
///
/// Errors: the body is not JSON.
pub fn sign(secret: &[u8], body: &[u8]) -> Result<String, String> {
    Ok(hex::encode(mac(secret, &canonical(body)?).finalize().into_bytes()))
}

/// Checks `signature` (the header, hex) against `body` under `secret`, in constant
/// time (`Mac::verify_slice`).
///
/// ```
/// use herald_pipeline::products::payments::nowpayments::ipn::{sign, verify, Refused};
/// let body = br#"{"payment_id":5,"payment_status":"finished"}"#;
/// let sig = sign(b"secret", body).unwrap();
/// assert_eq!(verify(b"secret", body, Some(&sig)), Ok(()));
/// assert_eq!(verify(b"other", body, Some(&sig)), Err(Refused::BadSignature));
/// assert_eq!(verify(b"secret", body, None), Err(Refused::NoSignature));
/// ```
pub fn verify(secret: &[u8], body: &[u8], signature: Option<&str>) -> Result<(), Refused> {
    let signature = signature.ok_or(Refused::NoSignature)?;
    let given = hex::decode(signature.trim()).map_err(|_| Refused::BadSignature)?;
    let canonical = canonical(body).map_err(|_| Refused::BadSignature)?;
    mac(secret, &canonical).verify_slice(&given).map_err(|_| Refused::BadSignature)
}

/// What Herald reads of an IPN.
#[derive(Debug, Clone, PartialEq)]
pub struct Ipn {
    pub payment_id: String,
    pub status: String,
    pub order_id: String,
    /// The invoice's price as written (`price_amount`), in `price_currency`.
    pub price_amount: String,
    pub price_currency: String,
    pub actually_paid: Option<String>,
    pub pay_currency: Option<String>,
}

/// Reads a verified body.
///
/// Errors: a field Herald needs is missing or of the wrong type.
///
/// ```
/// use herald_pipeline::products::payments::nowpayments::ipn::read;
/// let ipn = read(br#"{"payment_id":5077125051,"payment_status":"finished","order_id":"np-7-1","price_amount":15,"price_currency":"usd","actually_paid":0.00042,"pay_currency":"btc"}"#).unwrap();
/// assert_eq!((ipn.payment_id.as_str(), ipn.price_amount.as_str(), ipn.actually_paid.as_deref()), ("5077125051", "15", Some("0.00042")));
/// ```
pub fn read(body: &[u8]) -> Result<Ipn, Refused> {
    let v: Value = serde_json::from_slice(body).map_err(|e| Refused::Malformed(format!("not JSON: {e}")))?;
    let text = |k: &str| -> Option<String> {
        match v.get(k)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    };
    let need = |k: &str| text(k).filter(|s| !s.is_empty()).ok_or_else(|| Refused::Malformed(format!("no {k}")));
    Ok(Ipn {
        payment_id: need("payment_id")?,
        status: need("payment_status")?,
        order_id: need("order_id")?,
        price_amount: need("price_amount")?,
        price_currency: need("price_currency")?,
        actually_paid: text("actually_paid"),
        pay_currency: text("pay_currency"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any reordering or re-spacing of a signed body verifies; any changed value
        /// does not.
        #[test]
        fn the_signature_covers_the_values_not_their_order(
            id in 1u64..u64::MAX / 2, paid in 0u32..1_000_000, secret in proptest::collection::vec(any::<u8>(), 1..64)
        ) {
            let a = format!(r#"{{"payment_id":{id},"payment_status":"finished","actually_paid":{paid},"order_id":"np-1-2"}}"#);
            let b = format!(r#"{{ "order_id" : "np-1-2", "actually_paid" : {paid}, "payment_status" : "finished", "payment_id" : {id} }}"#);
            let sig = sign(&secret, a.as_bytes()).unwrap();
            prop_assert_eq!(verify(&secret, b.as_bytes(), Some(&sig)), Ok(()));
            let changed = a.replace(&format!(":{paid},"), &format!(":{},", paid as u64 + 1));
            prop_assert_eq!(verify(&secret, changed.as_bytes(), Some(&sig)), Err(Refused::BadSignature));
        }
    }
}
