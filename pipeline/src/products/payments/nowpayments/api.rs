//! NOWPayments' REST API: creating an invoice (`POST /v1/invoice`, header `x-api-key`),
//! as their API documentation describes it. The invoice's hosted page takes fiat and
//! crypto; its IPNs come back to `ipn_callback_url` with our `order_id`.

use alloy::primitives::U256;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::core::ledger::money::LEDGER_DECIMALS;

/// The API: `base_url` is `https://api.nowpayments.io` (their sandbox:
/// `https://api-sandbox.nowpayments.io`).
#[derive(Clone)]
pub struct Api {
    pub base_url: String,
    pub api_key: String,
    pub http: reqwest::Client,
}

/// An invoice made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Invoice {
    /// Their invoice id (a number in their JSON).
    pub id: String,
    /// The hosted payment page.
    pub invoice_url: String,
}

#[derive(Serialize)]
struct NewInvoice<'a> {
    /// USD as an exact JSON number (never through a float).
    price_amount: &'a RawValue,
    price_currency: &'static str,
    order_id: &'a str,
    order_description: &'a str,
    ipn_callback_url: &'a str,
    is_fee_paid_by_user: bool,
}

/// `amount` ledger units as an exact decimal (`15`, `12.5`), never through a float.
///
/// ```
/// use herald_pipeline::core::ledger::money::parse_usd;
/// use herald_pipeline::products::payments::nowpayments::api::decimal;
/// assert_eq!(decimal(parse_usd("12.50").unwrap()), "12.5");
/// assert_eq!(decimal(parse_usd("15").unwrap()), "15");
/// ```
pub fn decimal(amount: U256) -> String {
    let one = U256::from(10).pow(U256::from(LEDGER_DECIMALS));
    let (whole, frac) = (amount / one, amount % one);
    if frac.is_zero() {
        return whole.to_string();
    }
    let frac = format!("{:0>18}", frac.to_string());
    format!("{whole}.{}", frac.trim_end_matches('0'))
}

impl Api {
    /// Creates an invoice of `price` (ledger units, USD) for Herald's `order_id`.
    ///
    /// Errors: the request failed, or their answer is an error (`{"statusCode",
    /// "code", "message"}`: the message is in the error) or has no `id`/`invoice_url`.
    pub async fn invoice(&self, price: U256, order_id: &str, description: &str, ipn_callback_url: &str) -> anyhow::Result<Invoice> {
        let price = decimal(price);
        let body = NewInvoice {
            price_amount: &RawValue::from_string(price)?,
            price_currency: "usd",
            order_id,
            order_description: description,
            ipn_callback_url,
            is_fee_paid_by_user: false,
        };
        let response = self
            .http
            .post(format!("{}/v1/invoice", self.base_url.trim_end_matches('/')))
            .header("x-api-key", &self.api_key)
            .json(&body)
            .timeout(std::time::Duration::from_secs(10))
            .send()
            .await?;
        let status = response.status();
        let v: serde_json::Value = response.json().await.unwrap_or_default();
        if !status.is_success() {
            let message = v["message"].as_str().unwrap_or("no message");
            anyhow::bail!("NOWPayments answered {status}: {message}");
        }
        let id = match &v["id"] {
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::String(s) => s.clone(),
            _ => anyhow::bail!("NOWPayments' invoice has no id: {v}"),
        };
        let invoice_url = v["invoice_url"]
            .as_str()
            .filter(|u| u.starts_with("https://") || u.starts_with("http://"))
            .ok_or_else(|| anyhow::anyhow!("NOWPayments' invoice has no invoice_url: {v}"))?
            .to_string();
        Ok(Invoice { id, invoice_url })
    }
}
